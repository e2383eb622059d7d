"""A real one-node Slurm for the launcher tests: `.ci/slurm` installs (apt) and starts it when `sinfo`
does not answer; the tests skip, with its reason, only where it cannot (not root, no apt-get)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "slurm"


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    pytest.importorskip("submitit", reason="the [slurm] extra (submitit) is not installed")
    if not SCRIPT.is_file():
        pytest.skip(f"{SCRIPT} is missing")
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=900)
    if done.returncode == 3:  # the script's "cannot start Slurm here"
        pytest.skip(f"no Slurm: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, f".ci/slurm failed ({done.returncode}): {done.stderr[-2000:]}"
    assert shutil.which("sbatch") and shutil.which("squeue") and shutil.which("scancel")
