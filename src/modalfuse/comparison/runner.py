"""``modalfuse compare``: train every model of a comparison under the same data, splits and seeds,
analyse each run, and render the report.

Each run is an ordinary run folder ``<out>/runs/<label>-seed<k>``; after training, ``analysis.json``
is written beside it (``modalfuse analyze``). Re-running the same command reuses finished runs,
resumes an interrupted one from its last checkpoint (or restarts it cleanly when no checkpoint was
written) and trains the rest.

``jobs > 1`` trains runs in that many worker processes (spawned, one torch thread each). A run's
result does not depend on which process trains it or what runs beside it: every run seeds every
RNG from its config, and a single-threaded CPU run computes the same numbers whether or not another
process is busy (tested: the reports of ``--jobs 1`` and ``--jobs 2`` hold the same metrics).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any


from ..config import Config
from ..errors import UserError
from ..training.runfolder import ANALYSIS, CONFIG, METRICS, ComparisonFolder, RunFolder
from .plan import Plan, RunSpec, plan
from .progress import Progress


# ---------------------------------------------------------------------------------------------
# Run folder states
# ---------------------------------------------------------------------------------------------

def _state(run: RunFolder, spec: RunSpec) -> str:
    """``new``, ``finished`` (completed and analysed), ``trained`` (analysis missing), ``resumable``
    or ``broken`` (restart cleanly). A folder trained with another config is an error."""
    if not run.path.exists():
        return "new"
    if not run.has(CONFIG):
        return "broken"
    diff = run.config_difference(spec.config.to_dict(), names=("there", "now"))
    if diff:
        raise UserError(f"{run.path}: this run was trained with a different config ({diff}); "
                        f"use another --out, or delete the folder to retrain it")
    if run.is_finished() and run.has(METRICS):
        return "finished" if run.has(ANALYSIS) else "trained"
    if not run.checkpoint_path("last").is_file():
        return "broken"  # stopped before its first checkpoint
    return "resumable"  # also a run stopped while writing its final files: resume finishes them


# ---------------------------------------------------------------------------------------------
# One run (in this process or a worker)
# ---------------------------------------------------------------------------------------------

_QUEUE: Any = None  # a worker's channel to the progress display
_DATA: dict[str, Any] = {}  # analysis rebuilds each distinct dataset once per process


def _init_worker(queue: Any) -> None:
    """Worker setup: one torch thread (runs are small; N workers share N cores) and the progress queue."""
    import torch

    global _QUEUE
    _QUEUE = queue
    torch.set_num_threads(1)


def _run_one(i: int, cfg: Config, run_dir: str, state: str, on_event: Any = None) -> dict[str, Any]:
    """Train (or resume) one run, then analyse it. Events ``(i, kind, value)`` go to ``on_event``
    (in process) or the worker queue: ``("epoch", (epoch, seconds))``, ``("analysing", None)``."""
    from ..analysis import analyze_run
    from ..datasets import build_data
    from ..training.run import train

    def emit(kind: str, value: Any) -> None:
        if on_event is not None:
            on_event(i, kind, value)
        elif _QUEUE is not None:
            _QUEUE.put((i, kind, value))

    folder = Path(run_dir)
    t0 = time.perf_counter()
    if state in ("new", "broken", "resumable"):
        if state == "broken":
            shutil.rmtree(folder)
        callback = lambda row: emit("epoch", (row["epoch"], row.get("seconds", 0.0)))  # noqa: E731
        if state == "resumable":
            train(None, resume=folder, quiet=True, on_epoch=callback)
        else:
            train(cfg, run_dir=folder, quiet=True, on_epoch=callback)
    train_s = time.perf_counter() - t0
    emit("analysing", None)
    key = json.dumps(cfg.data, sort_keys=True, default=str)
    if key not in _DATA:
        _DATA.clear()  # one dataset held at a time
        _DATA[key] = build_data(cfg.data)
    t1 = time.perf_counter()
    analyze_run(folder, data=_DATA[key])
    return {"seconds": time.perf_counter() - t0, "train_seconds": train_s, "analysis_seconds": time.perf_counter() - t1}


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------

def default_jobs() -> int:
    """CPU cores this process may use (small runs are single-threaded: one per core)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _command(configs: list[str], seeds: int | None, out: str | None, overrides: list[str]) -> str:
    parts = ["modalfuse", "compare", *configs]
    if seeds is not None:
        parts += ["--seeds", str(seeds)]
    if out is not None:
        parts += ["--out", str(out)]
    for o in overrides:
        parts += ["--set", o]
    return shlex.join(parts)


