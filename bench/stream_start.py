"""How soon a streamed YouTube-8M split yields its first training batch, against one full pass.

    python bench/stream_start.py [--data ../shared/data/yt8m/video] [--batch-size 64] [--repeats 3]

The split is every shard in ``--data`` (read whatever is there), streamed (``data.streaming: true``)
with the default shuffle buffer. ``first_batch_seconds``: from building the dataset (which learns the
split's length) to the first shuffled training batch. ``full_pass_seconds``: from building it to the
end of one epoch of batches. ``checked_count_seconds``: what learning the length used to cost (a pass
that checks the CRC of every record), for reference. Medians over ``--repeats``, the three measured in
turn so that machine load hits each alike. Target (issue 15): first batch in <= 5 % of a full pass.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path


def _build(files: str, **kw):
    from modalfuse import plugins
    from modalfuse.registry import DATASETS

    plugins.load()
    params = DATASETS.info("yt8m")["params"](train=files, valid=files, test=None, streaming=True, **kw)
    return DATASETS.get("yt8m")(params)


def first_batch(files: str, batch_size: int, **kw) -> float:
    from modalfuse.datasets.loader import train_batches

    t = time.perf_counter()
    bundle = _build(files, **kw)
    next(iter(train_batches(bundle.train, batch_size, seed=0, epoch=0)))
    return time.perf_counter() - t


def full_pass(files: str, batch_size: int, **kw) -> tuple[float, int]:
    from modalfuse.datasets.loader import train_batches

    t = time.perf_counter()
    bundle = _build(files, **kw)
    n = sum(len(b["ids"]) for b in train_batches(bundle.train, batch_size, seed=0, epoch=0))
    return time.perf_counter() - t, n


def checked_count(files: list[str]) -> float:
    from modalfuse.readers.tfrecord import ReadStats, frames, open_buffer

    t = time.perf_counter()
    stats = ReadStats()
    for path in files:
        for _ in frames(open_buffer(path), path, stats=stats):
            pass
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = Path(__file__).resolve().parent.parent
    ap.add_argument("--data", default=str(here.parent / "shared" / "data" / "yt8m" / "video"))
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    files = sorted(str(p) for p in Path(args.data).glob("*.tfrecord"))
    if not files:
        raise SystemExit(f"{args.data}: no *.tfrecord shards")
    glob_ = os.path.join(args.data, "*.tfrecord")
    first_batch(glob_, args.batch_size)  # warm the page cache and the imports
    firsts, passes, counts = [], [], []
    records = 0
    for _ in range(args.repeats):
        firsts.append(first_batch(glob_, args.batch_size))
        seconds, records = full_pass(glob_, args.batch_size)
        passes.append(seconds)
        counts.append(checked_count(files))
    first, full, count = (statistics.median(x) for x in (firsts, passes, counts))
    print(f"{len(files)} shards, {records} records, batch {args.batch_size}, load {os.getloadavg()[0]:.1f}")
    print(f"first batch      {first:7.3f} s  ({100 * first / full:.1f} % of a full pass; target <= 5 %)")
    print(f"full pass        {full:7.3f} s")
    print(f"checked count    {count:7.3f} s  (the CRC pass streams used to make before step 1)")
    print(json.dumps({"shards": len(files), "records": records, "first_batch_seconds": round(first, 4),
                      "full_pass_seconds": round(full, 4), "first_batch_fraction": round(first / full, 4),
                      "checked_count_seconds": round(count, 4), "target_met": first / full <= 0.05,
                      "loadavg_1min": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
