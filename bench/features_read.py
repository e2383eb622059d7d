"""Epoch read speed of YouTube-8M shards as Parquet (the ``features`` dataset, streamed and in memory) against the
project's TFRecord reader (the ``yt8m`` dataset, the same mode) and TensorFlow; and the peak memory of
streaming a generated table ten times the size of the shards.

    python bench/features_read.py [--data ../shared/data/yt8m/video] [--repeats 3] [--scale 10]

1. The TFRecord shards are written as Parquet once (``prepare features yt8m``, all of them as the
   training split) into a temporary folder.
2. Throughput: examples/s of the *second* epoch (epoch 1; epoch 0 warms the page cache and the
   imports) of training batches of 256 (shuffled, dense multi-hot labels, torch tensors), through
   ``datasets.loader.train_batches``, for ``features`` (Parquet) and ``yt8m`` (TFRecord) with
   ``streaming: true`` and the same shuffle buffer; TensorFlow runs ``TFRecordDataset -> shuffle ->
   batch -> parse_example`` with one thread in a child process (the modalfuse readers use one
   thread). Readers alternate repeat by repeat so a busy machine slows all alike; medians.
3. In memory (each dataset's default, ``streaming: false``): the time to open the split (read every
   file into arrays, dense multi-hot labels; examples read / s) and examples/s of epoch 1 over the
   cached training split, ``features`` (Parquet) against ``yt8m`` (TFRecord reader), alternating.
   ``features`` carves a tenth of the rows for validation (every row is in the training split);
   ``yt8m`` gets the first shard as its validation split; both count every row they read.
4. Memory: a table of random features with the shards' columns (rgb 1024, audio 128, 3 labels per
   row, split column) is generated at 1x and at ``--scale``x the shards' rows, in 100 files each
   (so a file at 10x is 10x larger); each is streamed for one epoch in a fresh child process, which
   reports the peak RSS of the epoch itself (``VmHWM`` after resetting it through
   ``/proc/self/clear_refs`` once the stream is built; Linux) and the peak while opening the stream
   (imports, the label scan). The generated files are deleted afterwards.

Targets: Parquet >= 5x the TFRecord reader's epoch throughput; peak RSS at 10x <= 1.2x that at 1x.
Ratios are medians of each repeat's ratio (the readers run back to back), steadier than ratios of
medians on a busy machine. "Reading alone" (arrays per file, no shuffle, no batches) is printed too:
it bounds what a whole epoch can reach.
The streamed figures are ``throughput``, the cached ones ``in_memory`` in the JSON.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

BATCH = 256
BUFFER = 4096


def _epoch(ds, epoch: int) -> tuple[int, float]:
    from modalfuse.datasets.loader import train_batches

    t = time.perf_counter()
    n = sum(len(b["ids"]) for b in train_batches(ds, BATCH, seed=0, epoch=epoch))
    return n, time.perf_counter() - t


def _data(kind: str, where: str):
    from modalfuse.datasets import build_data

    if kind in ("parquet", "arrow"):  # every row is in the training split: the stream alone, without a bundle
        from modalfuse.datasets.features_stream import open_streams
        from modalfuse.datasets.features_table import FeaturesParams

        return open_streams(FeaturesParams(path=where, streaming=True, shuffle_buffer=BUFFER))[0]["train"]
    section = {"name": "yt8m", "train": where, "valid": where, "test": None, "streaming": True,
               "shuffle_buffer": BUFFER}
    return build_data(section).train


def _tf_worker(conn, files: list[str]) -> None:
    """Child: TensorFlow with one thread; one pass per 'go', reply (examples, seconds)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    spec = {"id": tf.io.FixedLenFeature([], tf.string), "labels": tf.io.VarLenFeature(tf.int64),
            "mean_rgb": tf.io.FixedLenFeature([1024], tf.float32), "mean_audio": tf.io.FixedLenFeature([128], tf.float32)}
    ds = (tf.data.TFRecordDataset(files).shuffle(BUFFER, seed=0).batch(BATCH)
          .map(lambda x: tf.io.parse_example(x, spec)))
    opts = tf.data.Options()
    opts.threading.private_threadpool_size = 1
    opts.threading.max_intra_op_parallelism = 1
    ds = ds.with_options(opts)
    for _ in ds:  # epoch 0: warm
        pass
    while conn.recv() == "go":
        t = time.perf_counter()
        n = 0
        for b in ds:
            tf.sparse.to_indicator(b["labels"], 3862).numpy()  # dense multi-hot labels, as the others give
            b["mean_rgb"].numpy(), b["mean_audio"].numpy()
            n += len(b["id"].numpy())
        conn.send((n, time.perf_counter() - t))


