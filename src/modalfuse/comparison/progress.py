"""One progress display for a whole comparison: runs done, what each worker is doing, and an ETA
weighted by each model's measured cost.

The ETA is the work left divided by the workers that can share it: for every unfinished run, its
epochs left times its model's measured seconds per epoch (from this session's epochs, or the
``metrics.jsonl`` of that model's finished runs), plus the measured analysis time per run. A model
not measured yet is costed at the mean of the measured ones; before anything is measured the
display says ``ETA ?`` rather than guess.
"""

from __future__ import annotations

import sys
import time
from typing import Any


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """A bar on a terminal (tqdm), plain log lines otherwise."""

    def __init__(self, runs: list[Any], epochs: list[int], *, jobs: int = 1, stream: Any = None) -> None:
        self.runs, self.epochs, self.jobs = runs, epochs, max(1, jobs)
        self.stream = stream or sys.stderr
        self.done_epochs = [0] * len(runs)
        self.finished = [False] * len(runs)
        self.running: dict[int, str] = {}
        self.epoch_seconds: dict[str, list[float]] = {}  # label -> measured seconds per epoch
        self.analysis_seconds: list[float] = []
        self.t0 = time.perf_counter()
        self.bar = None
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=len(runs), file=self.stream, dynamic_ncols=True,
                            bar_format="{desc} |{bar}| {n_fmt}/{total_fmt} runs{postfix} [{elapsed}]")
        self.reused_count = 0

    # --- cost model ----------------------------------------------------------------------------
    def _per_epoch(self, label: str) -> float | None:
        mine = self.epoch_seconds.get(label)
        if mine:
            return sum(mine) / len(mine)
        known = [sum(v) / len(v) for v in self.epoch_seconds.values() if v]
        return sum(known) / len(known) if known else None

    def remaining_seconds(self) -> float | None:
        """Estimated wall-clock seconds left, or None before any epoch was measured."""
        work, left = 0.0, 0
        analysis = sum(self.analysis_seconds) / len(self.analysis_seconds) if self.analysis_seconds else 0.0
        for i, spec in enumerate(self.runs):
            if self.finished[i]:
                continue
            cost = self._per_epoch(spec.label)
            if cost is None:
                return None
            work += max(0, self.epochs[i] - self.done_epochs[i]) * cost + analysis
            left += 1
        return work / max(1, min(self.jobs, left))

    def eta(self) -> str:
        rest = self.remaining_seconds()
        return "ETA ?" if rest is None else f"ETA {duration(rest)}"

    # --- events --------------------------------------------------------------------------------
    def _say(self, i: int, text: str, eta: bool = True) -> None:
        # The run is named, not numbered: with several workers, runs finish out of order, and a run's
        # place in the plan beside the count of finished runs reads as a lagging counter.
        eta_text = f"  {self.eta()}" if eta and not all(self.finished) else ""
        if self.bar is not None:
            self.bar.set_description_str(f"{self.runs[i].name}: {text}{eta_text}")
        else:
            done = sum(self.finished)
            print(f"[{done}/{len(self.runs)} done] {self.runs[i].name}: {text}" + (f"  ({eta_text.strip()})" if eta_text else ""),
                  file=self.stream, flush=True)

    def reused(self, i: int, text: str, history: list[dict[str, Any]]) -> None:
        """A run finished earlier: counted apart (reusing costs no training time, so no ETA here)."""
        self.finished[i] = True
        self.reused_count += 1
        self.epoch_seconds.setdefault(self.runs[i].label, []).extend(
            float(r["seconds"]) for r in history if isinstance(r.get("seconds"), (int, float)))
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.reused_count} reused", refresh=False)
            self.bar.update(1)
        self._say(i, f"finished earlier, reused ({text})", eta=False)

    def starting_state(self, i: int, state: str, epochs_done: int) -> None:
        self.done_epochs[i] = epochs_done
        if state == "trained":  # trained earlier, its analysis is missing
            self.done_epochs[i] = self.epochs[i]
        self.running[i] = {"resumable": "resuming", "trained": "trained earlier, analysing"}.get(
            state, f"training ({self.epochs[i]} epochs)")

    def note(self, i: int, text: str) -> None:
        """A line about run ``i`` from outside the training loop (e.g. its scheduler state)."""
        self._say(i, text)

    def start(self, i: int) -> None:
        self._say(i, self.running.get(i, "training"))

    def event(self, i: int, kind: str, value: Any) -> None:
        if kind == "epoch":
            epoch, seconds = value
            self.done_epochs[i] = int(epoch)
            if seconds:
                self.epoch_seconds.setdefault(self.runs[i].label, []).append(float(seconds))
            if self.bar is not None:
                self._say(i, f"epoch {epoch}/{self.epochs[i]}")
        elif kind == "analysing":
            self.done_epochs[i] = self.epochs[i]
            if self.bar is not None:
                self._say(i, "analysing")

    def finish(self, i: int, result: dict[str, Any], text: str, history: list[dict[str, Any]] | None = None) -> None:
        label = self.runs[i].label
        if history and label not in self.epoch_seconds:  # no per-epoch events came: cost from the log
            self.epoch_seconds[label] = [float(r["seconds"]) for r in history if isinstance(r.get("seconds"), (int, float))]
        self.finished[i] = True
        self.done_epochs[i] = self.epochs[i]
        self.analysis_seconds.append(float(result.get("analysis_seconds", 0.0)))
        if self.bar is not None:
            self.bar.update(1)
        self._say(i, f"done in {result.get('seconds', 0.0):.1f}s, {text}")

    def tick(self) -> None:
        if self.bar is not None:
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
