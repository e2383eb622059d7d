"""The launcher side of ``compare --launcher slurm`` (``slurm`` has the scheduler's primitives):
``SlurmLauncher.run`` reconciles the plan's runs with their run folders and ``squeue`` until every run
is finished (or once, with ``--detach``); ``run_task`` is what each array task runs on its node.
``SlurmLauncher.tune`` runs ``--tune`` trials the same way (``slurm_tune``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from ..config import build_config
from ..errors import UserError
from ..training.runfolder import ANALYSIS, RunFolder
from .plan import Plan, RunSpec
from .slurm import (SlurmOptions, alive_jobs, graceful_stop, load_state, save_state, scheduler_facts, submit, task_error,
                    task_log, task_wall_seconds)


# ---------------------------------------------------------------------------------------------
# One task (on a node)
# ---------------------------------------------------------------------------------------------

def run_task(label: str, seed: int, raw: dict[str, Any], run_dir: str, earlier: list[str]) -> dict[str, Any]:
    """A Slurm task: train (or resume, or only analyse) one run of a comparison, then record the
    scheduler's facts in its folder. ``earlier``: the job ids of this run's earlier attempts."""
    import torch

    from .runner import _run_one, _state

    started = time.time()
    graceful_stop()
    facts = scheduler_facts()
    torch.set_num_threads(facts["cpus"] or 1)
    run = RunFolder(run_dir)
    cfg = build_config(raw)
    state = _state(run, RunSpec(label, seed, raw, cfg))
    result: dict[str, Any] = {"seconds": 0.0, "analysis_seconds": 0.0}
    if state != "finished":  # finished: another launcher's task got there first
        result = _run_one(0, cfg, run_dir, state, on_event=lambda *a: None)
    run.write_scheduler({
        **facts, "attempts": [*earlier, facts["job_id"]], "state_found": state,
        "wall_seconds": task_wall_seconds(started), "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "seconds": result.get("seconds"), "analysis_seconds": result.get("analysis_seconds"),
    })
    return result


# ---------------------------------------------------------------------------------------------
# The launcher (where `compare` runs)
# ---------------------------------------------------------------------------------------------

def _done(run: RunFolder) -> bool:
    return run.is_finished() and run.has(ANALYSIS)


class _Watch:
    """What the waiting launcher shows: a run's Slurm state and the epochs its log holds."""

    def __init__(self, progress: Any, p: Plan, folder: Path) -> None:
        self.progress, self.p, self.folder = progress, p, folder
        self.shown: dict[int, str] = {}
        self.epochs: dict[int, int] = {}

    def look(self, i: int, job: str, state: str | None) -> None:
        if state and self.shown.get(i) != f"{job} {state}":
            self.shown[i] = f"{job} {state}"
            self.progress.note(i, f"Slurm job {job} {state.lower()}")
        rows = RunFolder(self.folder / "runs" / self.p.runs[i].name).read_history() if state == "RUNNING" else []
        for row in rows[self.epochs.get(i, 0):]:
            self.progress.event(i, "epoch", (row.get("epoch", 0), row.get("seconds", 0.0)))
        self.epochs[i] = max(self.epochs.get(i, 0), len(rows))


def _reconcile(p: Plan, folder: Path, opts: SlurmOptions, state: dict[str, Any], pending: set[int],
               watch: _Watch | None, submitted: dict[str, int]) -> tuple[list[tuple[int, str]], list[str]]:
    """One look: runs finished since, runs to (re)submit, and runs out of attempts (their lines).

    ``submitted`` counts this command's submissions per run: each command may submit a run
    ``1 + retries`` times, so running it again after fixing a failure's cause tries again."""
    from .runner import _monitor_text

    alive = alive_jobs()
    submit_now, failed = [], []
    for i in sorted(pending):
        spec = p.runs[i]
        run = RunFolder(folder / "runs" / spec.name)
        jobs = state["runs"].get(spec.name, [])
        if jobs and jobs[-1] in alive:
            if watch:
                watch.look(i, jobs[-1], alive[jobs[-1]])
            continue
        if _done(run):
            pending.discard(i)
            if watch:
                info = run.read_scheduler() or {}
                watch.progress.finish(i, {"seconds": info.get("wall_seconds", 0.0),
                                          "analysis_seconds": info.get("analysis_seconds") or 0.0},
                                      _monitor_text(run), history=run.read_history())
            continue
        if jobs and watch and watch.shown.get(i, "").startswith(jobs[-1] + " "):  # seen alive, now gone
            watch.shown.pop(i)
            watch.progress.note(i, f"Slurm job {jobs[-1]} ended unfinished: {task_error(folder, jobs[-1])}")
        if submitted.get(spec.name, 0) > opts.retries:
            failed.append(f"{spec.name} (job {jobs[-1]}: {task_error(folder, jobs[-1])}; "
                          f"log {task_log(folder, jobs[-1])})")
            pending.discard(i)
            continue
        submit_now.append((i, "resubmitted" if jobs else "submitted"))
    return submit_now, failed