def _monitor_text(run: RunFolder) -> str:
    monitor = run.read_completion()["monitor"]
    metrics = run.read_metrics()
    value = metrics.get("test", metrics.get("valid", {})).get(monitor)
    split = "test" if "test" in metrics else "valid"
    return f"{split} {monitor} {value:.4f}" if isinstance(value, (int, float)) else ""


def run_plan(p: Plan, folder: Path, *, jobs: int = 1, stream: Any = None, command: str = "") -> None:
    """Train and analyse every run of ``p`` under ``folder/runs`` (reusing finished ones)."""
    from ..training.loop import TrainingStopped

    comparison = ComparisonFolder(folder)
    runs = [comparison.run(spec.name) for spec in p.runs]
    progress = Progress(p.runs, [spec.config.train.epochs for spec in p.runs], jobs=jobs, stream=stream)
    todo: list[tuple[int, str]] = []
    for i, spec in enumerate(p.runs):
        state = _state(runs[i], spec)
        if state == "finished":
            progress.reused(i, _monitor_text(runs[i]), history=runs[i].read_history())
        else:
            progress.starting_state(i, state, len(runs[i].read_history()) if state == "resumable" else 0)
            todo.append((i, state))

    def done(i: int, result: dict[str, Any]) -> None:
        progress.finish(i, result, _monitor_text(runs[i]), history=runs[i].read_history())

    try:
        if jobs <= 1 or len(todo) <= 1:
            for i, state in todo:
                progress.start(i)
                done(i, _run_one(i, p.runs[i].config, str(runs[i].path), state, on_event=progress.event))
        else:
            _run_parallel(p, runs, todo, jobs, progress, done)
    except TrainingStopped as e:
        progress.close()
        raise TrainingStopped(f"comparison stopped ({e}); to continue, run the same command again: {command}",
                              e.exit_code) from None
    except KeyboardInterrupt:
        progress.close()
        raise TrainingStopped(f"comparison interrupted; to continue, run the same command again: {command}",
                              130) from None
    progress.close()


