"""`compare --launcher slurm` on a real one-node Slurm (`.ci/slurm`): a comparison, a cancelled
task that resumes, the same metrics as a local run, and a tuning sweep as array tasks."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from pathlib import Path

import pytest

from modalfuse.comparison import compare
from modalfuse.comparison.slurm import SlurmOptions, alive_jobs, load_state
from modalfuse.comparison.slurm_runs import SlurmLauncher
from modalfuse.errors import UserError

TIMING = {"train_seconds", "inference_samples_per_s", "flops_per_sample", "peak_memory_mb"}
TINY = ["data.n_train=64", "data.n_valid=32", "data.n_test=48", "train.epochs=2", "train.batch_size=32"]


def _launcher(**kw) -> SlurmLauncher:
    return SlurmLauncher(SlurmOptions(poll_seconds=0.5, **kw))


def _metric_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "report" / "results.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def _wait(condition, what: str, timeout: float = 300.0, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


@pytest.mark.slow
def test_compare_synthetic_runs_as_array_tasks_with_the_local_metrics(slurm_cluster, tmp_path: Path) -> None:
    out = tmp_path / "slurm"
    # --detach: submitted, the jobs are in squeue, nothing is trained by this process
    compare(["synthetic"], seeds=2, out=str(out), overrides=TINY, stream=io.StringIO(),
            launcher=_launcher(detach=True))
    jobs = load_state(out)["runs"]
    assert len(jobs) == 12 and all(len(j) == 1 for j in jobs.values())
    assert len({j[0].split("_")[0] for j in jobs.values()}) == 1  # one job array
    queued = alive_jobs()
    assert any(j[0] in queued for j in jobs.values()), "the array's tasks are not visible to squeue"
    assert not (out / "report").exists()
    # the same command without --detach follows them to the end and writes the report
    log = io.StringIO()
    compare(["synthetic"], seeds=2, out=str(out), overrides=TINY, stream=log, launcher=_launcher())
    assert load_state(out)["runs"] == jobs  # nothing resubmitted
    for name, (job,) in jobs.items():
        facts = json.loads((out / "runs" / name / "scheduler.json").read_text())
        assert facts["job_id"] == job and facts["attempts"] == [job] and facts["node"] and facts["cpus"] == 1
    assert "Scheduler" in (out / "report" / "report.md").read_text()
    local = compare(["synthetic"], seeds=2, out=str(tmp_path / "local"), overrides=TINY, stream=io.StringIO(), jobs=1)
    assert _metric_rows(out) == _metric_rows(local)


def _epochs(run: Path) -> int:
    return len((run / "metrics.jsonl").read_text().splitlines()) if (run / "metrics.jsonl").is_file() else 0


@pytest.mark.slow
def test_cancelled_and_timed_out_tasks_are_resubmitted_alone_and_resume(slurm_cluster, tmp_path: Path) -> None:
    """seed0: `scancel` (SIGTERM, as pre-emption); seed1: Slurm's time-limit warning (SIGUSR2);
    seed2 untouched. Re-running resubmits seed0 and seed1 only; both continue from last.pt."""
    import modalfuse

    out = tmp_path / "cancel"
    # one model (the synthetic training config), three seeds; long enough to be stopped mid-run
    args = ([str(Path(modalfuse.__file__).parent / "configs" / "synthetic.yaml")],)
    kw = dict(seeds=3, out=str(out), overrides=["data.n_train=2048", "data.n_valid=64", "data.n_test=64",
                                                "train.epochs=60", "train.patience=null", "train.batch_size=32"])
    compare(*args, **kw, stream=io.StringIO(), launcher=_launcher(detach=True))
    first = load_state(out)["runs"]
    stopped = {"synthetic-seed0": ["scancel"], "synthetic-seed1": ["scancel", "--signal=USR2"]}
    for name, command in stopped.items():
        _wait(lambda: _epochs(out / "runs" / name) >= 2, f"two epochs of {name}")
        subprocess.run([*command, first[name][0]], check=True)
    before = {}
    for name in stopped:
        _wait(lambda: first[name][0] not in alive_jobs(), f"the task of {name} to end")
        run = out / "runs" / name
        assert not (run / "run.json").exists() and (run / "checkpoints" / "last.pt").is_file(), name
        before[name] = _epochs(run)
    compare(*args, **kw, stream=io.StringIO(), launcher=_launcher())
    after = load_state(out)["runs"]
    assert after["synthetic-seed2"] == first["synthetic-seed2"]  # not resubmitted
    for name in stopped:
        assert after[name][0] == first[name][0] and len(after[name]) == 2
        run = out / "runs" / name
        facts = json.loads((run / "scheduler.json").read_text())
        assert facts["state_found"] == "resumable" and facts["attempts"] == after[name]
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1)) and len(rows) > before[name]
    local = compare(*args, seeds=3, out=str(tmp_path / "local"), overrides=kw["overrides"], stream=io.StringIO(), jobs=1)
    assert _metric_rows(out) == _metric_rows(local)  # the resumed runs compute what uninterrupted ones do


@pytest.mark.slow
def test_tuning_trials_run_as_array_tasks(slurm_cluster, tiny_preset: Path, tmp_path: Path) -> None:
    import optuna

    out = tmp_path / "tuned"
    compare([str(tiny_preset)], seeds=1, out=str(out), tune=2, stream=io.StringIO(), launcher=_launcher())
    state = load_state(out)
    with open(out / "tuning.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for label in ("text", "late", "attention"):
        mine = [r for r in rows if r["model"] == label]
        assert [r["state"] for r in mine] == ["COMPLETE", "COMPLETE"]
        jobs = state["trials"][f"tiny-{label}"]
        assert sorted(jobs) == ["0", "1"]
        for number, job in jobs.items():  # each trial was an array task, and says so
            facts = json.loads((out / "tuning" / label / f"trial-{number}" / "scheduler.json").read_text())
            assert facts["job_id"] == job
        # asked together, the trials hold the values a sequential seeded search draws
        ref = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
        for r in mine:
            t = ref.ask()
            lr = t.suggest_float("train.learning_rate", 1e-3, 1e-1, log=True)
            assert json.loads(r["train.learning_rate"]) == pytest.approx(lr)
            ref.tell(t, 0.0)
    assert len({j.split("_")[0] for per in state["trials"].values() for j in per.values()}) == 1  # one array
    tuning = json.loads((out / "tuning.json").read_text())
    assert tuning["storage"] == "journal" and (out / "tuning.journal").is_file()
    for label, best in tuning["best"].items():
        assert f"learning_rate: {best['params']['train.learning_rate']}" in (out / "runs" / f"{label}-seed0" / "config.yaml").read_text()
    assert "## Tuning" in (out / "report" / "report.md").read_text()


@pytest.mark.slow
def test_a_run_that_keeps_failing_stops_after_its_retries_naming_its_log(slurm_cluster, tmp_path: Path) -> None:
    import modalfuse

    config = str(Path(modalfuse.__file__).parent / "configs" / "synthetic.yaml")
    out = tmp_path / "failing"
    # the environment set-up line fails on the node, so no attempt ever reaches Python (one run: a plain job, no array)
    with pytest.raises(UserError, match=r"1 run\(s\) failed on Slurm, each after 2 attempt\(s\).*synthetic-seed0 "
                                        r"\(job \d+(_0)?: ended without a result.*log .*_log.err"):
        compare([config], seeds=1, out=str(out), overrides=TINY, stream=io.StringIO(),
                launcher=_launcher(retries=1, setup=["exit 3"]))
    assert len(load_state(out)["runs"]["synthetic-seed0"]) == 2


@pytest.mark.slow
def test_the_cli_submits_with_its_flags_and_names_a_refusal(slurm_cluster, tmp_path: Path, capsys) -> None:
    import modalfuse
    from modalfuse.cli import main

    config = str(Path(modalfuse.__file__).parent / "configs" / "synthetic.yaml")
    base = ["compare", config, "--seeds", "2", *[a for o in TINY for a in ("--set", o)], "--launcher", "slurm"]
    out = tmp_path / "cli"
    assert main([*base, "--out", str(out), "--detach", "--partition", "debug", "--cpus-per-run", "1",
                 "--time-limit", "7", "--array-parallelism", "1", "--setup", "echo set-up ran"]) == 0
    jobs = load_state(out)["runs"]
    array = jobs["synthetic-seed0"][0].split("_")[0]
    script = (out / "slurm" / "jobs" / f"{array}_submission.sh").read_text()
    for line in ("#SBATCH --partition=debug", "#SBATCH --cpus-per-task=1", "#SBATCH --time=7",
                 "#SBATCH --array=0-1%1", "echo set-up ran"):
        assert line in script, line
    assert "queued or running; run the same command again" in capsys.readouterr().err
    subprocess.run(["scancel", array], check=True)
    # this one-node cluster has no GPUs: sbatch refuses, and the command says so in one line
    assert main([*base, "--out", str(tmp_path / "gpu"), "--detach", "--gpus-per-run", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sbatch refused the job array" in err[0]


def test_slurm_flags_need_the_slurm_launcher_and_valid_values(capsys) -> None:
    from modalfuse.cli import main

    assert main(["compare", "synthetic", "--partition", "gpu"]) == 2
    assert "--partition applies to --launcher slurm" in capsys.readouterr().err
    with pytest.raises(UserError, match="--retries -1"):
        SlurmOptions.build(retries=-1)
    opts = SlurmOptions.build(partition="gpu", gpus_per_run=1, setup=["source /shared/venv/bin/activate"])
    assert opts.flags() == (" --launcher slurm --partition gpu --gpus-per-run 1 "
                            "--setup 'source /shared/venv/bin/activate'")

