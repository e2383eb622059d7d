"""Read speed of modalfuse's TFRecord reader against TensorFlow's, on the 40 real YouTube-8M shards.

    python bench/tfrecord_read.py [--data ../shared/data/yt8m/video] [--repeats 5] [--stream 200000]

Both readers produce numpy arrays per batch of 256 records: ids, labels, mean_rgb, mean_audio.
TensorFlow runs ``tf.data.TFRecordDataset(files).batch(256).map(tf.io.parse_example)`` in a child
process (so its thread settings are fixed and its memory is its own); modalfuse runs in this process
(one thread) and in a process pool (all cores). The two alternate repeat by repeat so a busy machine
slows both alike; the figures are medians. A second child streams ``--stream`` records (the shards
repeated) through modalfuse and reports its peak RSS. Needs ``pip install tensorflow-cpu``.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import glob
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from pathlib import Path

FEATURES = {"mean_rgb": 1024, "mean_audio": 128}
BATCH = 256


def _modalfuse_shard(path: str) -> int:
    """Read one shard and walk it in batches of 256 numpy arrays; returns the record count."""
    from modalfuse.readers.yt8m import read_video_shard

    batch = read_video_shard(path, features=FEATURES)
    n = 0
    for a in range(0, len(batch), BATCH):
        part = batch.slice(a, min(a + BATCH, len(batch)))  # ids, CSR labels, [B, D] floats
        n += len(part.ids)
    return n


def modalfuse_pass(files: list[str], pool: mp.pool.Pool | None) -> tuple[int, float]:
    t = time.perf_counter()
    if pool is None:
        n = sum(_modalfuse_shard(f) for f in files)
    else:
        n = sum(len(batch) for batch in pool.imap_unordered(_modalfuse_batches_remote, files))
    return n, time.perf_counter() - t


def _modalfuse_batches_remote(path: str):
    """Pool worker: read a shard and send its arrays back to the parent, as a data loader would."""
    from modalfuse.readers.yt8m import read_video_shard

    return read_video_shard(path, features=FEATURES)


def _tf_worker(conn, files: list[str], threads: int | None) -> None:
    """Child: build the TF pipeline once, then run one full pass per 'go' and reply (records, seconds)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    if threads:
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    spec = {
        "id": tf.io.FixedLenFeature([], tf.string),
        "labels": tf.io.VarLenFeature(tf.int64),
        "mean_rgb": tf.io.FixedLenFeature([1024], tf.float32),
        "mean_audio": tf.io.FixedLenFeature([128], tf.float32),
    }
    if threads == 1:
        ds = tf.data.TFRecordDataset(files).batch(BATCH).map(lambda x: tf.io.parse_example(x, spec))
        opts = tf.data.Options()
        opts.threading.private_threadpool_size = 1
        opts.threading.max_intra_op_parallelism = 1
        ds = ds.with_options(opts)
    else:
        auto = tf.data.AUTOTUNE
        ds = (tf.data.TFRecordDataset(files, num_parallel_reads=auto).batch(BATCH)
              .map(lambda x: tf.io.parse_example(x, spec), num_parallel_calls=auto).prefetch(auto))
    while conn.recv() == "go":
        t = time.perf_counter()
        n = 0
        for b in ds:
            ids, labels = b["id"].numpy(), b["labels"].values.numpy()
            rgb, audio = b["mean_rgb"].numpy(), b["mean_audio"].numpy()
            n += len(ids)
        conn.send((n, time.perf_counter() - t))
    conn.send(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _stream_worker(conn, files: list[str], target: int) -> None:
    """Child: stream ``target`` records (shards repeated) through modalfuse; reply (n, s, peak RSS MiB)."""
    t = time.perf_counter()
    n = 0
    while n < target:
        for f in files:
            n += _modalfuse_shard(f)
            if n >= target:
                break
    conn.send((n, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def main() -> int:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(here.parent / "shared" / "data" / "yt8m" / "video"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--stream", type=int, default=200_000, help="records streamed for the peak-RSS check")
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(args.data, "*.tfrecord")))
    if not files:
        print(f"no *.tfrecord files in {args.data}", file=sys.stderr)
        return 2
    cores = len(os.sched_getaffinity(0))
    ctx = mp.get_context("spawn")
    print(f"{len(files)} shards, {sum(os.path.getsize(f) for f in files) / 1e6:.1f} MB, {cores} cores, "
          f"{args.repeats} repeats (medians)")

    results: dict[str, dict[str, float]] = {}
    pool = ctx.Pool(cores)
    pool.map(_modalfuse_batches_remote, files[:cores])  # warm the workers (imports)
    for mode, threads in (("1thread", 1), ("all", None)):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_tf_worker, args=(child, files, threads))
        proc.start()
        mf_rates, tf_rates = [], []
        for r in range(args.repeats + 1):  # the first round warms caches and is not counted
            n, s = modalfuse_pass(files, None if threads == 1 else pool)
            parent.send("go")
            tn, ts = parent.recv()
            if r:
                mf_rates.append(n / s)
                tf_rates.append(tn / ts)
        parent.send("stop")
        tf_rss = parent.recv()
        proc.join()
        results[mode] = {"modalfuse": statistics.median(mf_rates), "tensorflow": statistics.median(tf_rates),
                         "mf_min": min(mf_rates), "mf_max": max(mf_rates), "tf_min": min(tf_rates),
                         "tf_max": max(tf_rates), "tf_rss": tf_rss}
    pool.close()
    pool.join()

    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_stream_worker, args=(child, files, args.stream))
    proc.start()
    sn, ss, rss = parent.recv()
    proc.join()

    print(f"\n{'threads':<10}{'modalfuse rec/s':>18}{'tensorflow rec/s':>18}{'ratio':>8}   (min-max)")
    for mode, r in results.items():
        print(f"{mode:<10}{r['modalfuse']:>18,.0f}{r['tensorflow']:>18,.0f}{r['modalfuse'] / r['tensorflow']:>8.2f}"
              f"   mf {r['mf_min']:,.0f}-{r['mf_max']:,.0f}, tf {r['tf_min']:,.0f}-{r['tf_max']:,.0f}")
    print(f"\nstreamed {sn:,} records through modalfuse in {ss:.1f} s ({sn / ss:,.0f} rec/s), "
          f"peak RSS {rss:,.0f} MiB (TensorFlow child's peak RSS: {results['1thread']['tf_rss']:,.0f} MiB)")
    summary = {
        "modalfuse_rps": round(results["1thread"]["modalfuse"]),
        "tensorflow_rps": round(results["1thread"]["tensorflow"]),
        "ratio_1thread": round(results["1thread"]["modalfuse"] / results["1thread"]["tensorflow"], 3),
        "ratio_all": round(results["all"]["modalfuse"] / results["all"]["tensorflow"], 3),
        "modalfuse_rps_all": round(results["all"]["modalfuse"]),
        "tensorflow_rps_all": round(results["all"]["tensorflow"]),
        "cores": cores,
        "stream_records": sn,
        "peak_rss_mb": round(rss, 1),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
