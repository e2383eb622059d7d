"""modalfuse's ``prepare cmu-sdk`` against the CMU-MultimodalSDK's own alignment, on the same files.

    python bench/align.py [--data ../shared/data/csd_fixture] [--repeat 20] [--workers 1]

The word-level fixture (GloVe 300-d, COVAREP 74-d at 100 Hz, FACET 35-d at 30 Hz, labels) is scaled
up by writing its videos ``--repeat`` times under new ids into fresh .csd files. Each side then runs
in its own child process, so that its peak RSS (``ru_maxrss``) is its own:

- SDK: ``mmdataset({glove, covarep, facet}).align("glove", collapse_functions=[mean])``, then
  ``add_computational_sequences({labels})`` and ``align("labels")``;
- modalfuse: ``prepare_cmu_sdk(..., align_to="glove")``, writing the packed file.

Both times include reading the .csd files; the child's import time is reported apart. After timing,
both outputs are compared segment by segment (same ids, every modality within 1e-5). Needs
``pip install cmu-multimodal-sdk``. The last line printed is one JSON object with ``speedup``
(SDK time / modalfuse time) and ``rss_ratio`` (modalfuse peak RSS / SDK peak RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEAK_RSS_IMPORTS = "import resource\n"
MODALITIES = ("glove", "covarep", "facet")

# Peak RSS of this process alone: VmHWM belongs to the process's own address space, while
# ru_maxrss survives execve and so can report the parent's high-water mark instead.
PEAK_RSS = r"""
def peak_rss():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
"""

SDK_CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import numpy as np
from mmsdk import mmdatasdk
t1 = time.perf_counter()
d = sys.argv[1]

def mean(intervals, features):
    return np.average(features, axis=0)

ds = mmdatasdk.mmdataset({m: f"{d}/{m}.csd" for m in ("glove", "covarep", "facet")})
ds.align("glove", collapse_functions=[mean])
ds.add_computational_sequences({"labels": f"{d}/labels.csd"}, destination=None)
ds.align("labels")
t2 = time.perf_counter()
rss = peak_rss()
out = {}
for m in ("glove", "covarep", "facet", "labels"):
    for key in ds[m].keys():
        out[f"{key}/{m}"] = np.asarray(ds[m][key]["features"])
np.savez(sys.argv[2], **out)
print(json.dumps({"import_s": t1 - t0, "seconds": t2 - t1, "peak_rss": rss}))
"""

MF_CHILD = r"""
import json, resource, sys, time
# workers=1: the whole job runs in this process, so this process's peak is the job's peak.
t0 = time.perf_counter()
from modalfuse.prepare.cmu_sdk import prepare_cmu_sdk
t1 = time.perf_counter()
d = sys.argv[1]
summary = prepare_cmu_sdk({m: f"{d}/{m}.csd" for m in ("glove", "covarep", "facet")},
                          f"{d}/labels.csd", "glove", sys.argv[2], workers=int(sys.argv[3]), progress=False)
t2 = time.perf_counter()
rss = peak_rss()
print(json.dumps({"import_s": t1 - t0, "seconds": t2 - t1, "peak_rss": rss, "segments": summary["segments"]}))
"""


def scale_fixture(src: Path, dst: Path, repeat: int) -> int:
    """Write every .csd of ``src`` into ``dst`` with its videos copied ``repeat`` times as
    ``r<k>_<video>``; returns the number of videos written per file."""
    import h5py

    n = 0
    for name in (*MODALITIES, "labels"):
        with h5py.File(src / f"{name}.csd", "r") as fin, h5py.File(dst / f"{name}.csd", "w") as fout:
            root = list(fin.keys())[0]
            fin.copy(fin[root]["metadata"], fout.require_group(root), name="metadata")
            data = fout[root].create_group("data")
            videos = list(fin[root]["data"].keys())
            for r in range(repeat):
                for v in videos:
                    g = data.create_group(f"r{r:03d}_{v}")
                    g["features"] = fin[root]["data"][v]["features"][()]
                    g["intervals"] = fin[root]["data"][v]["intervals"][()]
            n = len(videos) * repeat
    return n


def run_child(code: str, *args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", PEAK_RSS_IMPORTS + PEAK_RSS + code, *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"child failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(sdk_npz: Path, packed: Path) -> tuple[int, float]:
    """Segments compared and the largest absolute difference; raises if ids or shapes differ."""
    import numpy as np

    from modalfuse.readers.packed import PackedDataset

    sdk = np.load(sdk_npz)
    by_seg: dict[str, dict[str, str]] = {}
    for key in sdk.files:
        seg, m = key.rsplit("/", 1)
        by_seg.setdefault(seg, {})[m] = key
    # The SDK keeps a segment in each sequence it reaches; a packed dataset keeps the complete ones.
    complete = sorted(s for s, ms in by_seg.items() if len(ms) == len(MODALITIES) + 1)
    worst = 0.0
    with PackedDataset(packed) as p:
        if sorted(p.ids) != complete:
            raise SystemExit(f"segment ids differ: SDK {len(complete)}, modalfuse {len(p.ids)}")
        for i, sid in enumerate(p.ids):
            seg = p.segment(i)
            for m in MODALITIES:
                ref = sdk[by_seg[sid][m]]
                if ref.shape != seg[m].shape:
                    raise SystemExit(f"{sid}/{m}: SDK shape {ref.shape}, modalfuse {seg[m].shape}")
                worst = max(worst, float(np.max(np.abs(ref - seg[m]))) if ref.size else 0.0)
            worst = max(worst, float(np.max(np.abs(sdk[by_seg[sid]["labels"]].ravel() - p.labels[i]))))
    return len(complete), worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "csd_fixture"))
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    try:
        import mmsdk  # noqa: F401
    except ImportError:
        raise SystemExit("the CMU-MultimodalSDK is not installed: pip install cmu-multimodal-sdk")

    with tempfile.TemporaryDirectory(prefix="modalfuse-bench-align-") as tmp:
        work = Path(tmp)
        (work / "csd").mkdir()
        videos = scale_fixture(Path(args.data), work / "csd", args.repeat)
        size = sum(f.stat().st_size for f in (work / "csd").iterdir())
        print(f"data: {videos} videos ({args.repeat}x the fixture), {size / 2**20:.1f} MiB of .csd")
        mf = run_child(MF_CHILD, str(work / "csd"), str(work / "packed.h5"), str(args.workers))
        sdk = run_child(SDK_CHILD, str(work / "csd"), str(work / "sdk.npz"))
        segments, worst = compare(work / "sdk.npz", work / "packed.h5")

    print(f"{'side':<11}{'align (s)':>11}{'import (s)':>12}{'peak RSS (MiB)':>16}")
    for name, r in (("SDK", sdk), ("modalfuse", mf)):
        print(f"{name:<11}{r['seconds']:>11.2f}{r['import_s']:>12.2f}{r['peak_rss'] / 2**20:>16.1f}")
    print(f"outputs agree: {segments} segments, max |difference| {worst:.2e}")
    result = {
        "videos": videos,
        "segments": segments,
        "workers": args.workers,
        "sdk_seconds": round(sdk["seconds"], 3),
        "modalfuse_seconds": round(mf["seconds"], 3),
        "sdk_peak_rss_mib": round(sdk["peak_rss"] / 2**20, 1),
        "modalfuse_peak_rss_mib": round(mf["peak_rss"] / 2**20, 1),
        "max_abs_diff": worst,
        "speedup": round(sdk["seconds"] / mf["seconds"], 2),
        "rss_ratio": round(mf["peak_rss"] / sdk["peak_rss"], 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
