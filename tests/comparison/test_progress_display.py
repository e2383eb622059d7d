"""The comparison's progress display on a terminal (issue 29): a fully reused re-run shows no ETA
counting down, reused runs are counted apart, and a run is named, never numbered beside the count
of finished runs."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

from modalfuse.comparison.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _runs(n: int) -> list[SimpleNamespace]:
    return [SimpleNamespace(label="text", name=f"text-seed{s}") for s in range(n)]


HISTORY = [{"epoch": e, "seconds": 30.0} for e in range(1, 11)]


def test_a_fully_reused_rerun_shows_no_eta() -> None:
    term = _Terminal()
    p = Progress(_runs(4), [10] * 4, jobs=1, stream=term)
    for i in range(4):
        p.reused(i, "valid corr 0.5", HISTORY)
    p.close()
    shown = term.getvalue()
    assert "ETA" not in shown  # 4 runs x 10 epochs x 30 s used to count down from 20m00s
    assert "4/4 runs, 4 reused" in shown


def test_the_run_label_never_lags_the_counter() -> None:
    term = _Terminal()
    p = Progress(_runs(3), [2] * 3, jobs=2, stream=term)
    p.reused(0, "", HISTORY)
    p.start(1)
    p.start(2)
    p.finish(2, {"seconds": 1.0}, "valid corr 0.5", history=HISTORY)  # finished out of order
    shown = term.getvalue()
    assert not re.search(r"run \d+/3", shown)  # no place-in-plan number beside "2/3 runs"
    assert "text-seed2: done in 1.0s" in shown and "2/3 runs, 1 reused" in shown


def test_plain_lines_count_finished_runs() -> None:
    log = io.StringIO()
    p = Progress(_runs(3), [2] * 3, jobs=2, stream=log)
    p.reused(0, "", HISTORY)
    p.finish(2, {"seconds": 1.0}, "valid corr 0.5", history=HISTORY)
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("[1/3 done] text-seed0: finished earlier, reused") and "ETA" not in lines[0]
    assert lines[1].startswith("[2/3 done] text-seed2: done in 1.0s") and "ETA" in lines[1]
