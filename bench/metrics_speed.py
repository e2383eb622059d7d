"""Time of the official YouTube-8M metrics (GAP@20, mAP, Hit@1, PERR, F1) on 100k videos x 3862 classes.

    python bench/metrics_speed.py [--videos 100000] [--repeats 3]

Prints the median seconds over repeats; last line JSON. (Moved out of the unit tests: a speed figure
is measured here, not asserted there.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from modalfuse.metrics.yt8m import multilabel_metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=100_000)
    ap.add_argument("--classes", type=int, default=3862)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    scores = rng.random((args.videos, args.classes), dtype=np.float32)
    labels = np.zeros((args.videos, args.classes), np.uint8)
    labels[np.arange(args.videos), rng.integers(0, args.classes, args.videos)] = 1
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        m = multilabel_metrics(scores, labels)
        times.append(time.perf_counter() - t)
    print(f"multilabel_metrics on {args.videos:,} x {args.classes}: median {statistics.median(times):.1f} s "
          f"over {args.repeats} (gap {m['gap']:.4f}); load average {os.getloadavg()[0]:.1f}")
    print(json.dumps({"videos": args.videos, "classes": args.classes, "seconds_median": statistics.median(times),
                      "seconds": times, "load_average": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
