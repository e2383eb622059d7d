"""Records per second into a training step (logistic regression, the input-bound case) against the reader alone.

    python bench/yt8m_end_to_end.py [--data ../shared/data/yt8m/video] [--shards 20] [--batch-size 256]
        [--repeats 3] [--threads 1]

On the first ``--shards`` shards of ``--data``, streamed (``data.streaming: true``), one CPU thread,
in one process, repeat by repeat in turn (medians):

- ``read``: the stream's batches alone (CRC, parse, shuffle, multi-hot labels, tensors);
- ``step``: the training step alone (forward, BCE, backward, gradient clip, fused AdamW) of the
  ``yt8m/logistic`` preset, repeated on batches already in memory;
- ``read+step``: the two in one plain loop, as a minimal trainer would run them;
- ``fit``: ``modalfuse train yt8m/logistic`` for one epoch over the same shards (its
  ``samples_per_s``, which covers the real loop: loss accumulation, sync points, scheduler), in a
  child process, in turn with the others.

``loop_overhead`` = 1 - fit / (read+step): what the training loop adds on top of reading and
stepping. If reading and stepping simply add up, ``read+step`` = 1 / (1/read + 1/step). The last
line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _bundle(files: list[str]):
    from modalfuse import plugins
    from modalfuse.registry import DATASETS

    plugins.load()
    params = DATASETS.info("yt8m")["params"](train=files, valid=files[:1], test=None, streaming=True)
    return DATASETS.get("yt8m")(params)


def _model(bundle):
    from modalfuse.config import build_config, load_yaml
    from modalfuse.listing import PRESET_DIR
    from modalfuse.models import build_model
    from modalfuse.training.loop import build_optimizer

    cfg = build_config(load_yaml(PRESET_DIR / "yt8m" / "logistic.yaml"))
    model = build_model(cfg.model, bundle.modalities, bundle.task)
    return cfg, model, build_optimizer(model, cfg.train)


def _step(cfg, task, model, opt, batch) -> None:
    import torch

    from modalfuse.training.loop import model_loss

    out = model(batch["features"], batch["masks"])
    loss = model_loss(task, cfg.train, out, batch["label"])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
    opt.step()


def read_rate(bundle, batch_size: int, epoch: int) -> float:
    t, n = time.perf_counter(), 0
    for batch in bundle.train.iter_batches(batch_size, shuffle=True, seed=0, epoch=epoch):
        n += len(batch["ids"])
    return n / (time.perf_counter() - t)


def step_rate(parts, batches: list) -> float:
    t = time.perf_counter()
    for batch in batches:
        _step(*parts, batch)
    return sum(len(b["ids"]) for b in batches) / (time.perf_counter() - t)


def read_step_rate(bundle, parts, batch_size: int, epoch: int) -> float:
    t, n = time.perf_counter(), 0
    for batch in bundle.train.iter_batches(batch_size, shuffle=True, seed=0, epoch=epoch):
        _step(*parts, batch)
        n += len(batch["ids"])
    return n / (time.perf_counter() - t)


def fit_rate(files: list[str], batch_size: int, threads: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "modalfuse", "train", "yt8m/logistic", "--out", out,
               "--set", f"data.train=[{','.join(files)}]", "--set", f"data.valid={files[0]}", "--set", "data.test=null",
               "--set", "data.streaming=true", "--set", "train.epochs=1", "--set", f"train.batch_size={batch_size}",
               "--set", f"train.threads={threads}", "--set", "train.progress=none", "--set", "eval.splits=[valid]"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode:
            raise SystemExit(f"modalfuse train failed (exit {p.returncode}): {p.stderr[-2000:]}")
        metrics = next(Path(out).glob("*/metrics.jsonl")).read_text().splitlines()[0]
        return float(json.loads(metrics)["samples_per_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = Path(__file__).resolve().parent.parent
    ap.add_argument("--data", default=str(here.parent / "shared" / "data" / "yt8m" / "video"))
    ap.add_argument("--shards", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    files = sorted(str(p) for p in Path(args.data).glob("*.tfrecord"))[: args.shards]
    if not files:
        raise SystemExit(f"{args.data}: no *.tfrecord shards")
    bundle = _bundle(files)
    cfg, model, opt = _model(bundle)
    parts = (cfg, bundle.task, model, opt)
    cached = list(bundle.train.iter_batches(args.batch_size, shuffle=True, seed=0, epoch=0))
    records = sum(len(b["ids"]) for b in cached)
    step_rate(parts, cached[:3])  # warm-up: allocator, optimizer state
    rates: dict[str, list[float]] = {"read": [], "step": [], "read+step": [], "fit": []}
    for r in range(args.repeats):
        rates["read"].append(read_rate(bundle, args.batch_size, r))
        rates["step"].append(step_rate(parts, cached))
        rates["read+step"].append(read_step_rate(bundle, parts, args.batch_size, r))
        rates["fit"].append(fit_rate(files, args.batch_size, args.threads))
    med = {k: statistics.median(v) for k, v in rates.items()}
    additive = 1 / (1 / med["read"] + 1 / med["step"])
    load = os.getloadavg()[0]
    print(f"{len(files)} shards, {records} records, batch {args.batch_size}, {args.threads} thread(s), load {load:.1f}")
    for k, v in med.items():
        print(f"{k:<10} {v:9.0f} records/s")
    print(f"read and step added up: {additive:.0f} records/s; reading takes {100 * med['step'] / (med['read'] + med['step']):.0f} % "
          f"of read+step time; loop overhead (1 - fit / read+step): {100 * (1 - med['fit'] / med['read+step']):.1f} %")
    print(json.dumps({"records": records, "batch_size": args.batch_size, "threads": args.threads,
                      **{f"{k.replace('+', '_')}_records_per_s": round(v, 1) for k, v in med.items()},
                      "additive_records_per_s": round(additive, 1),
                      "loop_overhead": round(1 - med["fit"] / med["read+step"], 4), "loadavg_1min": round(load, 2)}))


if __name__ == "__main__":
    main()
