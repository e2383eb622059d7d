"""``compare --launcher slurm``: every pending run of a comparison becomes one task of a Slurm job
array (submitted with submitit, the ``[slurm]`` extra), writing into the comparison's folder, which
must be on a file system every node sees.

The launcher keeps no state the scheduler and the run folders do not already hold, except which
jobs it submitted for which run (``<comparison>/slurm/launcher.json``). Each time it looks (every
few seconds while it waits, or once per command with ``--detach``) it reconciles:

- a finished run folder (``run.json`` and ``analysis.json``) is done, whoever trained it;
- a run whose last job is still in ``squeue`` (pending, running, ...) is left alone;
- any other run is submitted again, while it has attempts left (``1 + retries``): a cancelled,
  pre-empted, timed-out or failed task resumes from its ``checkpoints/last.pt`` (the task decides
  what to do from the folder it finds, as a local ``compare`` does). Training holds the run
  folder's lock, so two launchers never train one run.

A task writes the scheduler's facts (job ids of every attempt, node, GPUs, CPUs, wall time) to the
run folder's ``scheduler.json`` (``runfolder.SCHEDULER``) when it ends; the report's set-up section
summarises them (``report.scheduler``).

This module holds the options and the scheduler's primitives (submit, ``squeue``, the launcher's
record); ``slurm_runs`` the launcher and the run tasks; ``slurm_tune`` the ``--tune`` trials.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import UserError, missing_extra
from ..training.runfolder import write_json

STATE_DIR = "slurm"  # <comparison>/slurm: launcher.json and submitit's job files and logs
STATE_FILE = "launcher.json"
# squeue states of a job that is not over yet (anything else, or no line at all, means it ended)
ALIVE = {"PENDING", "CONFIGURING", "RUNNING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
         "RESIZING", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD"}


class SlurmOptions(BaseModel):
    """What ``compare --launcher slurm`` asks of the scheduler for every run (validated once)."""

    model_config = ConfigDict(extra="forbid")

    partition: str | None = None  # default: the cluster's default partition
    gpus_per_run: int = Field(0, ge=0)
    cpus_per_run: int = Field(1, ge=1)  # also the run's torch threads
    time_min: int = Field(60, ge=1)  # per task; a task that runs out resumes on its next attempt
    array_parallelism: int = Field(64, ge=1)  # tasks of one array running at once
    setup: list[str] = Field(default_factory=list)  # shell lines run before each task (environment)
    detach: bool = False  # submit and return; the same command later collects
    retries: int = Field(2, ge=0)  # submissions after the first, per run or per tuning model
    poll_seconds: float = Field(5.0, gt=0)  # how often a waiting launcher looks at squeue

    @classmethod
    def build(cls, **values: Any) -> "SlurmOptions":
        """Validated options; a bad value is one line naming its flag."""
        try:
            return cls(**{k: v for k, v in values.items() if v is not None})
        except ValidationError as e:
            err = e.errors()[0]
            flag = FLAGS.get(str(err["loc"][0]), str(err["loc"][0]))
            raise UserError(f"{flag} {err.get('input')!r}: {err['msg'].lower()}") from None

    def flags(self) -> str:
        """The command-line flags that give these options (for the command that continues a comparison)."""
        import shlex

        parts = ["--launcher", "slurm"]
        for field, flag in FLAGS.items():
            value, default = getattr(self, field), type(self).model_fields[field].get_default(call_default_factory=True)
            if field == "detach" or value == default:
                continue
            for v in (value if isinstance(value, list) else [value]):
                parts += [flag, str(v)]
        return " " + shlex.join(parts)


# options -> compare's flags (cli._add_launcher); poll_seconds has none (the tests shorten it)
FLAGS = {"partition": "--partition", "gpus_per_run": "--gpus-per-run", "cpus_per_run": "--cpus-per-run",
         "time_min": "--time-limit", "array_parallelism": "--array-parallelism", "setup": "--setup",
         "detach": "--detach", "retries": "--retries"}


# ---------------------------------------------------------------------------------------------
# The scheduler: submit, look
# ---------------------------------------------------------------------------------------------

def _require_slurm() -> Any:
    try:
        import submitit
    except ImportError:
        raise missing_extra("compare --launcher slurm", "submitit", "slurm") from None
    for tool in ("sbatch", "squeue", "srun"):
        if shutil.which(tool) is None:
            raise UserError(f"--launcher slurm: '{tool}' is not on PATH; run compare on a machine that can "
                            f"submit Slurm jobs (a login node)")
    return submitit


def submit(fn: Callable[..., Any], calls: list[tuple], folder: Path, opts: SlurmOptions, name: str) -> list[str]:
    """Submit ``fn(*call)`` for every call as one job array; returns the task ids (``<job>_<task>``).

    The tasks run this interpreter (``sys.executable``) with this process's environment (Slurm's
    default ``--export=ALL``) after ``opts.setup``: the same Python and ``PYTHONPATH`` on one node,
    and whatever the set-up lines activate on a cluster whose nodes differ.
    """
    submitit = _require_slurm()
    executor = submitit.SlurmExecutor(folder=folder / STATE_DIR / "jobs", max_num_timeout=0)
    params: dict[str, Any] = {
        "job_name": name, "time": opts.time_min, "cpus_per_task": opts.cpus_per_run,
        "array_parallelism": opts.array_parallelism, "setup": list(opts.setup),
        # Slurm's warning before the time limit (--signal=USR2@60); graceful_stop turns it into SIGTERM
        "signal_delay_s": 60,
    }
    if opts.partition:
        params["partition"] = opts.partition
    if opts.gpus_per_run:
        params["gpus_per_node"] = opts.gpus_per_run
    executor.update_parameters(**params)
    import contextlib
    import io

    said = io.StringIO()  # submitit echoes sbatch's stderr; a refusal is reported once, below
    try:
        with contextlib.redirect_stderr(said):
            jobs = executor.map_array(fn, *zip(*calls))
    except Exception as e:  # noqa: BLE001 - sbatch's refusal (bad partition, too many GPUs) in one line
        text = " ".join(str(e).split())
        raise UserError(f"--launcher slurm: sbatch refused the job array: {text[-300:]}") from None
    sys.stderr.write(said.getvalue())
    return [str(j.job_id) for j in jobs]


def alive_jobs() -> dict[str, str]:
    """This user's job-array tasks that are not over: ``{"<job>_<task>": state}`` (from ``squeue``)."""
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i|%T"], check=True,
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        raise UserError(f"squeue failed: {' '.join(str(detail).split())[:200]}") from None
    jobs = {}
    for line in out.splitlines():
        job, _, state = line.strip().partition("|")
        if state in ALIVE:
            jobs[job] = state
    return jobs


