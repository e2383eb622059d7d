"""``compare --tune N --launcher slurm``: every model's N trials run as Slurm job-array tasks that
share one Optuna storage (a journal file in the comparison folder by default, or ``--tune-storage``).

The launcher asks the seeded TPE sampler for each trial's values (``study.ask``) and records them
before the task starts; a task only trains with those values and tells the storage its validation
score. So every model gets the same N complete trials, and the storage is created once, by the
launcher, before any task opens it. Trials asked together are sampled without each other's results:
TPE's first 10 trials are independent random draws anyway (``n_startup_trials``), so up to 10
trials per model are exactly the values a sequential local search draws; beyond that the search
sees less history than a sequential one, as any parallel Optuna search does.

A trial whose task ended without telling (cancelled, pre-empted, failed) is marked FAIL and a new
trial is asked in its place, while the model has retries left (``--retries`` failed trials per
command: running it again after fixing a failure's cause tries again).
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ..config import apply_overrides
from ..errors import UserError
from ..metrics import DEFAULT_MONITOR, direction
from ..training.runfolder import RunFolder
from .plan import Plan, RunSpec
from .slurm import (SlurmOptions, alive_jobs, graceful_stop, load_state, save_state, scheduler_facts, submit, task_error,
                    task_log, task_wall_seconds)
from .tune import _optuna, _override, _suggest, _task_kind, open_storage, open_study, study_summary


def trial_task(study_name: str, storage: str, number: int, raw: dict[str, Any], values: dict[str, Any],
               trial_dir: str) -> float:
    """A Slurm task: train one tuning trial with the values the launcher chose, tell the storage."""
    import torch

    from ..training.run import train

    started = time.time()
    graceful_stop()
    facts = scheduler_facts()
    torch.set_num_threads(facts["cpus"] or 1)
    folder = Path(trial_dir)
    if folder.exists():  # an earlier attempt of this trial (Slurm requeued it): start it again
        shutil.rmtree(folder)
    train(apply_overrides(raw, [_override(k, v) for k, v in values.items()]), run_dir=folder, quiet=True)
    run = RunFolder(folder)
    value = float(run.read_completion()["best_valid"])
    shutil.rmtree(run.checkpoint_path("last").parent, ignore_errors=True)  # the trial's numbers stay, its weights go
    run.write_scheduler({**facts, "wall_seconds": task_wall_seconds(started)})
    optuna = _optuna()
    optuna.load_study(study_name=study_name, storage=open_storage(storage)).tell(number, value)
    return value


def _look(study: Any, jobs: dict[str, str], alive: dict[str, str]) -> tuple[int, int, int]:
    """Complete, running and failed trials of one study; a trial whose task ended without telling
    is marked FAIL here."""
    optuna = _optuna()
    state = optuna.trial.TrialState
    complete = running = 0
    for t in study.get_trials(deepcopy=False):
        if t.state == state.COMPLETE:
            complete += 1
        elif t.state == state.RUNNING:
            if jobs.get(str(t.number)) in alive:
                running += 1
            else:
                study.tell(t.number, state=state.FAIL)
    failed = sum(t.state == state.FAIL for t in study.get_trials(deepcopy=False))
    return complete, running, failed


def _ask(study: Any, p: Plan, spec: RunSpec, storage: str, folder: Path, n: int) -> list[tuple[int, tuple]]:
    """Ask the study for ``n`` trials; each one's task arguments."""
    calls = []
    for _ in range(n):
        trial = study.ask()
        values = {k: _suggest(trial, k, s) for k, s in p.tune.items()}
        trial.set_user_attr("values", values)
        trial_dir = folder / "tuning" / spec.label / f"trial-{trial.number}"
        calls.append((trial.number, (study.study_name, storage, trial.number, spec.raw, values, str(trial_dir))))
    return calls


def tune_on_slurm(p: Plan, folder: Path, first: dict[str, RunSpec], trials: int, storage: str, opts: SlurmOptions,
                  *, stream: Any = None) -> list[dict[str, Any]] | None:
    """Run every model's study to ``trials`` complete trials as Slurm tasks; ``tune.study_summary``
    of each, or None when ``opts.detach`` left trials queued."""
    stream = stream or sys.stderr
    folder = folder.resolve()
    state = load_state(folder)
    studies = {}
    for label, spec in first.items():
        monitor = spec.config.train.monitor or DEFAULT_MONITOR.get(_task_kind(spec.config), "accuracy")
        studies[label] = (monitor, open_study(f"{p.name}-{label}", storage, direction(monitor)))
    shown: dict[str, int] = {}
    failed_before: dict[str, int] = {}  # FAIL trials found when this command started
    while True:
        alive = alive_jobs()
        asked: list[tuple[str, int, tuple]] = []
        busy = False
        for label, (_, study) in studies.items():
            jobs = state.setdefault("trials", {}).setdefault(study.study_name, {})
            complete, running, failed = _look(study, jobs, alive)
            if shown.get(label) != complete:
                shown[label] = complete
                print(f"tuning {label}: {complete}/{trials} trials complete", file=stream, flush=True)
            need = trials - complete - running
            failed_before.setdefault(label, failed)
            if need > 0 and failed - failed_before[label] > opts.retries:
                last = max(jobs.items(), key=lambda kv: int(kv[0]))[1] if jobs else "?"
                raise UserError(f"tuning {label}: {failed - failed_before[label]} trials failed on Slurm (more than --retries "
                                f"{opts.retries}); "
                                f"last: job {last}: {task_error(folder, last)}; log {task_log(folder, last)}")
            asked += [(label, number, call) for number, call in _ask(study, p, first[label], storage, folder, max(0, need))]
            busy = busy or running > 0 or need > 0
        if asked:
            ids = submit(trial_task, [call for _, _, call in asked], folder, opts, f"modalfuse-{p.name}-tune")
            for (label, number, _), job in zip(asked, ids):
                state["trials"][studies[label][1].study_name][str(number)] = job
            save_state(folder, state)
            print(f"Slurm: submitted {len(asked)} tuning trial(s) as job array {ids[0].split('_')[0]}",
                  file=stream, flush=True)
        if not busy:
            return [study_summary(label, monitor, study) for label, (monitor, study) in studies.items()]
        if opts.detach:
            print("Slurm: tuning trials queued or running; run the same command again to follow them",
                  file=stream, flush=True)
            return None
        time.sleep(opts.poll_seconds)
