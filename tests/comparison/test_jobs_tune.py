"""`compare --jobs` (same numbers as one process), the cost-weighted ETA, and `compare --tune`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from modalfuse.comparison import compare, plan
from modalfuse.comparison.progress import Progress
from modalfuse.errors import UserError

TIMING = {"train_seconds", "inference_samples_per_s", "flops_per_sample", "peak_memory_mb"}


def _metric_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "report" / "results.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


@pytest.mark.slow
def test_two_jobs_give_the_numbers_of_one(tiny_preset: Path, tiny_compare: Path, tmp_path: Path) -> None:
    log = io.StringIO()
    out = compare([str(tiny_preset)], out=str(tmp_path / "par"), jobs=2, stream=log)
    assert _metric_rows(out) == _metric_rows(tiny_compare)
    with open(out / "report" / "comparisons.csv") as a, open(tiny_compare / "report" / "comparisons.csv") as b:
        assert a.read() == b.read()  # the statistics too: same predictions, same seeded resampling
    lines = log.getvalue().splitlines()
    assert sum("done in" in line for line in lines) == 6


def test_eta_weights_runs_by_their_models_measured_cost() -> None:
    runs = [SimpleNamespace(label=lab, name=f"{lab}-seed{s}") for s in range(2) for lab in ("cheap", "dear")]
    p = Progress(runs, [10] * 4, jobs=1, stream=io.StringIO())
    assert p.eta() == "ETA ?"  # nothing measured: no guess
    for epoch in range(1, 11):  # cheap-seed0: 1 s per epoch
        p.event(0, "epoch", (epoch, 1.0))
    p.finish(0, {"seconds": 10.0, "analysis_seconds": 0.0}, "")
    # dear is not measured yet: costed like cheap, 3 runs x 10 epochs x 1 s
    assert p.remaining_seconds() == pytest.approx(30.0)
    p.event(1, "epoch", (1, 10.0))  # dear: 10 s per epoch
    # dear-seed0: 9 epochs left, cheap-seed1: 10, dear-seed1: 10 -> 90 + 10 + 100
    assert p.remaining_seconds() == pytest.approx(200.0)
    p.jobs = 2
    assert p.remaining_seconds() == pytest.approx(100.0)


@pytest.mark.slow
def test_tune_searches_every_model_equally_then_trains_the_best(tiny_preset: Path, tmp_path: Path) -> None:
    out = tmp_path / "tuned"
    compare([str(tiny_preset)], seeds=1, out=str(out), tune=2, stream=io.StringIO(), jobs=1)
    with open(out / "tuning.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted({r["model"] for r in rows}) == ["attention", "late", "text"]
    assert all(sum(r["model"] == m and r["state"] == "COMPLETE" for r in rows) == 2 for m in ("text", "late", "attention"))
    tuning = json.loads((out / "tuning.json").read_text())
    for label, best in tuning["best"].items():
        lr = best["params"]["train.learning_rate"]
        assert 1e-3 <= lr <= 1e-1
        config = (out / "runs" / f"{label}-seed0" / "config.yaml").read_text()
        assert f"learning_rate: {lr}" in config  # the seeds trained with the best trial's value
    assert "## Tuning" in (out / "report" / "report.md").read_text()
    # Re-running continues the stored studies: they already hold 2 complete trials each, none is added.
    compare([str(tiny_preset)], seeds=1, out=str(out), tune=2, stream=io.StringIO(), jobs=1)
    with open(out / "tuning.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(rows)


def test_tune_refuses_where_validation_cannot_select_or_no_space(tiny_preset: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="validation cannot select for"):
        compare([str(tiny_preset)], seeds=1, out=str(tmp_path / "a"), overrides=["train.select=last"], tune=2,
                stream=io.StringIO())
    bare = tmp_path / "bare.yaml"
    bare.write_text(tiny_preset.read_text().split("tune:")[0])
    with pytest.raises(UserError, match="declares no search space"):
        compare([str(bare)], seeds=1, out=str(tmp_path / "b"), tune=2, stream=io.StringIO())
    assert plan(["mosi"]).tune  # the default comparison declares one (and refuses: select last)


def test_cli_jobs_must_be_a_count_or_auto(capsys) -> None:
    from modalfuse.cli import main

    assert main(["compare", "synthetic", "--jobs", "many"]) == 2
    assert "--jobs 'many': expected a number of processes or 'auto'" in capsys.readouterr().err
    assert main(["compare", "synthetic", "--jobs", "0"]) == 2


def test_the_library_function_compare_survives_importing_the_package() -> None:
    """The package is ``modalfuse.comparison``: importing it never rebinds ``modalfuse.compare``."""
    import modalfuse
    import modalfuse.comparison.runner  # noqa: F401

    assert callable(modalfuse.compare) and modalfuse.compare.__module__ == "modalfuse.api"
