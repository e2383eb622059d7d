"""Mutation fuzzing of every reader entry point over the real files in ``../shared`` for N minutes.

    python bench/fuzz.py --minutes 10            # last line: JSON counts per target

Seeds are real: YouTube-8M video- and frame-level shards (cut to their first records so that
mutations reach every part of a record quickly), the CMU-MultimodalSDK ``.csd`` files, a packed
dataset aligned from them with ``prepare cmu-sdk``, an MMSA-layout pickle of real CMU-MOSI features
(protocols 2, 4 and 5), and every shipped config. Each input is a few random edits of a seed (bit
flips, boundary values, inserts, deletes, duplicated slices, truncation: ``tests/fuzz/targets.py``)
read completely by a worker process, so that:

- ``crashes``: the worker died by a signal (a segfault, an abort) - restarted, input kept;
- ``hangs``: no answer within ``--timeout`` seconds - worker killed and restarted, input kept;
- ``other_exceptions``: an exception other than the project's ``UserError`` escaped;
- ``big_allocs``: traced memory (numpy and Python) above 64 MB + 50 x the input's size;
- ``slow``: answered, but after more than ``--slow`` seconds (``max_seconds``: the slowest);
- ``project_errors`` / ``ok``: the expected outcomes.

Inputs behind any finding are written to ``--findings`` for reproduction
(``python -c "from targets import outcome; print(outcome(TARGET, PATH))"`` from ``tests/fuzz``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import pickle
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fuzz"))
from targets import SUFFIX, TARGETS, mutate_for, outcome  # noqa: E402


def _first_records(path: Path, n: int) -> bytes:
    from modalfuse.readers.tfrecord import frames, open_buffer

    buf = open_buffer(path)
    end = 0
    for i, (start, length) in enumerate(frames(buf, str(path))):
        end = start + length + 4
        if i + 1 >= n:
            break
    return bytes(buf[:end])


def real_seeds(shared: Path, work: Path) -> dict[str, list[bytes]]:
    """Seeds for every target from the real data (see the module docstring)."""
    import numpy as np

    seeds: dict[str, list[bytes]] = {}
    video = sorted((shared / "yt8m" / "video").glob("*.tfrecord"))[:3]
    frame = sorted((shared / "yt8m" / "frame").glob("*.tfrecord"))
    seeds["tfrecord"] = [_first_records(p, 20) for p in video]
    seeds["yt8m_records"] = [_first_records(p, 8) for p in video] + [_first_records(p, 2) for p in frame]
    csd = [shared / "csd_fixture" / "labels.csd", shared / "csd_fixture" / "glove.csd",
           shared / "mosi" / "CMU_MOSI_Opinion_Labels.csd"]
    seeds["csd"] = [p.read_bytes() for p in csd if p.is_file()]

    from modalfuse.prepare.cmu_sdk import prepare_cmu_sdk

    fx = shared / "csd_fixture"
    packed = work / "fixture_packed.h5"
    prepare_cmu_sdk({"text": str(fx / "glove.csd"), "visual": str(fx / "facet.csd")}, str(fx / "labels.csd"),
                    "text", str(packed), progress=False)
    utter = work / "mosi_packed.h5"
    m = shared / "mosi"
    prepare_cmu_sdk({"text": str(m / "CMU_MOSI_TextCNN.csd")}, str(m / "CMU_MOSI_Opinion_Labels.csd"), "labels",
                    str(utter), progress=False)
    seeds["packed"] = [packed.read_bytes(), utter.read_bytes()]

    from modalfuse.readers.packed import PackedDataset

    with PackedDataset(packed) as p:  # real aligned features in the MMSA layout
        n = min(len(p), 12)
        feats = {m: p.padded(m, 10)[0][:n] for m in p.modalities}
        split = {"text": feats["text"], "vision": feats["visual"], "regression_labels": p.labels[:n, 0],
                 "id": np.array([i.replace("[", "$_$").rstrip("]") for i in p.ids[:n]], dtype=object),
                 "vision_lengths": [10] * n}
    seeds["pickle"] = [pickle.dumps({"train": split, "valid": split, "test": split}, protocol=k) for k in (2, 4, 5)]
    seeds["config"] = [p.read_bytes() for p in sorted((ROOT / "src" / "modalfuse" / "configs").rglob("*.yaml"))
                       if "compare" not in p.parts]
    return seeds


def _worker(conn) -> None:
    while True:
        job = conn.recv()
        if job is None:
            return
        target, path, size = job
        tracemalloc.start()
        t0 = time.perf_counter()
        result = outcome(target, path)
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        conn.send((result, peak, seconds))


class Worker:
    """One reader process; replaced when it crashes or hangs."""

    def __init__(self) -> None:
        self.ctx = mp.get_context("fork")
        self.start()

    def start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()

    def run(self, target: str, path: str, size: int, timeout: float) -> tuple[str, int, float]:
        self.conn.send((target, path, size))
        if not self.conn.poll(timeout):
            self.proc.kill()
            self.proc.join()
            self.start()
            return "hang", 0, timeout
        try:
            return self.conn.recv()
        except EOFError:
            self.proc.join()
            code = self.proc.exitcode
            self.start()
            return (f"crash:signal {-code}" if code is not None and code < 0 else f"crash:exit {code}"), 0, 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds before an input counts as a hang")
    ap.add_argument("--slow", type=float, default=5.0, help="inputs slower than this are counted as slow")
    ap.add_argument("--targets", nargs="*", default=sorted(TARGETS))
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--findings", default=str(Path(tempfile.gettempdir()) / "modalfuse-fuzz-findings"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    shared = Path(args.shared)
    if not shared.is_dir():
        raise SystemExit(f"{shared}: the real data is needed for the seeds (../shared/data)")
    findings = Path(args.findings)
    findings.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="modalfuse-fuzz-"))
    t_seeds = time.perf_counter()
    seeds = real_seeds(shared, work)
    counts = {t: {"inputs": 0, "ok": 0, "project_errors": 0, "other_exceptions": 0, "hangs": 0, "crashes": 0,
                  "big_allocs": 0, "slow": 0, "max_seconds": 0.0, "max_traced_mb": 0.0,
                  "seeds": len(seeds[t])} for t in args.targets}
    rng = random.Random(args.seed)
    worker = Worker()
    print(f"seeds ready in {time.perf_counter() - t_seeds:.1f}s; fuzzing {', '.join(args.targets)} for "
          f"{args.minutes:g} min", file=sys.stderr, flush=True)
    t0 = last = time.monotonic()
    deadline = t0 + 60 * args.minutes
    i = 0
    while time.monotonic() < deadline:
        target = args.targets[i % len(args.targets)]
        i += 1
        data = mutate_for(target, rng.choice(seeds[target]), rng)
        path = work / f"input{SUFFIX[target]}"
        path.write_bytes(data)
        result, peak, seconds = worker.run(target, str(path), len(data), args.timeout)
        c = counts[target]
        c["inputs"] += 1
        c["max_traced_mb"] = max(c["max_traced_mb"], round(peak / 2**20, 1))
        c["max_seconds"] = max(c["max_seconds"], round(seconds, 2))
        c["slow"] += seconds > args.slow
        kind = result.split(":", 1)[0]
        key = {"ok": "ok", "project_error": "project_errors", "other": "other_exceptions", "hang": "hangs",
               "crash": "crashes"}[kind]
        c[key] += 1
        big = peak > 64 * 2**20 + 50 * len(data)
        c["big_allocs"] += big
        if key in ("other_exceptions", "hangs", "crashes") or big or seconds > args.slow:
            label = "big_alloc" if big else "slow" if key in ("ok", "project_errors") else key
            name = findings / f"{target}-{label}-{c['inputs']}{SUFFIX[target]}"
            name.write_bytes(data)
            print(f"finding: {target}: {result[:120]} ({peak / 2**20:.0f} MB traced, {seconds:.1f}s) -> {name}",
                  file=sys.stderr, flush=True)
        if time.monotonic() - last > 60:
            last = time.monotonic()
            done = sum(c["inputs"] for c in counts.values())
            print(f"{(last - t0) / 60:.1f} min: {done} inputs", file=sys.stderr, flush=True)
    worker.conn.send(None)
    worker.proc.join(5)
    print(json.dumps({"minutes": round((time.monotonic() - t0) / 60, 2), "loadavg": os.getloadavg(),
                      "timeout_s": args.timeout, "targets": counts, "findings": str(findings)}))


if __name__ == "__main__":
    main()
