"""Run folders under failure: locks, torn logs, completion marker, stale temporaries, full disks,
non-finite and corrupt checkpoints, no orphan folders, resume with the wrong config (issue #17)."""

from __future__ import annotations

import errno
import json
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from modalfuse.errors import ConfigError, DataError, UserError
from modalfuse.training import runfolder
from modalfuse.training.loop import TrainingStopped
from modalfuse.training.run import evaluate_run, train
from modalfuse.training.runfolder import (append_jsonl, atomic_write, clean_stale_temporaries, folder_lock,
                                          load_checkpoint, read_jsonl, save_checkpoint)

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "data": {"name": "synthetic", "n_train": 64, "n_valid": 32, "n_test": 32},
    "model": {"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [8]}},
    "train": {"epochs": 2, "batch_size": 32, "progress": "none", "threads": 1},
}


def _tiny_run(tmp_path: Path, *overrides: str) -> Path:
    return train(TINY, overrides=list(overrides), run_dir=tmp_path / "run", quiet=True)


# --- locks --------------------------------------------------------------------------------------

def test_second_holder_is_refused_naming_the_pid_and_can_wait(tmp_path):
    with folder_lock(tmp_path):
        with pytest.raises(UserError, match=f"in use by process {os.getpid()}"):
            with folder_lock(tmp_path, wait=0):
                pass
    # waiting: the holder lets go after 0.3 s
    held = threading.Event()

    def hold():
        with folder_lock(tmp_path, wait=0):
            held.set()
            time.sleep(0.3)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    t0 = time.monotonic()
    with folder_lock(tmp_path, wait=10):
        assert time.monotonic() - t0 >= 0.1
    t.join()


