"""The README's "Your own data" example runs as written: the Python block builds the table, then the
two commands (``compare`` with one seed and one epoch, to stay fast) give a report."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

pytest.importorskip("pyarrow")

from modalfuse.cli import main  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"


def _example() -> tuple[str, list[list[str]]]:
    text = README.read_text()
    block = re.search(r"<!-- own-data-example.*?-->(.*?)<!-- /own-data-example -->", text, re.S)
    assert block, "README: the own-data-example markers are missing"
    python = re.search(r"```python\n(.*?)```", block.group(1), re.S).group(1)
    shell = re.search(r"```bash\n(.*?)```", block.group(1), re.S).group(1)
    commands = [line.split("#")[0].split() for line in shell.splitlines() if line.strip()]
    return python, commands


@pytest.mark.slow
def test_readme_own_data_example_runs_as_written(tmp_path, monkeypatch, capsys):
    python, commands = _example()
    assert [c[:2] for c in commands] == [["modalfuse", "init"], ["modalfuse", "compare"]]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "example.py").write_text(python)
    runpy.run_path(str(tmp_path / "example.py"))
    assert main(commands[0][1:]) == 0
    assert "next: modalfuse compare comparison.yaml" in capsys.readouterr().out
    assert main([*commands[1][1:], "--seeds", "1", "--jobs", "1", "--set", "train.epochs=1"]) == 0
    reports = list(tmp_path.glob("runs/*/report/report.md"))
    assert len(reports) == 1 and "early" in reports[0].read_text()
