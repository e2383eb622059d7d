"""train.ema: the moving average of the weights is what is validated, kept as best.pt and evaluated."""

from __future__ import annotations

import json

import pytest
import torch

from modalfuse.training import train
from modalfuse.training.runfolder import load_checkpoint

BASE = {
    "data": {"name": "synthetic", "n_train": 600, "n_valid": 200, "n_test": 200},
    "model": {"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [16]}, "head": {"name": "mlp", "hidden_dims": [16]}},
    "train": {"epochs": 2, "batch_size": 64, "learning_rate": 0.01, "progress": "none", "select": "last"},
}


@pytest.mark.slow
def test_best_checkpoint_holds_the_average_and_last_holds_both(tmp_path) -> None:
    run = train(BASE, overrides=["train.ema=0.9"], run_dir=tmp_path / "ema", quiet=True)
    best = load_checkpoint(run / "checkpoints" / "best.pt")["model"]
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    ema = {k[len("module."):]: v for k, v in last["ema"].items() if k.startswith("module.")}
    assert int(last["ema"]["n_averaged"]) == 2 * 10  # one update per step: 600 / 64 -> 10 steps per epoch
    assert best.keys() == ema.keys() == last["model"].keys()
    assert all(torch.equal(best[k], ema[k]) for k in best)  # select=last: the final average
    assert any(not torch.equal(best[k], last["model"][k]) for k in best if best[k].is_floating_point())


@pytest.mark.slow
def test_average_is_evaluated(tmp_path) -> None:
    from modalfuse.training.run import evaluate_run

    run = train(BASE, overrides=["train.ema=0.5"], run_dir=tmp_path / "ema", quiet=True)
    saved = json.loads((run / "metrics.json").read_text())["test"]["accuracy"]
    assert evaluate_run(run, split="test")["accuracy"] == saved
