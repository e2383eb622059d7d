"""The training loop end to end on the synthetic dataset: fusion wins, run folders, resume."""

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

from modalfuse.training import train
from modalfuse.training.runfolder import load_checkpoint

BASE = {
    "data": {"name": "synthetic", "n_train": 1500, "n_valid": 400, "n_test": 800},
    "model": {"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [32]}, "head": {"name": "mlp", "hidden_dims": [64]}},
    "train": {"epochs": 12, "batch_size": 64, "learning_rate": 0.003, "schedule": "cosine", "progress": "none"},
}


def _train(tmp_path: Path, name: str, *overrides: str) -> Path:
    return train(BASE, overrides=list(overrides), run_dir=tmp_path / name, quiet=True)


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_fusion_beats_every_unimodal_model(tmp_path):
    fused = _metrics(_train(tmp_path, "fused"))["test"]["accuracy"]
    uni = {m: _metrics(_train(tmp_path, m, f"model.modalities=[{m}]"))["test"]["accuracy"] for m in ("text", "audio", "video")}
    # One modality alone sees at most one of the two label bits (<= ~50%); fused sees both.
    assert max(uni.values()) < 0.6, uni
    assert fused > max(uni.values()) + 0.25, (fused, uni)


def test_run_folder_holds_config_logs_metrics_and_safe_checkpoints(tmp_path):
    run = _train(tmp_path, "run", "train.epochs=3")
    for name in ("config.yaml", "metrics.jsonl", "metrics.json", "run.json", "data.json",
                 "checkpoints/best.pt", "checkpoints/last.pt"):
        assert (run / name).is_file(), name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert {"train_loss", "valid_accuracy", "seconds", "samples_per_s"} <= set(rows[0])
    metrics = _metrics(run)
    assert set(metrics) == {"valid", "test"}
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
    ck = load_checkpoint(run / "checkpoints" / "last.pt")  # weights_only=True inside
    assert {"model", "optimizer", "scheduler", "rng", "state", "config"} <= set(ck)
    assert ck["state"]["epoch"] == 3
    assert ck["config"]["train"]["epochs"] == 3


def test_select_last_keeps_the_final_epoch(tmp_path):
    run = _train(tmp_path, "last", "train.epochs=3", "train.select=last", "train.patience=1")
    assert json.loads((run / "run.json").read_text())["best_epoch"] == 3  # patience never stops it
    best = load_checkpoint(run / "checkpoints" / "best.pt")["model"]
    last = load_checkpoint(run / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(best[k], last[k]) for k in last)


def test_runs_never_overwrite_each_other(tmp_path):
    a = train(BASE, overrides=["train.epochs=1"], out=tmp_path, quiet=True)
    b = train(BASE, overrides=["train.epochs=1"], out=tmp_path, quiet=True)
    assert a != b and a.parent == b.parent == tmp_path
    with pytest.raises(Exception, match="not empty"):
        train(BASE, overrides=["train.epochs=1"], run_dir=a, quiet=True)


def test_metrics_for_multilabel_and_regression_tasks(tmp_path):
    ml = _metrics(_train(tmp_path, "ml", "data.task=multilabel", "train.epochs=2", "eval.top_k=3"))
    assert 0.0 <= ml["test"]["gap"] <= 1.0
    reg = _metrics(_train(tmp_path, "reg", "data.task=regression", "train.epochs=2"))
    assert reg["test"]["mae"] >= 0.0


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_final_metrics(tmp_path):
    """SIGKILL mid-training (no chance to save), resume from the last epoch checkpoint: the final
    metrics equal an uninterrupted run's with the same seed."""
    sets = ["data.n_train=12000", "data.n_valid=300", "data.n_test=300", "train.epochs=3",
            "train.deterministic=true", "train.progress=none", "train.schedule=cosine"]
    config = Path(__file__).resolve().parents[2] / "configs" / "synthetic.yaml"
    args = [sys.executable, "-m", "modalfuse", "train", str(config), *sum([["--set", s] for s in sets], [])]
    full = subprocess.run([*args, "--out", str(tmp_path / "full")], capture_output=True, text=True, check=True)
    full_dir = Path(full.stdout.strip().splitlines()[-1])

    proc = subprocess.Popen([*args, "--out", str(tmp_path / "cut")], stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    run_dir = None
    while time.time() < deadline:
        found = list((tmp_path / "cut").glob("*/metrics.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 1:
            run_dir = found[0].parent
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert run_dir is not None, "the run did not finish epoch 1 in time"
    assert not (run_dir / "metrics.json").exists(), "the run finished before it was killed"

    resumed = subprocess.run([sys.executable, "-m", "modalfuse", "train", str(run_dir / "config.yaml"), "--resume", str(run_dir)],
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert _metrics(run_dir) == _metrics(full_dir)
    rows = [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows == [1, 2, 3]


def test_log_mode_reports_progress_inside_long_epochs(tmp_path, monkeypatch, capsys):
    from modalfuse.training import loop

    monkeypatch.setattr(loop, "LOG_EVERY_SECONDS", 1e-9)  # every step counts as "a minute later"
    train(BASE, overrides=["train.epochs=1", "train.progress=log"], run_dir=tmp_path / "run")
    lines = [line for line in capsys.readouterr().out.splitlines() if " step " in line]
    steps_per_epoch = 1500 // 64 + 1
    assert lines and lines[-1].startswith(f"epoch 1/1  step {steps_per_epoch}/{steps_per_epoch}  train_loss "), lines[-3:]
    assert lines[-1].endswith("samples/s")


def test_resume_may_change_only_runtime_settings(tmp_path):
    run = _train(tmp_path, "run", "train.epochs=2")
    (run / "run.json").unlink()  # as if it had stopped before writing its completion marker
    with pytest.raises(Exception, match="'train.learning_rate' cannot change in a resumed run"):
        train(None, overrides=["train.learning_rate=0.1"], resume=run, quiet=True)
    train(None, overrides=["train.threads=1", "train.progress=none"], resume=run, quiet=True)
    assert (run / "run.json").is_file()
    saved = (run / "config.yaml").read_text()
    assert "threads: 1" in saved and "learning_rate: 0.003" in saved


def test_resume_before_the_first_checkpoint_logs_each_epoch_once(tmp_path):
    # A run killed after appending epoch 1's log line but before writing its checkpoint.
    run = _train(tmp_path, "run", "train.epochs=1")
    (run / "metrics.json").unlink()
    (run / "run.json").unlink()
    for p in (run / "checkpoints").iterdir():
        p.unlink()
    train(None, resume=run, quiet=True)
    rows = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows == [1]
