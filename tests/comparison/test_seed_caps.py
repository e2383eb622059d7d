"""A model entry's ``seeds: N`` caps that model's seeds (an expensive model run fewer times)."""

from __future__ import annotations

import pytest

from modalfuse.comparison.plan import plan
from modalfuse.errors import ConfigError


def test_a_capped_model_runs_only_its_first_seeds(tmp_path) -> None:
    preset = tmp_path / "c.yaml"
    preset.write_text("models: {a: mosi/text, b: {config: mosi/late, seeds: 1}}\nseeds: 3\n")
    runs = plan([str(preset)]).runs
    assert [r.name for r in runs] == ["a-seed0", "b-seed0", "a-seed1", "a-seed2"]
    assert [r.name for r in plan([str(preset)], seeds=2).runs] == ["a-seed0", "b-seed0", "a-seed1"]


@pytest.mark.parametrize("value", [0, "two", True])
def test_a_bad_cap_is_one_config_error(tmp_path, value) -> None:
    preset = tmp_path / "c.yaml"
    preset.write_text(f"models: {{a: mosi/text, b: {{config: mosi/late, seeds: {value}}}}}\n")
    with pytest.raises(ConfigError, match=r"models\.b\.seeds must be a whole number >= 1"):
        plan([str(preset)])


def test_the_100_shard_table_runs_the_moe_once() -> None:
    runs = plan(["yt8m-100-short"]).runs
    assert sum(r.label == "moe" for r in runs) == 1
    assert sum(r.label == "rgb-only" for r in runs) == 3
