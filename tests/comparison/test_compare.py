"""`modalfuse compare`: plans, reuse, interruption and resumption."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
from pathlib import Path

import pytest

from modalfuse.config import build_config, load_yaml
from modalfuse.errors import ConfigError, UserError
from modalfuse.comparison import compare, plan
from modalfuse.comparison.plan import COMPARE_DIR
from modalfuse.listing import compare_preset_names

TIMING = {"train_seconds", "inference_samples_per_s"}  # wall-clock numbers differ between any two runs


@pytest.mark.parametrize("name", compare_preset_names())
def test_shipped_compare_presets_build(name: str) -> None:
    """Every shipped comparison resolves to valid run configs, one per model and seed (a model
    entry's ``seeds: N`` keeps that model to its first N seeds)."""
    p = plan([name])
    models = load_yaml(COMPARE_DIR / f"{name}.yaml")["models"]
    for label in p.labels:
        cap = models[label].get("seeds", len(p.seeds)) if isinstance(models[label], dict) else len(p.seeds)
        assert [r.seed for r in p.runs if r.label == label] == p.seeds[:cap], label
    for run in p.runs:
        cfg = build_config(run.raw)
        assert cfg.train.seed == run.seed
    first_line = (Path(__file__).resolve().parents[2] / "configs" / "compare" / f"{name}.yaml").read_text().splitlines()[0]
    assert first_line == f"# modalfuse compare {name}" or first_line.startswith(f"# modalfuse compare {name} --")


def test_plan_seeds_and_errors(tiny_preset: Path) -> None:
    p = plan([str(tiny_preset)], seeds=3, overrides=["train.epochs=1"])
    assert [r.name for r in p.runs[:4]] == ["text-seed0", "late-seed0", "attention-seed0", "text-seed1"]
    assert sorted({r.seed for r in p.runs}) == [0, 1, 2]
    assert all(r.raw["train"]["epochs"] == 1 for r in p.runs)
    assert p.runs[0].raw["model"]["modalities"] == ["text"]
    training_config = Path(__import__("modalfuse").__file__).parent / "configs" / "synthetic.yaml"
    assert plan([str(training_config)]).labels == ["synthetic"]  # a plain training config is one model
    with pytest.raises(UserError, match="no such comparison preset"):
        plan(["no-such-thing"])
    bad = tiny_preset.parent / "bad.yaml"
    bad.write_text("models: {a: synthetic}\nseed: 3\n")
    with pytest.raises(ConfigError, match="unknown key 'seed'.*did you mean 'seeds'"):
        plan([str(bad)])
    with pytest.raises(ConfigError, match="train.epochz"):
        plan([str(tiny_preset)], overrides=["train.epochz=1"])


def _metric_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "report" / "results.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


@pytest.mark.slow
def test_interrupted_comparison_resumes_to_the_same_report(tiny_preset: Path, tiny_compare: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGINT in the middle of the second run's second epoch; re-running continues from there."""
    import modalfuse.training.runfolder as loop  # RunFolder.save_checkpoint writes through it

    out = tmp_path / "tiny"
    saves: list[Path] = []
    original = loop.save_checkpoint

    def save_then_interrupt(path, state):
        original(path, state)
        saves.append(Path(path))
        if Path(path).parent.parent.name == "late-seed0" and Path(path).name == "last.pt" and len(
                [s for s in saves if s.parent.parent.name == "late-seed0" and s.name == "last.pt"]) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # after epoch 1: the loop stops at the next step

    monkeypatch.setattr(loop, "save_checkpoint", save_then_interrupt)
    with pytest.raises(UserError, match="run the same command again") as info:
        compare([str(tiny_preset)], out=str(out), stream=io.StringIO())
    assert info.value.exit_code == 130
    stopped = out / "runs" / "late-seed0"
    assert not (stopped / "metrics.json").exists()
    ck = __import__("torch").load(stopped / "checkpoints" / "last.pt", weights_only=True)
    assert (ck["state"]["epoch"], ck["state"]["step"]) == (1, 1)  # mid-epoch 2
    assert not (out / "runs" / "attention-seed0").exists()
    finished = (out / "runs" / "text-seed0" / "metrics.json").stat().st_mtime_ns

    monkeypatch.setattr(loop, "save_checkpoint", original)
    log = io.StringIO()
    compare([str(tiny_preset)], out=str(out), stream=log)
    lines = log.getvalue().splitlines()
    assert any("text-seed0: finished earlier, reused" in line for line in lines)
    assert any("late-seed0: resuming" in line for line in lines)
    assert (out / "runs" / "text-seed0" / "metrics.json").stat().st_mtime_ns == finished
    assert len((stopped / "metrics.jsonl").read_text().splitlines()) == 2  # no epoch logged twice

    # The same numbers as the uninterrupted comparison, run by run (timings aside).
    assert _metric_rows(out) == _metric_rows(tiny_compare)
    for run in (out / "runs").iterdir():
        mine = json.loads((run / "analysis.json").read_text())
        theirs = json.loads((tiny_compare / "runs" / run.name / "analysis.json").read_text())
        assert mine["ablation"] == theirs["ablation"] and mine["attention"] == theirs["attention"]

    # Other settings into the same folder: refused, never mixed.
    with pytest.raises(UserError, match="different config.*train.epochs"):
        compare([str(tiny_preset)], out=str(out), overrides=["train.epochs=3"], stream=io.StringIO())


def test_unfinished_run_without_checkpoint_restarts_cleanly(tiny_preset: Path, tmp_path: Path) -> None:
    from modalfuse.comparison.runner import _state
    from modalfuse.training.runfolder import RunFolder

    spec = plan([str(tiny_preset)]).runs[0]
    folder = tmp_path / spec.name
    assert _state(RunFolder(folder), spec) == "new"
    folder.mkdir()
    assert _state(RunFolder(folder), spec) == "broken"  # no config.yaml: never trained
    (folder / "config.yaml").write_text(json.dumps(build_config(spec.raw).to_dict()))
    assert _state(RunFolder(folder), spec) == "broken"  # no checkpoint to resume from


def test_a_run_saved_before_a_key_existed_is_reused_when_the_default_reproduces_it(tiny_preset: Path,
                                                                                   tiny_compare: Path,
                                                                                   tmp_path: Path) -> None:
    """A key added later (simulated: dropped from the saved config) is no difference when today's
    default gives the value the run used (``train.warmup_epochs``: 0, the default); it still is when
    the run used another value (``train.epochs``: 2, not the default)."""
    import shutil

    import yaml

    from modalfuse.comparison.runner import _state
    from modalfuse.training.runfolder import RunFolder

    spec = plan([str(tiny_preset)]).runs[0]
    saved = yaml.safe_load((tiny_compare / "runs" / spec.name / "config.yaml").read_text())
    from modalfuse.config import TrainConfig

    assert saved["train"]["warmup_epochs"] == TrainConfig().warmup_epochs
    assert saved["train"]["epochs"] != TrainConfig().epochs
    folder = tmp_path / spec.name
    shutil.copytree(tiny_compare / "runs" / spec.name, folder)
    for key, state in (("warmup_epochs", "finished"), ("epochs", None)):
        older = dict(saved, train={k: v for k, v in saved["train"].items() if k != key})
        (folder / "config.yaml").write_text(yaml.safe_dump(older))
        if state:
            assert _state(RunFolder(folder), spec) == state
        else:
            with pytest.raises(UserError, match=f"different config.*train.{key}"):
                _state(RunFolder(folder), spec)


@pytest.mark.slow
def test_sigterm_to_a_parallel_comparison_stops_its_workers_and_says_how_to_continue(tmp_path: Path) -> None:
    """Killing `compare --jobs 2` used to leave its two workers alive for ever (blocked on a result
    nobody would read); now each stops its run at a checkpoint and nothing of the comparison remains."""
    import subprocess
    import sys
    import time

    preset = tmp_path / "long.yaml"  # long enough to be killed in the middle of training
    preset.write_text("seeds: 1\nmodels:\n  a: synthetic\n  b: synthetic\n"
                      "overrides: [data.n_train=4096, train.epochs=200, train.batch_size=8, train.patience=null]\n")
    out = tmp_path / "cmp"
    proc = subprocess.Popen([sys.executable, "-m", "modalfuse", "compare", str(preset), "--jobs", "2", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 180
        while len(list(out.glob("runs/*/checkpoints/last.pt"))) < 2 and time.time() < deadline:
            time.sleep(0.5)
        assert len(list(out.glob("runs/*/checkpoints/last.pt"))) == 2, "both workers should have checkpointed"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert "run the same command again" in err
        gone = time.time() + 30
        while time.time() < gone:
            try:
                os.killpg(proc.pid, 0)  # a worker left in the comparison's process group
            except ProcessLookupError:
                break
            time.sleep(0.5)
        else:
            pytest.fail("a worker of the killed comparison is still running")
        assert not any(out.glob("runs/*/metrics.json"))  # stopped mid-run, resumable
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
