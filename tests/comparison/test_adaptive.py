"""compare --seeds auto: planned looks, alpha per look, seeds in rounds and why they stopped."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from modalfuse.stats import sequential


def test_looks_are_planned_and_alpha_is_split_over_them() -> None:
    assert sequential.looks(10) == [3, 5, 10] and sequential.looks(20) == [3, 5, 10, 20]
    assert sequential.looks(12) == [3, 5, 10, 12] and sequential.looks(3) == [3] and sequential.looks(2) == [2]
    assert sequential.look_alpha(0.05, 3) == pytest.approx(0.05 / 3)
    assert sequential.state("better", 0.1, None) == "decided"
    assert sequential.state("indistinguishable", 0.01, 0.02) == "small"
    assert sequential.state("indistinguishable", 0.03, 0.02) == "open"
    assert sequential.state("indistinguishable", 0.01, None) == "open"


@pytest.mark.slow
def test_seeds_must_be_a_number_or_auto(capsys: pytest.CaptureFixture[str]) -> None:
    from modalfuse.cli import main

    assert main(["compare", "synthetic", "--seeds", "many"]) == 2
    assert "--seeds 'many': expected a number of seeds or 'auto'" in capsys.readouterr().err
    assert main(["compare", "synthetic", "--seeds", "auto", "--min-effect", "-0.1"]) == 2
    assert "--min-effect -0.1: expected a positive difference" in capsys.readouterr().err


@pytest.mark.slow
def test_seeds_in_rounds_stop_and_the_report_says_why(tmp_path: Path) -> None:
    from modalfuse.comparison.adaptive import compare_auto

    preset = tmp_path / "two.yaml"
    preset.write_text(
        "seeds: 1\nprimary: accuracy\nmodels:\n"
        "  text: {config: synthetic, overrides: [\"model.modalities=[text]\"]}\n"
        "  early: synthetic\n"
        "overrides: [data.n_train=64, data.n_valid=32, data.n_test=48, train.epochs=1, train.batch_size=32,\n"
        "            train.patience=null, train.warmup_epochs=0]\n")
    out = tmp_path / "auto"
    compare_auto([str(preset)], max_seeds=5, min_effect=0.5, out=str(out), jobs=1, stream=io.StringIO())
    info = json.loads((out / "compare.json").read_text())
    auto = info["adaptive"]
    assert auto["looks"] == [3, 5] and info["alpha"] == pytest.approx(0.025)
    # a 0.5 accuracy difference is detectable at 3 seeds on 48 examples: the rounds stop after one look
    assert len(auto["history"]) == 1 and auto["history"][0]["open"] == 0 and auto["seeds"] == {"text": 3, "early": 3}
    assert "decided or could have found a difference of 0.5" in auto["stopped"]
    assert len(info["runs"]) == 6 and not (out / "runs" / "text-seed3").exists()
    report = (out / "report" / "report.md").read_text()
    assert "Seeds in rounds" in report and "α = 0.025" in report