def _decode(kind: str, files: list[str]) -> tuple[int, float]:
    """Reading alone (no shuffling, no batches): every shard's columns as arrays."""
    t = time.perf_counter()
    if kind == "tfrecord":
        from modalfuse.readers.yt8m import read_video_shard

        n = sum(len(read_video_shard(f, features={"mean_rgb": 1024, "mean_audio": 128})) for f in files)
    else:
        from modalfuse.readers.feature_files import iter_files

        n = sum(b.num_rows for _, b in iter_files([Path(f) for f in files], ["id", "rgb", "audio", "label"], 2048))
    return n, time.perf_counter() - t


def throughput(shards: list[str], tables: dict[str, str], repeats: int) -> dict[str, float]:
    """Median examples/s of epoch 1 for each reader, and of reading alone, alternating."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_tf_worker, args=(child, shards))
    proc.start()
    readers = {"parquet": _data("parquet", tables["parquet"]), "arrow": _data("arrow", tables["arrow"]),
               "tfrecord": _data("tfrecord", ",".join(shards))}
    files = {"parquet": sorted(str(p) for p in Path(tables["parquet"]).iterdir()),
             "arrow": sorted(str(p) for p in Path(tables["arrow"]).iterdir()), "tfrecord": shards}
    for ds in readers.values():
        _epoch(ds, 0)
    rates: dict[str, list[float]] = {k: [] for k in (*readers, "tensorflow", *(f"{k}_read" for k in readers))}
    for r in range(repeats):
        for name, ds in readers.items():
            n, s = _epoch(ds, 1)
            rates[name].append(n / s)
            n, s = _decode(name, files[name])
            rates[f"{name}_read"].append(n / s)
        parent.send("go")
        n, s = parent.recv()
        rates["tensorflow"].append(n / s)
        print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items()), flush=True)
    parent.send("stop")
    proc.join()
    out = {k: statistics.median(v) for k, v in rates.items()}
    # paired: each repeat's ratio (the readers ran back to back), then the median of those
    for a in ("parquet", "arrow", "parquet_read", "arrow_read"):
        b = "tfrecord_read" if a.endswith("_read") else "tfrecord"
        out[f"{a}_over_{b}"] = statistics.median(x / y for x, y in zip(rates[a], rates[b]))
    out.update({f"{k}_min": min(v) for k, v in rates.items()})
    out.update({f"{k}_max": max(v) for k, v in rates.items()})
    out["examples"] = n
    return out


def _open_in_memory(kind: str, where: str, shards: list[str]) -> tuple[object, float]:
    """The default (cached) dataset: (training split, examples read / s while opening)."""
    from modalfuse.datasets import build_data

    t = time.perf_counter()
    if kind == "parquet":
        bundle = build_data({"name": "features", "path": where})
    else:
        bundle = build_data({"name": "yt8m", "train": shards, "valid": shards[:1], "test": None})
    seconds = time.perf_counter() - t
    return bundle.train, (len(bundle.train) + len(bundle.valid)) / seconds


def in_memory(shards: list[str], parquet: str, repeats: int) -> dict[str, float]:
    """Median open and epoch-1 examples/s of the cached datasets, alternating; paired ratios."""
    import gc

    rates: dict[str, list[float]] = {k: [] for k in ("open_parquet", "open_tfrecord", "epoch_parquet",
                                                     "epoch_tfrecord")}
    for r in range(repeats):
        for kind in ("parquet", "tfrecord"):
            ds, rate = _open_in_memory(kind, parquet, shards)
            rates[f"open_{kind}"].append(rate)
            _epoch(ds, 0)
            n, s = _epoch(ds, 1)
            rates[f"epoch_{kind}"].append(n / s)
            del ds
            gc.collect()
        print(f"in memory, repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items()), flush=True)
    out = {k: statistics.median(v) for k, v in rates.items()}
    for what in ("open", "epoch"):
        out[f"{what}_parquet_over_tfrecord"] = statistics.median(
            a / b for a, b in zip(rates[f"{what}_parquet"], rates[f"{what}_tfrecord"]))
    return out


def to_feather(src: Path, out: Path) -> None:
    """The same tables as uncompressed Arrow IPC files (Feather v2): no Parquet decoding."""
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    out.mkdir()
    for p in sorted(src.iterdir()):
        feather.write_feather(pq.read_table(p), out / f"{p.stem}.arrow", compression="uncompressed")


def generate(folder: Path, rows: int, files: int = 100, seed: int = 0) -> int:
    """Random features with the shards' columns, ``rows`` in ``files`` Parquet files; returns bytes."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    per = -(-rows // files)
    for k in range(files):
        n = min(per, rows - k * per)
        if n <= 0:
            break
        rgb = rng.standard_normal((n, 1024), np.float32)
        audio = rng.standard_normal((n, 128), np.float32)
        labels = rng.integers(0, 3862, (n, 3))
        table = pa.table({
            "id": pa.array([f"{k}-{i}" for i in range(n)]),
            "rgb": pa.FixedSizeListArray.from_arrays(pa.array(rgb.reshape(-1)), 1024),
            "audio": pa.FixedSizeListArray.from_arrays(pa.array(audio.reshape(-1)), 128),
            "label": pa.array(labels.tolist(), type=pa.list_(pa.int64())),
            "split": pa.array(["train"] * (n - n // 10) + ["valid"] * (n // 10)),
        })
        pq.write_table(table, folder / f"part{k:04d}.parquet", row_group_size=1024)
    return sum(f.stat().st_size for f in folder.iterdir())


def _status_mib(key: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process from /proc (Linux), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss_worker(conn, folder: str) -> None:
    """Child: build the stream (imports, the label scan), then reset the peak (``clear_refs`` 5) and
    stream one epoch; reply (rows, seconds, peak before the epoch, RSS before it, the epoch's peak).

    ``VmHWM`` is this process's own peak; ``ru_maxrss`` is not used: Linux carries it over ``exec``
    from the forking parent, so a spawned child would report the parent's peak."""
    ds = _data("parquet", folder)
    setup_peak, before = _status_mib("VmHWM"), _status_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS: the next peak is the epoch's own
    n, s = _epoch(ds, 1)
    conn.send((n, s, setup_peak, before, _status_mib("VmHWM")))


def peak_rss(folder: Path) -> tuple[int, float, float, float, float]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_rss_worker, args=(child, str(folder)))
    proc.start()
    result = parent.recv()
    proc.join()
    return result


def main() -> int:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(here.parent / "shared" / "data" / "yt8m" / "video"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scale", type=int, default=10)
    args = ap.parse_args()
    shards = sorted(str(p) for p in Path(args.data).glob("*.tfrecord"))
    if not shards:
        print(f"no *.tfrecord files in {args.data}", file=sys.stderr)
        return 2
    from modalfuse.prepare.features import prepare_features

    tmp = Path(tempfile.mkdtemp(prefix="features-read-"))
    try:
        prepare_features("yt8m", str(tmp / "parquet"), train=shards)
        to_feather(tmp / "parquet", tmp / "arrow")
        tf_bytes = sum(os.path.getsize(f) for f in shards)
        pq_bytes = sum(f.stat().st_size for f in (tmp / "parquet").iterdir())
        print(f"{len(shards)} shards: TFRecord {tf_bytes / 1e6:.1f} MB, Parquet {pq_bytes / 1e6:.1f} MB; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
        speed = throughput(shards, {"parquet": str(tmp / "parquet"), "arrow": str(tmp / "arrow")}, args.repeats)
        cached = in_memory(shards, str(tmp / "parquet"), args.repeats)
        rows = speed["examples"]
        memory = {}
        for scale in (1, args.scale):
            folder = tmp / f"gen{scale}"
            size = generate(folder, rows * scale)
            n, s, setup_peak, before, epoch_peak = peak_rss(folder)
            memory[scale] = {"rows": n, "bytes": size, "seconds": s, "setup_peak_rss_mib": setup_peak,
                             "rss_before_epoch_mib": before, "epoch_peak_rss_mib": epoch_peak}
            print(f"{scale}x: {size / 1e6:.0f} MB, {n} training rows streamed in {s:.1f} s; peak RSS while opening the "
                  f"stream {setup_peak:.0f} MiB, before the epoch {before:.0f} MiB, during the epoch {epoch_peak:.0f} MiB",
                  flush=True)
            shutil.rmtree(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ratio = speed["parquet_over_tfrecord"]
    arrow_ratio = speed["arrow_over_tfrecord"]
    # the epoch's own peak: the opening's peak (imports) could otherwise hide growth
    rss_ratio = memory[args.scale]["epoch_peak_rss_mib"] / memory[1]["epoch_peak_rss_mib"]
    print(f"reading alone, examples/s: Parquet {speed['parquet_read']:,.0f}, Arrow IPC {speed['arrow_read']:,.0f}, "
          f"TFRecord reader {speed['tfrecord_read']:,.0f} (paired ratios: Parquet "
          f"{speed['parquet_read_over_tfrecord_read']:.2f}x, Arrow IPC {speed['arrow_read_over_tfrecord_read']:.2f}x)")
    print(f"streamed (streaming: true), epoch 1 examples/s (median of {args.repeats}): Parquet {speed['parquet']:,.0f}, Arrow IPC {speed['arrow']:,.0f}, "
          f"TFRecord reader {speed['tfrecord']:,.0f}, TensorFlow {speed['tensorflow']:,.0f}; Parquet / TFRecord reader "
          f"{ratio:.2f}x, Arrow IPC / TFRecord reader {arrow_ratio:.2f}x "
          f"(target >= 5x: {'met' if ratio >= 5 else 'missed'}); epoch peak RSS {args.scale}x / 1x {rss_ratio:.3f} "
          f"(target <= 1.2: {'met' if rss_ratio <= 1.2 else 'missed'}); load average {os.getloadavg()[0]:.1f}")
    print(f"in memory (streaming: false), examples/s: opening Parquet {cached['open_parquet']:,.0f}, TFRecord reader "
          f"{cached['open_tfrecord']:,.0f} ({cached['open_parquet_over_tfrecord']:.2f}x); epoch 1 Parquet "
          f"{cached['epoch_parquet']:,.0f}, TFRecord reader {cached['epoch_tfrecord']:,.0f} "
          f"({cached['epoch_parquet_over_tfrecord']:.2f}x; target >= 5x: "
          f"{'met' if cached['epoch_parquet_over_tfrecord'] >= 5 else 'missed'})")
    print(json.dumps({"throughput": speed, "in_memory": cached, "parquet_over_tfrecord": ratio, "arrow_over_tfrecord": arrow_ratio,
                      "parquet_over_tensorflow":
                      speed["parquet"] / speed["tensorflow"], "memory": memory, "rss_ratio": rss_ratio,
                      "targets": {"throughput_5x": ratio >= 5, "rss_1_2x": rss_ratio <= 1.2},
                      "load_average": os.getloadavg()[0]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
