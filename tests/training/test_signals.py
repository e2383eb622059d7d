"""Long runs: SIGTERM saves a resumable checkpoint mid-epoch; a non-finite loss stops the run and keeps
the last good checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from modalfuse.training.loop import TrainingStopped
from modalfuse.training.run import train

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "synthetic.yaml"
# ~94 steps per epoch: long enough that a signal sent after epoch 1 lands inside epoch 2.
# Dropout stays on (0.1), so the restored RNG state matters.
SETTINGS = ["data.n_train=3000", "data.n_valid=128", "data.n_test=64", "train.epochs=3", "train.batch_size=32",
            "train.deterministic=true", "train.progress=none", "train.patience=null"]


def _cmd(*args: str) -> list[str]:
    cmd = [sys.executable, "-m", "modalfuse", "train", str(CONFIG), *args]
    for s in SETTINGS:
        cmd += ["--set", s]
    return cmd


def _env() -> dict[str, str]:
    # One thread: the same float reductions in every process, so results can be compared exactly.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}


def _only_run(out: Path, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [p for p in out.iterdir() if p.is_dir()] if out.exists() else []
        if runs:
            return runs[0]
        time.sleep(0.02)
    raise AssertionError(f"no run folder appeared under {out}")


def _epochs(run: Path) -> list[dict]:
    """metrics.jsonl without the timing fields."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("seconds", "samples_per_s")} for r in rows]


@pytest.mark.slow
def test_sigterm_mid_run_then_resume_gives_the_uninterrupted_metrics(tmp_path):
    full = subprocess.Popen(_cmd("--out", str(tmp_path / "full")), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    cut = subprocess.Popen(_cmd("--out", str(tmp_path / "cut")), env=_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run = _only_run(tmp_path / "cut")
        log = run / "metrics.jsonl"
        deadline = time.monotonic() + 120
        while not (log.exists() and log.read_text().strip()) and time.monotonic() < deadline:
            assert cut.poll() is None, cut.stderr.read()
            time.sleep(0.01)
        cut.send_signal(signal.SIGTERM)
        _, err = cut.communicate(timeout=120)
    finally:
        cut.kill()
    assert cut.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM received: checkpoint saved" in err and "--resume" in err
    assert not (run / "metrics.json").exists()
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["state"]
    assert state["epoch"] < 3 and state["step"] > 0  # stopped inside an epoch

    resumed = subprocess.run([sys.executable, "-m", "modalfuse", "train", str(run / "config.yaml"),
                              "--resume", str(run)], env=_env(), capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed at epoch {state['epoch'] + 1}, step {state['step']}" in resumed.stdout

    assert full.wait(timeout=240) == 0, full.stderr.read()
    reference = _only_run(tmp_path / "full")
    # Exactly equal: CPU, one thread, deterministic algorithms, same seed; the checkpoint carries the
    # weights, optimizer, schedule, RNG states, partial-epoch loss and the position in the epoch.
    assert _epochs(run) == _epochs(reference)
    assert json.loads((run / "metrics.json").read_text()) == json.loads((reference / "metrics.json").read_text())


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    # Epoch 1 trains normally; then the step schedule multiplies the learning rate by 1e30.
    overrides = ["data.n_train=256", "data.n_valid=64", "data.n_test=64", "train.epochs=3", "train.progress=none",
                 "train.schedule=step", "train.step_size=1", "train.gamma=1e30", "train.warmup_epochs=0"]
    with pytest.raises(TrainingStopped) as e:
        train(str(CONFIG), overrides=overrides, out=tmp_path, quiet=True)
    assert e.value.exit_code == 3
    assert "non-finite loss" in str(e.value) and "epoch 2" in str(e.value)
    (run,) = tmp_path.iterdir()
    assert str(run / "checkpoints" / "last.pt") in str(e.value)
    ck = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert ck["state"]["epoch"] == 1 and all(torch.isfinite(v).all() for v in ck["model"].values())
    assert not (run / "metrics.json").exists()
