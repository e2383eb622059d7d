"""The training step keeps the loss on the device: the host reads it only at sync points."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modalfuse.training import distributed, loop, train

CFG = {
    "data": {"name": "synthetic", "n_train": 640, "n_valid": 64, "n_test": 64},
    "model": {"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [8]}},
    "train": {"epochs": 2, "batch_size": 32, "progress": "none"},
}


def test_loss_is_read_back_once_per_window_not_per_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop, "SYNC_EVERY", 7)
    calls: list[int] = []
    real = distributed.all_reduce_sum

    def counting(d, values):
        calls.append(len(values))
        return real(d, values)

    monkeypatch.setattr(distributed, "all_reduce_sum", counting)
    run = train(CFG, run_dir=tmp_path / "run", quiet=True)
    # 20 steps per epoch: syncs at steps 7 and 14 and one at the end of the epoch, then the epoch's
    # loss total (each a two-value read); with a read per step this would be 2 * 21.
    assert len(calls) == 2 * (3 + 1), calls
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(r["train_loss"] > 0 for r in rows)


def test_windowed_loss_equals_the_per_step_mean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The epoch's train_loss does not depend on where the sync points fall."""
    losses = []
    for every in (1, 6):
        monkeypatch.setattr(loop, "SYNC_EVERY", every)
        run = train(CFG, run_dir=tmp_path / f"every{every}", quiet=True)
        losses.append([json.loads(line)["train_loss"] for line in (run / "metrics.jsonl").read_text().splitlines()])
    assert losses[0] == pytest.approx(losses[1], rel=1e-12)


def test_non_finite_loss_stops_with_exit_3(tmp_path: Path) -> None:
    with pytest.raises(loop.TrainingStopped) as e:
        train(CFG, overrides=["train.learning_rate=1e38", "train.grad_clip=null", "train.epochs=3"],
              run_dir=tmp_path / "run", quiet=True)
    assert e.value.exit_code == 3
    assert "non-finite loss" in str(e.value)
