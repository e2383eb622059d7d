"""YouTube-8M at full scale, simulated: memory and throughput of a streamed epoch and of evaluation.

    python bench/yt8m_full_scale.py [--train-videos 3900000] [--eval-videos 1100000] [--unique-videos 40000]
        [--shard-videos 2000] [--preset yt8m/logistic] [--batch-size 256] [--threads 2] [--keep DIR]

Generated data in the real record format: TFRecord shards of ``tf.train.Example`` records with ``id``,
``labels``, ``mean_rgb`` (1024 floats) and ``mean_audio`` (128), written by the project's own writer.
Labels are real label lists (drawn with replacement from the shards in ``--data``: the real label
counts and class frequencies); features are noise plus a fixed random direction per label, so the
model has something to learn. To stay within disk and time, ``--unique-videos`` distinct videos are
written (half for training, half for evaluation) and the streams name those shards again and again
(symbolic links) until they hold ``--train-videos`` and ``--eval-videos`` records.

1. Training: the ``yt8m`` dataset streams the training shards (``data.streaming: true``) into the
   preset's model and its training step (BCE, gradient clip, AdamW) for one pass. At every tenth of
   the stream the process's RSS and the records per second of that tenth are recorded. Flat memory:
   RSS at 100 % within 1.2x of RSS at 10 %. Steady throughput: the tenths' spread.
2. Evaluation: ``training.loop.predict_split`` over the evaluation stream, as the loop evaluates a
   split (multilabel: each video's top entries only, ``training.evaluation``), RSS at every tenth;
   then the metrics of the whole split. What evaluation keeps grows by a few hundred bytes per video
   (top entries, for GAP/mAP and ``predictions.npz``), never by ``[N, 3862]`` scores.

Printed: the time of a full epoch of 3.9M videos and of an evaluation of 1.1M on this machine,
projected from the measured rates (and the machine's load average), unless those sizes were run.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_scale import CLASSES, draw_labels, real_label_lists  # noqa: E402

FULL_TRAIN, FULL_EVAL = 3_900_000, 1_100_000


def rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def write_shards(folder: Path, prefix: str, n: int, per_shard: int, real, rng: np.random.Generator) -> list[Path]:
    """``n`` generated videos in shards of ``per_shard`` records; returns the shard paths."""
    from modalfuse.readers.example import encode_example
    from modalfuse.readers.tfrecord import TFRecordWriter

    ptr, lab = draw_labels(*real, n, rng)
    direction = np.random.default_rng(7).normal(0, 1, (CLASSES, 1024 + 128)).astype(np.float32)
    paths = []
    for s, a in enumerate(range(0, n, per_shard)):
        path = folder / f"{prefix}{s:05d}.tfrecord"
        with TFRecordWriter(path) as w:
            for v in range(a, min(a + per_shard, n)):
                labels = lab[ptr[v] : ptr[v + 1]]
                x = rng.normal(0, 1, 1024 + 128).astype(np.float32) + direction[labels].sum(0)
                w.write(encode_example({"id": f"{prefix}{v:07d}".encode(), "labels": labels.astype(np.int64),
                                        "mean_rgb": x[:1024], "mean_audio": x[1024:]}))
        paths.append(path)
    return paths


def repeated(folder: Path, name: str, shards: list[Path], per_shard: int, total: int) -> list[str]:
    """Links to ``shards``, round and round, until they hold ``total`` records."""
    out = []
    for i in range(max(1, -(-total // per_shard))):
        link = folder / f"{name}{i:06d}.tfrecord"
        link.symlink_to(shards[i % len(shards)])
        out.append(str(link))
    return out


def deciles(total: int) -> list[int]:
    return [round(total * k / 10) for k in range(1, 11)]


def train_pass(bundle, preset: str, batch_size: int, records: int) -> tuple[list[dict], object]:
    """One streamed pass through the preset's training step; RSS and rate at each tenth."""
    import torch

    from modalfuse.config import build_config, load_yaml
    from modalfuse.datasets.loader import train_batches
    from modalfuse.listing import PRESET_DIR
    from modalfuse.models import build_model
    from modalfuse.training.loop import build_optimizer, model_loss

    cfg = build_config(load_yaml(PRESET_DIR / f"{preset}.yaml"))
    model = build_model(cfg.model, bundle.modalities, bundle.task)
    opt = build_optimizer(model, cfg.train)
    marks, rows, seen = deciles(records), [], 0
    t0 = t_mark = time.perf_counter()
    n_mark = 0
    model.train()
    for batch in train_batches(bundle.train, batch_size, seed=0, epoch=0):
        out = model(batch["features"], batch["masks"])
        loss = model_loss(bundle.task, cfg.train, out, batch["label"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip or 1.0)
        opt.step()
        seen += len(batch["ids"])
        while marks and seen >= marks[0]:
            now = time.perf_counter()
            rows.append({"records": seen, "rss_gb": round(rss_gb(), 3),
                         "records_per_s": round((seen - n_mark) / max(now - t_mark, 1e-9)), "load": round(os.getloadavg()[0], 1)})
            print(f"  train {seen:>9,} records ({len(rows) * 10:>3} %): RSS {rows[-1]['rss_gb']:.3f} GB, "
                  f"{rows[-1]['records_per_s']:,} records/s (load {rows[-1]['load']})", flush=True)
            t_mark, n_mark = now, seen
            marks.pop(0)
    rows.append({"seconds": time.perf_counter() - t0, "records": seen})
    return rows, (cfg, model)


def eval_pass(bundle, cfg, model, records: int) -> tuple[list[dict], dict]:
    """``predict_split`` over the evaluation stream, RSS at each tenth; then the split's metrics."""
    import torch

    from modalfuse.training.loop import predict_split, split_metrics

    marks, rows, state = deciles(records), [], {"seen": 0, "t": time.perf_counter(), "n": 0}
    batch_size = cfg.eval.batch_size

    def watch(features):  # predict_split's per-batch hook: count, and sample RSS at every tenth
        state["seen"] += len(next(iter(features.values())))
        while marks and state["seen"] >= marks[0]:
            now = time.perf_counter()
            rows.append({"records": state["seen"], "rss_gb": round(rss_gb(), 3),
                         "records_per_s": round((state["seen"] - state["n"]) / max(now - state["t"], 1e-9))})
            print(f"  eval  {state['seen']:>9,} records ({len(rows) * 10:>3} %): RSS {rows[-1]['rss_gb']:.3f} GB, "
                  f"{rows[-1]['records_per_s']:,} records/s", flush=True)
            state["t"], state["n"] = now, state["seen"]
            marks.pop(0)
        return features

    t = time.perf_counter()
    pred = predict_split(model, bundle.valid, bundle.task, batch_size=batch_size, device=torch.device("cpu"),
                         transform=watch, top_k=cfg.eval.top_k, threshold=cfg.eval.threshold)
    scored = time.perf_counter() - t
    metrics = {k: round(float(v), 4) for k, v in split_metrics(bundle.task, pred, cfg).items() if isinstance(v, float)}
    kept = pred["accumulator"].retained_bytes()
    return rows, {"seconds": scored, "metrics": metrics, "kept_bytes_per_video": round(kept / max(pred["accumulator"].count, 1)),
                  "metrics_seconds": time.perf_counter() - t - scored}


def summary(train_rows: list[dict], eval_rows: list[dict], ev: dict, args) -> dict:
    tr = [r for r in train_rows if "rss_gb" in r]
    rates = [r["records_per_s"] for r in tr[1:]]  # the first tenth includes start-up
    rate = statistics.median(rates) if rates else float("nan")
    ev_rates = [r["records_per_s"] for r in eval_rows[1:]]
    ev_rate = statistics.median(ev_rates) if ev_rates else float("nan")
    slope = ((eval_rows[-1]["rss_gb"] - eval_rows[0]["rss_gb"]) * 2**30 / (eval_rows[-1]["records"] - eval_rows[0]["records"])
             if len(eval_rows) > 1 else float("nan"))
    return {
        "train_videos": args.train_videos, "eval_videos": args.eval_videos, "unique_videos": args.unique_videos,
        "preset": args.preset, "threads": args.threads, "batch_size": args.batch_size,
        "train_rss_10_to_100": round(tr[-1]["rss_gb"] / tr[0]["rss_gb"], 3) if tr else None,
        "train_rss_flat_within_1_2": bool(tr and tr[-1]["rss_gb"] <= 1.2 * tr[0]["rss_gb"]),
        "train_rate_median": rate, "train_rate_min_max": [min(rates), max(rates)] if rates else None,
        "train_rss_gb": [r["rss_gb"] for r in tr], "train_rates": [r["records_per_s"] for r in tr],
        "projected_full_epoch_hours": round(FULL_TRAIN / rate / 3600, 2),
        "eval_rss_gb": [r["rss_gb"] for r in eval_rows], "eval_rate_median": ev_rate,
        "eval_rss_bytes_per_video": round(slope), "eval_kept_bytes_per_video": ev["kept_bytes_per_video"],
        "projected_eval_1_1M_hours": round(FULL_EVAL / ev_rate / 3600, 2),
        "projected_eval_1_1M_kept_gb": round(ev["kept_bytes_per_video"] * FULL_EVAL / 2**30, 2),
        "eval_metrics": ev["metrics"], "load_average": round(os.getloadavg()[0], 1), "cores": os.cpu_count(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-videos", type=int, default=FULL_TRAIN)
    ap.add_argument("--eval-videos", type=int, default=FULL_EVAL)
    ap.add_argument("--unique-videos", type=int, default=40_000, help="distinct generated videos (half train, half eval)")
    ap.add_argument("--shard-videos", type=int, default=2000)
    ap.add_argument("--preset", default="yt8m/logistic")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "../shared/data/yt8m/video")
    ap.add_argument("--keep", type=Path, help="write the shards here (default: a temporary folder, removed)")
    args = ap.parse_args()
    import torch

    from modalfuse import plugins
    from modalfuse.registry import DATASETS

    torch.set_num_threads(args.threads)
    real = real_label_lists(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        rng = np.random.default_rng(0)
        half = args.unique_videos // 2
        train_shards = write_shards(folder, "train", half, args.shard_videos, real, rng)
        eval_shards = write_shards(folder, "eval", half, args.shard_videos, real, rng)
        train_files = repeated(folder, "stream-train", train_shards, args.shard_videos, args.train_videos)
        eval_files = repeated(folder, "stream-eval", eval_shards, args.shard_videos, args.eval_videos)
        print(f"{args.unique_videos:,} videos generated in {time.perf_counter() - t:.0f} s "
              f"({sum(p.stat().st_size for p in train_shards + eval_shards) / 2**30:.2f} GB); streams of "
              f"{len(train_files) * args.shard_videos:,} training and {len(eval_files) * args.shard_videos:,} evaluation records; "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
        plugins.load()
        params = DATASETS.info("yt8m")["params"](train=train_files, valid=eval_files, test=None, streaming=True)
        bundle = DATASETS.get("yt8m")(params)
        train_rows, (cfg, model) = train_pass(bundle, args.preset, args.batch_size, len(train_files) * args.shard_videos)
        eval_rows, ev = eval_pass(bundle, cfg, model, len(eval_files) * args.shard_videos)
    result = summary(train_rows, eval_rows, ev, args)
    print(f"training: RSS at 100 % / at 10 % = {result['train_rss_10_to_100']} (flat within 1.2x: "
          f"{result['train_rss_flat_within_1_2']}); {result['train_rate_median']:,.0f} records/s median over the tenths "
          f"(min {result['train_rate_min_max'][0]:,}, max {result['train_rate_min_max'][1]:,}); a full epoch of "
          f"{FULL_TRAIN:,} videos: {result['projected_full_epoch_hours']} h on this machine (load {result['load_average']})")
    print(f"evaluation: RSS grows {result['eval_rss_bytes_per_video']} bytes per video ({result['eval_kept_bytes_per_video']} "
          f"kept per video by the accumulator); {FULL_EVAL:,} videos: {result['projected_eval_1_1M_hours']} h, "
          f"{result['projected_eval_1_1M_kept_gb']} GB kept; metrics {result['eval_metrics']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
