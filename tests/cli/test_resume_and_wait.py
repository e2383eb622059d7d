"""`train --resume RUN` needs no CONFIG; `--wait SECONDS` waits for a folder lock instead of refusing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TINY = ["--set", "data.n_train=64", "--set", "data.n_valid=32", "--set", "data.n_test=32", "--set", "train.epochs=2",
        "--set", "train.progress=none"]


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modalfuse", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture()
def unfinished_run(tmp_path: Path) -> Path:
    """A finished tiny run made resumable again by removing its completion marker and final files."""
    proc = _cli("train", "synthetic", *TINY, "--out", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr
    run = next((tmp_path / "runs").iterdir())
    for name in ("run.json", "metrics.json"):
        (run / name).unlink(missing_ok=True)
    return run


@pytest.mark.slow
def test_resume_without_config_uses_the_runs_own(unfinished_run: Path) -> None:
    proc = _cli("train", "--resume", str(unfinished_run))
    assert proc.returncode == 0, proc.stderr
    assert (unfinished_run / "run.json").is_file()


def test_train_without_config_or_resume_is_one_line() -> None:
    proc = _cli("train")
    assert proc.returncode == 2 and "needs a CONFIG" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_wait_lets_a_second_process_wait_for_the_lock(unfinished_run: Path) -> None:
    # The holder keeps the lock until its standard input closes, then for 8 s more (longer than a CLI start).
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\nfrom modalfuse.training.runfolder import folder_lock\n"
                               f"with folder_lock({str(unfinished_run)!r}):\n    print('held', flush=True)\n"
                               "    sys.stdin.read()\n    time.sleep(8)\n"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = _cli("train", "--resume", str(unfinished_run), "--wait", "0")
        assert refused.returncode == 2 and str(holder.pid) in refused.stderr, refused.stderr
        holder.stdin.close()  # the lock goes 8 s from now: a waiting process gets it then
        waited = _cli("train", "--resume", str(unfinished_run), "--wait", "120")
        assert waited.returncode == 0, waited.stderr
    finally:
        holder.kill() if holder.poll() is None and not holder.stdin.closed else None
        holder.wait(timeout=60)
    assert (unfinished_run / "run.json").is_file()
