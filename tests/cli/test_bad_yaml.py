"""Config files and --set values that are hostile or malformed: one ConfigError, fast and small."""

from __future__ import annotations

import resource
import time
import pytest

from pydantic import ValidationError

from modalfuse.config import TrainConfig, apply_overrides, load_yaml
from modalfuse.schema import describe
from modalfuse.errors import ConfigError

def _alias_bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_fast_and_small(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text("data: {name: synthetic}\nmodel: {name: fusion}\n" + _alias_bomb())
    assert path.stat().st_size < 1000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="expands to .* values"):
        load_yaml(path)
    with pytest.raises(ConfigError, match="expands to"):
        apply_overrides({}, ["data.x=" + "{" + _alias_bomb().replace("\n", ", ").rstrip(", ") + "}"])
    assert time.perf_counter() - t0 < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB


def test_describe_is_bounded_on_shared_trees():
    x: list = ["x"] * 9
    for _ in range(12):
        x = [x] * 9  # 9**12 leaves if expanded
    t0 = time.perf_counter()
    assert len(describe(x)) <= 60
    assert time.perf_counter() - t0 < 0.5


def test_duplicate_keys_are_refused(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("data: {name: synthetic}\nmodel: {name: fusion}\ntrain:\n  epochs: 2\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'epochs' \(line 5\)"):
        load_yaml(path)


def test_non_utf8_and_directory_configs(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("data: {name: synthetic}  # caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_yaml(path)
    with pytest.raises(ConfigError, match="is a directory"):
        load_yaml(tmp_path)


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_non_finite_learning_rate_is_refused(value):
    train = apply_overrides({}, [f"train.learning_rate={value}"])["train"]
    with pytest.raises(ValidationError, match="learning_rate"):
        TrainConfig.model_validate(train)
    assert TrainConfig.model_validate({"learning_rate": 1e-3}).learning_rate == 1e-3


@pytest.mark.parametrize("name", [None, [1, 2], {"a": 1}, 3])
def test_a_name_that_is_not_a_string_is_a_config_error(name):
    # found by bench/fuzz.py: `data: {name: }` crashed in difflib with a TypeError
    from modalfuse.config import build_config

    with pytest.raises(ConfigError, match="unknown"):
        build_config({"data": {"name": name}, "model": {"name": "fusion"}})
