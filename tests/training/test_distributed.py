"""Multi-process training under torchrun (gloo on CPU) against one process with the same global batch."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modalfuse.training.run import evaluate_run, train

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "synthetic.yaml"
N_VALID = 128
# 256 samples = 8 global batches of 32: every step has 16 samples on each of 2 ranks, so DDP's mean
# of per-rank mean gradients is the global mean. Dropout is off (each rank draws its own masks).
SETTINGS = [
    "data.n_train=256", f"data.n_valid={N_VALID}", "data.n_test=64", "train.epochs=3", "train.batch_size=32",
    "model.head.dropout=0", "model.encoder.dropout=0", "train.progress=none", "train.patience=null",
]


def _env() -> dict[str, str]:
    # One thread per process, as torchrun sets it: same kernels, and kind to a shared machine.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}


def _train(launcher: list[str], out: Path) -> Path:
    cmd = [*launcher, "-m", "modalfuse", "train", str(CONFIG), "--out", str(out)]
    for s in SETTINGS:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, f"expected exactly one run folder, found {runs}"
    # rank 0 alone prints the run folder; other ranks print nothing to stdout
    assert proc.stdout.count("run folder ") == 1 and proc.stdout.strip().splitlines()[-1] == str(runs[0])
    return runs[0]


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    one = _train([sys.executable], tmp_path / "one")
    # `python -m torch.distributed.run` is torchrun; --standalone picks a free local port.
    two = _train([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"],
                 tmp_path / "two")

    assert json.loads((two / "run.json").read_text())["world_size"] == 2
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == ["best.pt", "last.pt"]

    # Tolerance: the only difference is float summation order (two half-batch gradients averaged by
    # an all-reduce vs one batch), ~1e-8 per step here. Per-epoch training loss within 1e-5
    # relative; the validation metric within one validation sample (1/128) per epoch and at the end.
    for a, b in zip(_log(one), _log(two), strict=True):
        assert math.isclose(a["train_loss"], b["train_loss"], rel_tol=1e-5), (a, b)
        assert abs(a["valid_accuracy"] - b["valid_accuracy"]) <= 1 / N_VALID, (a, b)
    m1 = json.loads((one / "metrics.json").read_text())
    m2 = json.loads((two / "metrics.json").read_text())
    for split in ("valid", "test"):
        assert abs(m1[split]["accuracy"] - m2[split]["accuracy"]) <= 1 / N_VALID

    # The DDP checkpoint loads in a single process and gives the metrics the DDP run reported.
    assert evaluate_run(two, split="valid")["accuracy"] == pytest.approx(m2["valid"]["accuracy"], abs=1e-12)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_trains_on_cpu(tmp_path, precision):
    run = train(str(CONFIG), overrides=[*SETTINGS[:3], "train.epochs=2", "train.progress=none",
                                        f"train.precision={precision}"], out=tmp_path, quiet=True)
    rows = _log(run)
    assert len(rows) == 2 and all(math.isfinite(r["train_loss"]) for r in rows)
    assert rows[1]["train_loss"] < rows[0]["train_loss"]  # it learns


@pytest.mark.slow
def test_two_processes_stream_shards_by_file_and_validate_every_record(tmp_path):
    # The bundled sample has 4 training shards: with shard_by=file each of 2 ranks reads 2 of them.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "modalfuse", "train", "yt8m/logistic", "--out", str(tmp_path)]
    for s in ("data.streaming=true", "data.shard_by=file", "train.epochs=1", "train.learning_rate=0.001",
              "train.progress=none"):
        cmd += ["--set", s]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    logged = json.loads((run / "metrics.json").read_text())["valid"]
    # One process over the whole valid split: the same GAP only if the two ranks together scored
    # every validation record exactly once.
    alone = evaluate_run(run, "valid")
    assert logged["gap"] == pytest.approx(alone["gap"], abs=1e-6)
    assert json.loads((run / "run.json").read_text())["world_size"] == 2


@pytest.mark.parametrize("world,argv,code", [("2", ["list", "models"], 0), ("2", ["inspect", "/no/such/file"], 2),
                                             ("1", ["list", "models"], None)])
def test_a_torchrun_worker_ends_through_exit_worker_with_the_commands_code(monkeypatch, world, argv, code):
    # Under torchrun the CLI skips interpreter shutdown (gloo's threads can abort it); a single
    # process (WORLD_SIZE 1, or unset) returns normally.
    from modalfuse import cli
    from modalfuse.training import distributed

    ended = []
    monkeypatch.setenv("WORLD_SIZE", world)
    monkeypatch.setenv("RANK", "1")  # a worker that is not rank 0: it prints no error line
    monkeypatch.setattr(distributed, "exit_worker", ended.append)
    returned = cli.main(argv)
    assert ended == ([] if code is None else [code])
    assert returned == (0 if code is None else code)