def _submit_runs(p: Plan, folder: Path, opts: SlurmOptions, state: dict[str, Any], todo: list[tuple[int, str]],
                 stream: Any, submitted: dict[str, int]) -> None:
    calls = []
    for i, _ in todo:
        spec = p.runs[i]
        calls.append((spec.label, spec.seed, spec.raw, str((folder / "runs" / spec.name).resolve()),
                      list(state["runs"].get(spec.name, []))))
    jobs = submit(run_task, calls, folder, opts, f"modalfuse-{p.name}")
    for (i, how), job in zip(todo, jobs):
        state["runs"].setdefault(p.runs[i].name, []).append(job)
        submitted[p.runs[i].name] = submitted.get(p.runs[i].name, 0) + 1
    save_state(folder, state)
    again = sum(how == "resubmitted" for _, how in todo)
    print(f"Slurm: submitted {len(todo)} run(s) as job array {jobs[0].split('_')[0]}"
          + (f" ({again} resubmitted to resume)" if again else ""), file=stream, flush=True)


def _run_on_slurm(p: Plan, folder: Path, opts: SlurmOptions, *, stream: Any = None, command: str = "") -> bool:
    """Train and analyse every run of ``p`` as Slurm array tasks; True once all are finished.

    With ``opts.detach`` it submits what needs submitting and returns False at once (unless every
    run had already finished). Raises ``UserError`` naming the runs that used up their attempts.
    """
    from .progress import Progress
    from .runner import _monitor_text, _state

    stream = stream or sys.stderr
    folder = folder.resolve()
    state = load_state(folder)
    epochs = [spec.config.train.epochs for spec in p.runs]
    progress = Progress(p.runs, epochs, jobs=opts.array_parallelism, stream=stream)
    pending = set()
    for i, spec in enumerate(p.runs):
        run = RunFolder(folder / "runs" / spec.name)
        # a folder trained with another config stops the command here, before any task would fail on it
        if _state(run, spec) == "finished" and _done(run):
            progress.reused(i, _monitor_text(run), history=run.read_history())
        else:
            pending.add(i)
    watch = None if opts.detach else _Watch(progress, p, folder)
    failed: list[str] = []
    submitted: dict[str, int] = {}
    try:
        while True:
            todo, out_of_attempts = _reconcile(p, folder, opts, state, pending, watch, submitted)
            failed += out_of_attempts
            if todo:
                _submit_runs(p, folder, opts, state, todo, stream, submitted)
            if failed and not pending:
                raise UserError(f"{len(failed)} run(s) failed on Slurm, each after {opts.retries + 1} attempt(s) by this "
                                f"command: "
                                + "; ".join(failed) + f"; fix the cause, then run the same command again: {command}")
            if not pending:
                return True
            if opts.detach:
                print(f"Slurm: {len(pending)} run(s) queued or running; run the same command again to follow "
                      f"them, resubmit failed ones and write the report: {command}", file=stream, flush=True)
                return False
            progress.tick()
            time.sleep(opts.poll_seconds)
    except KeyboardInterrupt:
        print(f"\nstopped waiting; the Slurm jobs go on (scancel to stop them); run the same command again "
              f"to follow them: {command}", file=stream, flush=True)
        raise
    finally:
        progress.close()


class SlurmLauncher:
    """``compare``'s cluster launcher: ``compare(..., launcher=SlurmLauncher(options))``."""

    def __init__(self, options: SlurmOptions) -> None:
        self.options = options

    def flags(self) -> str:
        return self.options.flags()

    def run(self, p: Plan, folder: Path, *, stream: Any = None, command: str = "") -> bool:
        """Train and analyse every run of ``p`` as Slurm array tasks; True once all are finished
        (False: detached with runs still queued)."""
        return _run_on_slurm(p, folder, self.options, stream=stream, command=command)

    def tune(self, p: Plan, folder: Path, first: dict[str, RunSpec], trials: int, storage: str, *,
             stream: Any = None) -> list[dict[str, Any]] | None:
        """``--tune``'s trials as Slurm array tasks (``slurm_tune.tune_on_slurm``)."""
        from .slurm_tune import tune_on_slurm

        return tune_on_slurm(p, folder, first, trials, storage, self.options, stream=stream)

    def default_storage(self, folder: Path) -> str:
        """A journal file in the comparison folder: every node opens it there, no database server."""
        return str((folder / "tuning.journal").resolve())
