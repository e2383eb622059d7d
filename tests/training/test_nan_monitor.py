"""A NaN validation monitor (corr of a constant prediction) never stays best, and run.json never holds NaN."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from modalfuse.training import loop, train

BASE = {
    "data": {"name": "synthetic", "n_train": 300, "n_valid": 100, "n_test": 100, "task": "regression"},
    "model": {"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [16]}, "head": {"name": "mlp", "hidden_dims": [16]}},
    "train": {"epochs": 3, "batch_size": 64, "monitor": "corr", "patience": None, "progress": "none"},
}


def _strict_json(path: Path) -> dict:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{path.name} holds {constant}, which is not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.mark.slow
def test_nan_at_the_first_epoch_is_beaten_and_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = loop.split_metrics, {"n": 0}

    def nan_first(task, pred, cfg):  # the first validation's corr is NaN, as for a constant prediction
        calls["n"] += 1
        out = real(task, pred, cfg)
        return {**out, "corr": math.nan} if calls["n"] == 1 else out

    monkeypatch.setattr(loop, "split_metrics", nan_first)
    run = _strict_json(train(BASE, run_dir=tmp_path / "first", quiet=True) / "run.json")
    assert run["best_epoch"] > 1 and math.isfinite(run["best_valid"])

    monkeypatch.setattr(loop, "split_metrics", lambda task, pred, cfg: {**real(task, pred, cfg), "corr": math.nan})
    folder = train(BASE, run_dir=tmp_path / "always", quiet=True)
    run = _strict_json(folder / "run.json")
    assert run["best_epoch"] == 1 and run["best_valid"] is None  # the first epoch is kept, no value is claimed
    assert (folder / "checkpoints" / "best.pt").is_file() or any(folder.rglob("best.pt"))
