"""The `./run` script's set-up (issue 29), against a stand-in virtual environment whose `python`
logs what pip would install: alternating `./run test` and `./run ARGS` installs the package once,
and torch comes from PyTorch's CPU index after one short try, else from PyPI, saying which."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SHIM = """#!{python}
import os, subprocess, sys
args = sys.argv[1:]
log = os.environ["FAKE_LOG"]
if args[:2] == ["-m", "pip"]:
    with open(log, "a") as f:
        f.write("pip " + " ".join(args[2:]) + "\\n")
    sys.exit(1 if "--index-url" in args and os.environ.get("FAKE_INDEX_DOWN") else 0)
if args[:1] == ["-m"]:
    with open(log, "a") as f:
        f.write("run " + " ".join(args[1:]) + "\\n")
    sys.exit(0)
if args[:1] == ["-c"] and "importlib.metadata" in args[1]:
    version = os.environ.get("FAKE_TORCH", "")
    if not version:
        sys.exit(1)
    print(version)
    sys.exit(0)
sys.exit(subprocess.call([{python!r}, *args]))
"""


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    if os.name != "posix":
        pytest.skip("./run is a bash script")
    bin_ = tmp_path / "venv" / "bin"
    bin_.mkdir(parents=True)
    (bin_ / "python").write_text(SHIM.format(python=sys.executable))
    (bin_ / "python").chmod(0o755)
    (bin_ / "activate").write_text(f'export PATH="{bin_}:$PATH"\n')
    return tmp_path / "venv"


def _run(venv: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    outer = {k: v for k, v in os.environ.items() if k not in ("MODALFUSE_EXTRAS", "MODALFUSE_FRESH")}
    full = {**outer, "MODALFUSE_VENV": str(venv), "FAKE_LOG": str(venv / "log"), "FAKE_TORCH": "2.13.0",
            "MODALFUSE_TORCH": "cpu", **env}
    r = subprocess.run(["bash", str(ROOT / "run"), *args], env=full, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r


def _log(venv: Path) -> list[str]:
    return (venv / "log").read_text().splitlines() if (venv / "log").is_file() else []


def test_alternating_test_and_commands_installs_the_package_once(venv: Path) -> None:
    _run(venv, "setup", "test")
    _run(venv, "--version")
    _run(venv, "test", "-q")
    _run(venv, "list")
    installs = [line for line in _log(venv) if line.startswith("pip install -q -e")]
    assert installs == ["pip install -q -e .[test]"]
    assert [line for line in _log(venv) if line.startswith("run ")] == ["run modalfuse --version", "run pytest -q -q",
                                                                        "run modalfuse list"]
    # a new extra adds to what is installed, never drops the test extra
    _run(venv, "list", MODALFUSE_EXTRAS="tune")
    assert [line for line in _log(venv) if line.startswith("pip install -q -e")][-1] == "pip install -q -e .[test,tune]"
    _run(venv, "test", "-q")
    assert len([line for line in _log(venv) if line.startswith("pip install -q -e")]) == 2


def test_torch_tries_the_cpu_index_once_then_pypi_and_says_which(venv: Path) -> None:
    r = _run(venv, "setup", FAKE_TORCH="", FAKE_INDEX_DOWN="1")
    torch = [line for line in _log(venv) if "torch==" in line]
    assert len(torch) == 2
    assert "--index-url" in torch[0] and "--retries 0" in torch[0] and "--timeout" in torch[0]
    assert "--index-url" not in torch[1]
    assert "falling back to PyPI" in r.stderr and "installed from PyPI (fallback)" in r.stderr

    (venv / "log").unlink()
    (venv / ".modalfuse-setup").unlink()
    r = _run(venv, "setup", FAKE_TORCH="")
    assert len([line for line in _log(venv) if "torch==" in line]) == 1
    assert "installed from PyTorch's CPU index" in r.stderr