@contextmanager
def _forward_sigterm(pool: ProcessPoolExecutor) -> Iterator[None]:
    """SIGTERM to the comparison reaches its workers too, as SIGINT from a terminal reaches the whole
    process group: each worker's run stops at its next step and checkpoints, and the comparison ends
    with the command that continues it. Without this the workers outlived a killed parent, blocked
    for ever on the result they could not deliver."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum: int, frame: Any) -> None:
        # The executor has no public list of its worker processes.
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, forward)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _run_parallel(p: Plan, runs: list[RunFolder], todo: list[tuple[int, str]], jobs: int, progress: Progress,
                  done: Any) -> None:
    import multiprocessing as mp
    import queue as queue_mod

    ctx = mp.get_context("spawn")  # fork after torch has started threads can deadlock
    q = ctx.Queue()
    pending: dict[Future, int] = {}
    waiting = list(todo)
    with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx, initializer=_init_worker,
                             initargs=(q,)) as pool, _forward_sigterm(pool):
        try:
            while waiting or pending:
                while waiting and len(pending) < jobs:
                    i, state = waiting.pop(0)
                    progress.start(i)
                    pending[pool.submit(_run_one, i, p.runs[i].config, str(runs[i].path), state)] = i
                finished, _ = wait(list(pending), timeout=0.5, return_when=FIRST_COMPLETED)
                while True:
                    try:
                        progress.event(*q.get_nowait())
                    except queue_mod.Empty:
                        break
                for f in finished:
                    i = pending.pop(f)
                    done(i, f.result())  # re-raises a worker's error (TrainingStopped included)
                progress.tick()
        except BaseException:
            for f in pending:
                f.cancel()
            raise


def build_ensembles(p: Plan, folder: Path) -> None:
    """The preset's ensembles (``ensembles: {name: [model, ...]}``), each from every seed of its models'
    runs, written to ``<folder>/ensembles/<name>`` unless already there (``modalfuse ensemble``)."""
    from ..ensemble import build_ensemble_run
    from ..training.runfolder import is_finished

    for name, labels in p.ensembles.items():
        out = folder / "ensembles" / name
        if not is_finished(out):
            if out.exists():
                shutil.rmtree(out)  # an ensemble interrupted while it was written: write it again
            build_ensemble_run([str(folder / "runs" / r.name) for r in p.runs if r.label in labels], out=str(out), quiet=True)


def compare(configs: list[str], seeds: int | None = None, out: str | None = None,
            overrides: list[str] | None = None, *, jobs: int | None = 1, reference: str | None = None,
            tune: int | None = None, tune_storage: str | None = None, stream: Any = None,
            robustness: bool = False, launcher: Any = None) -> Path:
    """Train (or reuse) every run of a comparison, analyse each, render the report.

    Args:
        configs: comparison presets (``mosi``, ``synthetic``) and/or training configs; empty:
            ``plan.DEFAULT_PRESET``.
        seeds: seeds per model (``0..seeds-1``); default: the preset's ``seeds``.
        out: the comparison folder; default ``runs/compare-<name>``.
        overrides: ``a.b=c`` applied to every run.
        jobs: runs trained at once (worker processes); ``None``: ``default_jobs()``.
        reference: the model the report compares every other with (default: best unimodal).
        tune: trials of the equal-budget hyperparameter search per model first (``tune.py``).
        tune_storage: an Optuna RDB storage URL for the studies (several machines, one study).
        stream: where the progress display goes (default stderr).
        robustness: after training, write robustness curves (``modalfuse robustness``) into
            ``<folder>/robustness``; the report includes them.
        launcher: a cluster launcher (``slurm_runs.SlurmLauncher``) that trains the runs (and tuning
            trials) as job-array tasks instead of local processes; detached, ``compare`` returns once
            they are submitted, before the report (the same call later collects them).

    Returns:
        The comparison folder (the report is in ``<folder>/report``).
    """
    from ..report.render import render_report, summary_table

    overrides = list(overrides or [])
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    p = plan(configs, seeds, overrides)
    folder = Path(out) if out is not None else Path("runs") / (f"compare-{p.name}" + ("-tuned" if tune else ""))
    command = _command(list(configs), seeds, out, overrides)
    comparison = ComparisonFolder(folder)
    # One process at a time per comparison folder: two would train, log and delete each other's runs.
    with comparison.lock():
        if tune:
            from .tune import tune_plan

            per_label = tune_plan(p, folder, trials=tune, overrides=overrides, storage=tune_storage, jobs=jobs,
                                  stream=stream, launcher=launcher)
            if per_label is None:  # detached: the trials are queued on the cluster
                return folder
            p = plan(configs, seeds, overrides, per_label=per_label)
            command += f" --tune {tune}" + (f" --tune-storage {shlex.quote(tune_storage)}" if tune_storage else "")
        comparison.write_plan({
            "name": p.name, "description": p.description, "command": command, "configs": list(configs),
            "seeds": p.seeds, "overrides": overrides, "labels": p.labels + list(p.ensembles), "primary": p.primary,
            "reference": p.reference,
            "runs": [{"label": r.label, "seed": r.seed, "folder": f"runs/{r.name}"} for r in p.runs]
            + [{"label": name, "seed": 0, "folder": f"ensembles/{name}"} for name in p.ensembles],
        })
        if launcher is None:
            run_plan(p, folder, jobs=jobs, stream=stream, command=command)
        elif not launcher.run(p, folder, stream=stream, command=command + launcher.flags()):
            return folder  # detached: the runs are queued on the cluster
        build_ensembles(p, folder)
        if robustness:
            from ..robustness import robustness as robustness_pass

            robustness_pass([str(folder)], reference=reference, threads=1)  # one thread, as each training run
        report = render_report([str(folder)], reference=reference)
        print(summary_table(comparison.report_dir / "summary.csv"))
        print(f"\nreport: {report}")
        return folder