@pytest.mark.slow
def test_resume_of_a_run_in_use_exits_2_naming_the_holder(tmp_path):
    run = _tiny_run(tmp_path)
    (run / "run.json").unlink()
    with folder_lock(run):
        r = subprocess.run([sys.executable, "-m", "modalfuse", "train", str(run / "config.yaml"), "--resume", str(run)],
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert f"in use by process {os.getpid()}" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# --- torn logs, completion marker, stale temporaries --------------------------------------------

def test_torn_last_line_is_dropped_with_a_warning_and_a_bad_middle_line_is_an_error(tmp_path, caplog):
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epo')
    with caplog.at_level(logging.WARNING, logger="modalfuse"):
        assert read_jsonl(log) == [{"epoch": 1}, {"epoch": 2}]
    assert "torn last line" in caplog.text
    log.write_text('{"epoch": 1}\n{"epo\n{"epoch": 3}\n')
    with pytest.raises(DataError, match="line 2"):
        read_jsonl(log)


def test_crash_before_the_completion_marker_resumes_and_cleans_up(tmp_path, caplog):
    run = _tiny_run(tmp_path)
    before = json.loads((run / "metrics.json").read_text())
    # A crash after metrics.json, before run.json; a torn log line; temporaries of killed writes.
    (run / "run.json").unlink()
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "train_lo')
    stale = [run / "checkpoints" / ".last.pt.999999.tmp", run / ".metrics.json.999999.tmp"]
    for p in stale:
        p.write_bytes(b"x" * 100)
    assert not runfolder.is_finished(run)
    with caplog.at_level(logging.WARNING, logger="modalfuse"):
        train(None, resume=run, quiet=True)
    assert runfolder.is_finished(run)
    assert not any(p.exists() for p in stale)
    assert [r["epoch"] for r in read_jsonl(run / "metrics.jsonl")] == [1, 2]
    assert json.loads((run / "metrics.json").read_text()) == before
    with pytest.raises(UserError, match="already finished"):
        train(None, resume=run, quiet=True)


def test_clean_stale_temporaries_leaves_real_files(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    keep = [tmp_path / "metrics.json", tmp_path / "checkpoints" / "last.pt"]
    for p in keep:
        p.write_text("x")
    (tmp_path / ".metrics.json.123.tmp").write_text("x")
    assert [p.name for p in clean_stale_temporaries(tmp_path)] == [".metrics.json.123.tmp"]
    assert all(p.exists() for p in keep)


# --- full disk, permissions ---------------------------------------------------------------------

def test_full_disk_is_one_line_naming_the_folder(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing "
                           "file data/0: file write failed")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(UserError, match=f"{tmp_path}: no space left on the device while writing last.pt"):
        save_checkpoint(tmp_path / "last.pt", {"model": {"w": torch.zeros(2)}})
    assert list(tmp_path.iterdir()) == []  # no temporary left behind
    monkeypatch.undo()

    def enospc(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", enospc)
    with pytest.raises(UserError, match="no space left"):
        atomic_write(tmp_path / "metrics.json", "{}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_append_to_a_full_device_is_one_line():
    with pytest.raises(UserError, match="no space left"):
        append_jsonl("/dev/full", {"epoch": 1})


# --- checkpoints --------------------------------------------------------------------------------

def test_best_keeps_weights_and_config_last_keeps_the_resumable_state(tmp_path):
    run = _tiny_run(tmp_path)
    best = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert set(best) == {"model", "config", "epoch"}
    assert {"model", "optimizer", "scheduler", "rng", "state", "config"} <= set(last)


def test_weights_that_become_non_finite_are_never_written(tmp_path):
    # issue #17 item 4: the last step of epoch 1 makes every weight inf; the loss was still finite
    overrides = ["data.n_train=64", "train.batch_size=64", "train.learning_rate=1e38", "train.warmup_epochs=0",
                 "train.schedule=none", "train.epochs=3", "train.patience=null"]
    with pytest.raises(TrainingStopped) as e:
        train(TINY, overrides=overrides, run_dir=tmp_path / "run", quiet=True)
    assert e.value.exit_code == 3 and "non-finite" in str(e.value)
    for name in ("best.pt", "last.pt"):
        path = tmp_path / "run" / "checkpoints" / name
        if path.exists():
            assert not runfolder.nonfinite_parameters(torch.load(path, weights_only=True)["model"])


def test_evaluate_refuses_non_finite_corrupt_and_tampered_checkpoints(tmp_path):
    run = _tiny_run(tmp_path)
    best = run / "checkpoints" / "best.pt"
    good = best.read_bytes()
    ck = torch.load(best, weights_only=True)
    ck["model"][next(iter(ck["model"]))].fill_(float("nan"))
    torch.save(ck, best)  # written behind modalfuse's back
    with pytest.raises(DataError, match="not finite"):
        evaluate_run(run)
    best.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="unreadable checkpoint"):
        evaluate_run(run)

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    torch.save({"model": {}, "config": Evil()}, best, pickle_module=pickle)
    with pytest.raises(DataError, match="objects other than tensors"):
        evaluate_run(run)
    torch.save({"model": ck["model"]}, best)
    with pytest.raises(DataError, match="expected keys model, config"):
        evaluate_run(run)
    ck2 = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    ck2["model"] = {k: torch.zeros(3) for k in ck2["model"]}
    torch.save(ck2, best)
    with pytest.raises(DataError, match="do not fit the model"):
        evaluate_run(run)
    best.unlink()
    best.mkdir()
    with pytest.raises(DataError, match="is a directory"):
        load_checkpoint(best)


# --- no orphan folders; resume with the wrong config -------------------------------------------

@pytest.mark.parametrize("override, error", [
    ("train.monitor=bogus", "'train.monitor': 'bogus' is not a validation metric"),
    ("model.encoders={text: {hiden_dims: [3]}}", "hiden_dims"),
    ("data.n_train=0", "data"),
])
def test_a_failed_train_leaves_no_folder(tmp_path, override, error):
    with pytest.raises(UserError, match=error):
        train(TINY, overrides=[override], out=tmp_path / "runs", quiet=True)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_monitor_is_checked_before_any_epoch(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="did you mean 'accuracy'"):
        train(TINY, overrides=["train.monitor=acuracy", "data.n_train=20000"], out=tmp_path, quiet=True)
    assert time.perf_counter() - t0 < 30


def test_resume_refuses_a_config_other_than_the_runs(tmp_path):
    run = _tiny_run(tmp_path, "train.epochs=1")
    (run / "run.json").unlink()
    other = {**TINY, "train": {**TINY["train"], "epochs": 5}}
    with pytest.raises(UserError, match=r"not the run's \(train.epochs: 1 in the run, 5 in the config\)"):
        train(other, resume=run, quiet=True)
    assert train(run / "config.yaml", resume=run, quiet=True) == run  # its own config is fine


def test_compare_refuses_a_comparison_folder_in_use(tmp_path):
    from modalfuse.comparison.runner import compare

    out = tmp_path / "cmp"
    with folder_lock(out):
        with pytest.raises(UserError, match=f"comparison folder is in use by process {os.getpid()}"):
            compare(["synthetic"], out=str(out), seeds=1)
    assert not (out / "runs").exists()  # nothing was started
