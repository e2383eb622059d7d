"""Wall-clock time of a comparison with ``--jobs 1`` and ``--jobs auto``, back to back in one run.

    python bench/compare_jobs.py                  # the default comparison cut to 1 seed (9 runs)
    python bench/compare_jobs.py --seeds 3        # the full default comparison (27 runs)
    python bench/compare_jobs.py --preset synthetic --seeds 2

Each timing is the whole command (``modalfuse compare``: training, analysis, report) in a fresh
folder, so nothing is reused. The two reports' per-run metrics must be identical (timing columns
aside). The last line is JSON: both times, their ratio, the jobs ``auto`` chose, whether the
metrics matched, and the load average before and after (the machine may be shared: say so).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIMING = {"train_seconds", "inference_samples_per_s", "flops_per_sample", "peak_memory_mb"}


def _metrics(folder: Path) -> list[dict[str, str]]:
    with open(folder / "report" / "results.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def _run(preset: str, seeds: int, jobs: str, out: Path) -> float:
    cmd = [sys.executable, "-m", "modalfuse", "compare", preset, "--seeds", str(seeds), "--jobs", jobs,
           "--out", str(out)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default=None, help="comparison preset (default: the default comparison)")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--keep", default=None, help="keep the two comparison folders under this folder")
    args = ap.parse_args()
    from modalfuse.comparison import DEFAULT_PRESET, default_jobs

    preset = args.preset or DEFAULT_PRESET
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="compare-jobs-"))
    load_before = os.getloadavg()
    t1 = _run(preset, args.seeds, "1", root / "jobs1")
    print(f"--jobs 1: {t1:.1f}s", flush=True)
    tn = _run(preset, args.seeds, "auto", root / "jobsauto")
    print(f"--jobs auto ({default_jobs()}): {tn:.1f}s", flush=True)
    identical = _metrics(root / "jobs1") == _metrics(root / "jobsauto")
    print(json.dumps({"preset": preset, "seeds": args.seeds, "jobs_1_s": round(t1, 1), "jobs_auto_s": round(tn, 1),
                      "jobs_auto": default_jobs(), "speedup": round(t1 / tn, 2), "identical_metrics": identical,
                      "cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load_before],
                      "loadavg_after": [round(x, 2) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