def task_log(folder: Path, job: str) -> Path:
    """The stderr log of one task (submitit names it after the task id)."""
    return folder / STATE_DIR / "jobs" / f"{job}_0_log.err"


def task_error(folder: Path, job: str) -> str:
    """The last line of a failed task's error (submitit's result file), or what is known without one."""
    import pickle

    result = folder / STATE_DIR / "jobs" / f"{job}_result.pkl"
    if result.is_file():
        try:
            with open(result, "rb") as f:
                outcome, value = pickle.load(f)
            if outcome == "error":
                lines = [x for x in str(value).strip().splitlines() if x.strip()]
                return lines[-1].strip() if lines else "failed"
        except Exception:  # noqa: BLE001 - a torn result file says no more than a missing one
            pass
    return "ended without a result (cancelled, pre-empted, out of time or killed)"


def load_state(folder: Path) -> dict[str, Any]:
    import json

    path = folder / STATE_DIR / STATE_FILE
    if not path.is_file():
        return {"runs": {}}
    try:
        state = json.loads(path.read_text())
    except ValueError:
        raise UserError(f"{path}: not valid JSON; it records the Slurm jobs of this comparison "
                        f"(delete it to forget them)") from None
    state.setdefault("runs", {})
    return state


def save_state(folder: Path, state: dict[str, Any]) -> None:
    (folder / STATE_DIR).mkdir(parents=True, exist_ok=True)
    write_json(folder / STATE_DIR / STATE_FILE, state)


# ---------------------------------------------------------------------------------------------
# One task (on a node)
# ---------------------------------------------------------------------------------------------

def scheduler_facts() -> dict[str, Any]:
    """What Slurm says about the task this process runs in (its environment variables)."""
    env = os.environ
    array, index = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    gpus = env.get("CUDA_VISIBLE_DEVICES") or env.get("SLURM_JOB_GPUS") or ""
    return {
        "scheduler": "slurm", "job_id": f"{array}_{index}" if array and index else env.get("SLURM_JOB_ID"),
        "node": env.get("SLURMD_NODENAME"), "partition": env.get("SLURM_JOB_PARTITION"),
        "cpus": int(env["SLURM_CPUS_PER_TASK"]) if env.get("SLURM_CPUS_PER_TASK", "").isdigit() else None,
        "gpus": [g for g in gpus.split(",") if g],
    }


def task_wall_seconds(fallback_start: float) -> float:
    """Seconds since Slurm started this task's job (``squeue``'s start time, so the interpreter's
    start-up counts), or since ``fallback_start`` where that cannot be read."""
    import datetime as dt

    job = scheduler_facts()["job_id"]  # <array>_<task>: the array's own id would list every task
    try:
        text = subprocess.run(["squeue", "-h", "-j", str(job), "-o", "%S"], check=True, capture_output=True,
                              text=True, timeout=30).stdout.strip() if job else ""
        return round((dt.datetime.now() - dt.datetime.fromisoformat(text.splitlines()[0])).total_seconds(), 3)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return round(time.time() - fallback_start, 3)


def graceful_stop() -> None:
    """In a task: the warning signal Slurm sends before the time limit (submitit asks for SIGUSR2;
    its own handler would raise in the middle of a training step) becomes a SIGTERM to this process,
    which the training loop turns into a checkpoint at the next step and a stop, as it does for
    ``scancel`` and pre-emption. The next attempt resumes from that checkpoint."""
    import signal

    signal.signal(signal.SIGUSR2, lambda signum, frame: os.kill(os.getpid(), signal.SIGTERM))
