"""Best-epoch selection follows the monitor's direction: with a minimised monitor (MAE) the kept
checkpoint is the epoch of the lowest validation value, not the highest."""

from __future__ import annotations

import json

import pytest

from modalfuse.metrics import is_better
from modalfuse.training import train
from modalfuse.training.runfolder import RunFolder

REGRESSION = {
    "data": {"name": "synthetic", "task": "regression", "n_train": 256, "n_valid": 128, "n_test": 64},
    "model": {"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [16]}, "head": {"name": "mlp", "hidden_dims": [16]}},
    "train": {"epochs": 6, "batch_size": 32, "learning_rate": 0.01, "progress": "none", "monitor": "mae",
              "threads": 1},
    "eval": {"splits": ["valid"]},
}


def test_is_better_follows_the_direction() -> None:
    assert is_better("mae", 0.5, 0.6) and not is_better("mae", 0.6, 0.5)
    assert is_better("accuracy", 0.6, 0.5) and not is_better("accuracy", 0.5, 0.6)


@pytest.mark.slow
def test_best_epoch_of_a_min_monitor_is_the_lowest_validation_value(tmp_path) -> None:
    run = RunFolder(train(REGRESSION, run_dir=tmp_path / "run", quiet=True))
    maes = [row["valid_mae"] for row in run.read_history()]
    assert len(maes) == 6 and min(maes) < max(maes)
    best = run.read_completion()["best_epoch"]
    assert best == 1 + maes.index(min(maes)), (best, maes)
    assert run.read_metrics()["valid"]["mae"] == pytest.approx(min(maes), rel=1e-6)
    ck = run.load_checkpoint("best")
    assert ck["epoch"] == best
    assert json.dumps(ck["config"]["train"]["monitor"]) == '"mae"'
