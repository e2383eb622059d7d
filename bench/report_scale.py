"""Time and peak memory of `modalfuse report` on YouTube-8M-sized comparisons.

    python bench/report_scale.py [--sizes 1380 29183 291830] [--models 4] [--seeds 3] [--resamples 2000]
                                 [--data ../shared/data/yt8m/video] [--keep DIR]

For each test-set size, ``models x seeds`` run folders are generated with the compact top-K
``predictions.npz`` a real YouTube-8M run saves (3862 classes): every video's labels are a real
video's labels (drawn with replacement from the label lists of the shards in ``--data``, so label
counts and class frequencies are the real ones), and each model scores them with its own skill
(labels reach its top-20 more or less often; seeds add their own noise). The training labels for
the label-prior baseline are drawn the same way. Then the whole report (``render_report``: paired
bootstrap with ``--resamples`` replicates, baselines, plots, files) runs in a fresh child process,
which prints its wall time, its CPU time (user + system, all threads) and its peak RSS. On a
machine shared with other jobs the wall time is inflated by the load; the CPU time much less so.

Targets (issue 30): a 4-model x 3-seed report on 29k videos in <= 60 s and <= 2 GB on 2 cores; time
linear in videos. Linearity is judged on CPU time (user + system of the report's process), which the
load of other jobs barely moves: the exponent of a least-squares fit of log CPU seconds on log videos
over every size run, and between the two largest sizes (wall time's too, labelled as load-dependent).
The CPU time for 1.1M videos (the 2018 validation set) is projected from each exponent and linearly
from the largest size. The bootstrap weights are drawn block by block
(``stats.difference.weight_blocks``), so no size needs the whole ``resamples x videos`` matrix. The
machine's load average is printed with each figure. The last line printed is one JSON object.

``--gap-memory VIDEOS`` measures instead one run's resampled GAP with the weights held whole (the
report's path before) and block by block: peak RSS of each in its own process, and whether their
replicates are identical. ``--gap-scaling VIDEOS... [--against WEIGHTED_PY] [--repeats 7]`` measures one run's
resampled GAP per replicate (CPU time) at each size: the code as it is, with one replicate per sparse
product (the grouping before), and another version of ``stats/weighted.py`` side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

CLASSES = 3862
FULL_VALIDATION = 1_100_000
CANDIDATES = 48  # non-label classes scored per video (only the best of them reach the top-K)


def real_label_lists(data: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(label_ptr, label_index)`` of every video in the shards, labels only."""
    from modalfuse.readers.yt8m import read_video_shards

    files = sorted(str(p) for p in data.glob("*.tfrecord"))
    if not files:
        sys.exit(f"{data}: no .tfrecord shards (the real YouTube-8M video shards are in ../shared/data/yt8m/video)")
    batch = read_video_shards(files, features={"mean_audio": 128})
    return batch.label_offsets.astype(np.int64), batch.label_values.astype(np.int64)


def draw_labels(ptr: np.ndarray, idx: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` real label lists drawn with replacement: ``(label_ptr [n + 1], label_index)``."""
    pick = rng.integers(0, len(ptr) - 1, n)
    counts = ptr[pick + 1] - ptr[pick]
    out_ptr = np.concatenate([[0], np.cumsum(counts)])
    starts = np.repeat(ptr[pick] - out_ptr[:-1], counts) + np.arange(out_ptr[-1])
    return out_ptr, idx[starts]


def model_predictions(ptr: np.ndarray, lab: np.ndarray, freq: np.ndarray, skill: float,
                      rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Compact multilabel predictions (``stats.predictions`` layout) of one simulated model.

    Label logits ~ N(skill, 1.6); the candidate non-labels (drawn by class frequency, as a trained
    model confuses frequent classes) ~ N(-2.2, 1.3). Each row keeps its top K entries, descending.
    """
    n, counts = len(ptr) - 1, np.diff(ptr)
    lmax = int(counts.max(initial=0))
    cls = np.full((n, lmax + CANDIDATES), -1, np.int64)
    col = np.arange(lab.size) - np.repeat(ptr[:-1], counts)
    cls[np.repeat(np.arange(n), counts), col] = lab
    cls[:, lmax:] = rng.choice(CLASSES, size=(n, CANDIDATES), p=freq)
    logit = np.where(np.arange(cls.shape[1]) < lmax, rng.normal(skill, 1.6, cls.shape), rng.normal(-2.2, 1.3, cls.shape))
    logit[cls < 0] = -np.inf
    # a class drawn twice in a row (a label, or a repeated candidate) keeps its first score only
    order = np.argsort(cls, axis=1, kind="stable")
    sorted_cls = np.take_along_axis(cls, order, 1)
    dup = np.zeros(cls.shape, bool)
    dup[:, 1:] = sorted_cls[:, 1:] == sorted_cls[:, :-1]
    np.put_along_axis(logit, order, np.where(dup, -np.inf, np.take_along_axis(logit, order, 1)), 1)
    score = (1 / (1 + np.exp(-logit))).astype(np.float32)
    k = max(20, lmax, int((score >= 0.5).sum(1).max()))
    top = np.argsort(-score, axis=1, kind="stable")[:, :k]
    return {"ids": np.asarray([f"v{i:07d}" for i in range(n)]), "top_index": np.take_along_axis(cls, top, 1).astype(np.int32),
            "top_score": np.take_along_axis(score, top, 1), "label_index": lab.astype(np.int32), "label_ptr": ptr,
            "num_classes": np.int64(CLASSES)}


def write_comparison(root: Path, n: int, models: int, seeds: int, real: tuple[np.ndarray, np.ndarray]) -> None:
    """A comparison folder (``compare.json`` + one run folder per model and seed) on ``n`` test videos."""
    import io

    from modalfuse.stats.weighted import full_values, metric_functions
    from modalfuse.training.runfolder import atomic_write

    rng = np.random.default_rng(n)
    ptr, lab = draw_labels(*real, n, rng)
    train_ptr, train_lab = draw_labels(*real, min(n, 20000), rng)
    freq = np.bincount(real[1], minlength=CLASSES) + 0.5
    freq = freq / freq.sum()
    runs, labels = [], [f"model{m}" for m in range(models)]
    for m, label in enumerate(labels):
        for s in range(seeds):
            folder = root / "runs" / f"{label}-seed{s}"
            folder.mkdir(parents=True)
            test = model_predictions(ptr, lab, freq, 0.6 + 0.15 * m + rng.normal(0, 0.03), rng)
            values = full_values(metric_functions("multilabel", test), n)
            arrays = {"kind": np.asarray("multilabel"), **{f"test/{k}": v for k, v in test.items()},
                      "train/label_index": train_lab.astype(np.int32), "train/label_ptr": train_ptr,
                      "train/num_classes": np.int64(CLASSES)}
            buf = io.BytesIO()
            np.savez_compressed(buf, **arrays)
            atomic_write(folder / "predictions.npz", buf.getvalue())
            (folder / "config.yaml").write_text(yaml.safe_dump({"data": {"name": "yt8m"}, "model": {"modalities": ["rgb"] if m == 0 else ["audio", "rgb"]},
                                                                "train": {"seed": s, "select": "best"}, "eval": {"top_k": 20, "threshold": 0.5}}))
            (folder / "data.json").write_text(json.dumps({"modalities": {}, "task": {"kind": "multilabel", "num_classes": CLASSES}}))
            (folder / "metrics.json").write_text(json.dumps({"valid": values, "test": values}))
            (folder / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "train_loss": 0.01 / e, "valid_gap": values["gap"]}) + "\n" for e in (1, 2)))
            (folder / "run.json").write_text(json.dumps({"monitor": "gap", "train_seconds": 1.0}))
            runs.append({"label": label, "seed": s, "folder": f"runs/{label}-seed{s}"})
    (root / "compare.json").write_text(json.dumps({"name": f"report-scale-{n}", "description": "", "command": "bench/report_scale.py",
                                                   "configs": [], "seeds": list(range(seeds)), "overrides": [], "labels": labels,
                                                   "runs": runs}))


CHILD = """
import json, resource, sys, time
t = time.perf_counter()
from modalfuse.report.render import render_report
render_report([sys.argv[1]], resamples=int(sys.argv[2]))
u = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - t, "cpu_seconds": u.ru_utime + u.ru_stime, "peak_rss_gb": u.ru_maxrss / 2**20}))
"""


GAP_CHILD = """
import hashlib, json, resource, sys, time
import numpy as np
from modalfuse.stats.difference import block_rows, block_scores, example_weights, scores, weight_blocks
from modalfuse.stats.weighted import metric_functions
z = np.load(sys.argv[1])
fns = [{"gap": metric_functions("multilabel", {k: z[k] for k in z.files})["gap"]}]
n, b, mode = len(z["label_ptr"]) - 1, int(sys.argv[2]), sys.argv[3]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
t, w = time.process_time(), time.perf_counter()
rng = np.random.default_rng([0, 0])
if mode == "whole":  # the report's path before issue 30's block-wise weights: one [B, N] float32 matrix
    got = scores(fns, example_weights(n, b, rng))["gap"]
else:
    got = block_scores({"": fns}, weight_blocks(n, b, rng), n)[""]["gap"]
print(json.dumps({"mode": mode, "weight_rows_held": b if mode == "whole" else block_rows(n, b),
                  "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
                  "rss_before_gb": round(before, 3), "cpu_seconds": round(time.process_time() - t, 1),
                  "seconds": round(time.perf_counter() - w, 1),
                  "replicates_sha1": hashlib.sha1(got.replicates.tobytes()).hexdigest()[:12]}))
"""


def gap_memory(n: int, resamples: int, real: tuple[np.ndarray, np.ndarray], base: Path) -> dict:
    """Peak RSS of one run's resampled GAP on ``n`` videos, weights whole against block-wise.

    Each mode runs in a fresh child (its own peak RSS); both draw the same weights, so their
    replicates must be identical (GAP's sums are exact): the hash of each is printed.
    """
    rng = np.random.default_rng(n)
    ptr, lab = draw_labels(*real, n, rng)
    freq = np.bincount(real[1], minlength=CLASSES) + 0.5
    path = base / f"gap-{n}.npz"
    np.savez(path, **model_predictions(ptr, lab, freq / freq.sum(), 0.9, rng))
    out = {}
    for mode in ("whole", "blocks"):
        load = os.getloadavg()[0]
        run = subprocess.run([sys.executable, "-c", GAP_CHILD, str(path), str(resamples), mode], capture_output=True, text=True,
                             check=False)
        if run.returncode:
            sys.exit(f"resampled GAP ({mode}) on {n} videos failed:\n{run.stderr[-3000:]}")
        got = json.loads(run.stdout.strip().splitlines()[-1])
        out[mode] = {**got, "load_before": round(load, 1), "load_after": round(os.getloadavg()[0], 1)}
        print(f"resampled GAP, 1 run, {n} videos x {resamples} resamples, weights {mode} ({got['weight_rows_held']} rows held): "
              f"peak RSS {got['peak_rss_gb']:.2f} GB ({got['rss_before_gb']:.2f} GB before the bootstrap), "
              f"{got['cpu_seconds']:.0f} CPU s, {got['seconds']:.0f} s (load {out[mode]['load_before']} -> {out[mode]['load_after']}), "
              f"replicates {got['replicates_sha1']}", flush=True)
    out["identical"] = out["whole"]["replicates_sha1"] == out["blocks"]["replicates_sha1"]
    return {"videos": n, "resamples": resamples, **out}


def _gap_variants(n: int, real: tuple[np.ndarray, np.ndarray], modules: dict) -> tuple[dict, np.ndarray]:
    """One simulated run's resampled GAP on ``n`` videos by each variant, and the generator after it."""
    from modalfuse.stats import weighted

    rng = np.random.default_rng(n)
    freq = np.bincount(real[1], minlength=CLASSES) + 0.5
    ptr, lab = draw_labels(*real, n, rng)
    arrays = model_predictions(ptr, lab, freq / freq.sum(), 0.9, rng)
    gaps = {name: module.metric_functions("multilabel", arrays)["gap"] for name, module in modules.items()}
    default, weighted._GAP_PRODUCT = weighted._GAP_PRODUCT, 1  # read when the metric is built
    gaps["one_per_product"] = weighted.metric_functions("multilabel", arrays)["gap"]
    weighted._GAP_PRODUCT = default
    return gaps, rng


def gap_scaling(sizes: list[int], real: tuple[np.ndarray, np.ndarray], against: Path | None = None,
                resamples: int = 24, repeats: int = 7) -> dict:
    """CPU ms per replicate of one run's resampled GAP at each size: the code as it is, with one
    replicate per sparse product wherever a running-sum pass takes one (``weighted._GAP_PRODUCT = 1``:
    the grouping before issue 30's change) and, given ``against``, another version of
    ``stats/weighted.py`` (e.g. ``git show COMMIT:src/modalfuse/stats/weighted.py``). Each repeat times
    every size and variant in turn on the same weights in this process (so a change of load hits all
    alike); medians over repeats, and the largest relative difference of each variant's replicates
    from the code's. The exponent of ms per replicate against videos, smallest to largest size: of
    the medians, and its range over the repeats (each repeat's own ratio)."""
    import importlib.util

    from modalfuse.stats import weighted
    from modalfuse.stats.difference import example_weights

    modules = {"now": weighted}
    if against:
        spec = importlib.util.spec_from_file_location("weighted_against", against)
        modules["against"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(modules["against"])
    runs = {}
    for n in sizes:
        gaps, rng = _gap_variants(n, real, modules)
        runs[n] = (gaps, example_weights(n, resamples, rng))
    times: dict[int, dict[str, list[float]]] = {n: {} for n in sizes}
    values: dict[int, dict[str, np.ndarray]] = {n: {} for n in sizes}
    for _ in range(repeats):
        for n, (gaps, W) in runs.items():
            for name, gap in gaps.items():
                t = time.process_time()
                values[n][name] = gap(W)
                times[n].setdefault(name, []).append((time.process_time() - t) / resamples * 1e3)
    rows = []
    for n in sizes:
        v = values[n]
        row = {"videos": n, **{f"{k}_ms": round(float(np.median(t)), 2) for k, t in times[n].items()},
               "max_rel_diff": {k: float(np.max(np.abs(x - v["now"]) / np.abs(v["now"]))) for k, x in v.items() if k != "now"},
               "load": round(os.getloadavg()[0], 1)}
        rows.append(row)
        print(f"{n:>8} videos: resampled GAP, ms per replicate (CPU): " + ", ".join(f"{k} {row[f'{k}_ms']}" for k in times[n])
              + f"; largest relative difference from now: {row['max_rel_diff']}; load {row['load']}", flush=True)
    out: dict = {"resamples": resamples, "repeats": repeats, "sizes": rows}
    if len(sizes) >= 2:
        a, b = sizes[0], sizes[-1]
        each = {k: np.log(np.array(times[b][k]) / np.array(times[a][k])) / np.log(b / a) for k in times[a]}
        out["exponents"] = {k: round(float(np.log(np.median(times[b][k]) / np.median(times[a][k])) / np.log(b / a)), 3) for k in each}
        out["exponent_range"] = {k: [round(float(e.min()), 3), round(float(e.max()), 3)] for k, e in each.items()}
        print(f"ms per replicate ~ videos^exponent from {a:,} to {b:,} (1 = linear): {out['exponents']}; "
              f"range over the {repeats} repeats: {out['exponent_range']}")
    return out


def projection(done: list[dict]) -> dict:
    """Exponents of CPU and wall seconds against videos (least squares on logs over every size; CPU
    also between the two largest sizes, where fixed costs weigh least) and the 1.1M-video CPU time
    projected from each CPU exponent and linearly from the largest size."""
    x = np.log([r["videos"] for r in done])
    out = {}
    for key, name in (("cpu_seconds", "cpu"), ("report_seconds", "wall")):
        slope, icpt = np.polyfit(x, np.log([r[key] for r in done]), 1)
        out[f"{name}_exponent"] = round(float(slope), 3)
        out[f"projected_{name}_seconds_1_1M"] = round(float(np.exp(icpt) * FULL_VALIDATION**slope))
    a, b = done[-2], done[-1]
    top = float(np.log(b["cpu_seconds"] / a["cpu_seconds"]) / np.log(b["videos"] / a["videos"]))
    out["cpu_exponent_largest_pair"] = round(top, 3)
    out["projected_cpu_seconds_1_1M_largest_pair"] = round(b["cpu_seconds"] * (FULL_VALIDATION / b["videos"]) ** top)
    out["projected_cpu_seconds_1_1M_linear"] = round(b["cpu_seconds"] * FULL_VALIDATION / b["videos"])
    sizes = ", ".join(f"{r['videos']:,}" for r in done)
    print(f"CPU time ~ videos^{out['cpu_exponent']} over {sizes} videos, ^{out['cpu_exponent_largest_pair']} from "
          f"{a['videos']:,} to {b['videos']:,} (1 = linear); wall time ~ videos^{out['wall_exponent']} (load-dependent)")
    print(f"projected CPU time for {FULL_VALIDATION:,} videos: {out['projected_cpu_seconds_1_1M'] / 60:.0f} min from the fit, "
          f"{out['projected_cpu_seconds_1_1M_largest_pair'] / 60:.0f} min from the largest pair's exponent, "
          f"{out['projected_cpu_seconds_1_1M_linear'] / 60:.0f} min linearly from {b['videos']:,} "
          f"(the wall fit says {out['projected_wall_seconds_1_1M'] / 60:.0f} min at the loads measured)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1380, 29183, 291830])
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "../shared/data/yt8m/video")
    ap.add_argument("--keep", type=Path, help="write the comparisons here (default: a temporary folder, removed)")
    ap.add_argument("--gap-memory", type=int, metavar="VIDEOS",
                    help="instead: peak RSS of one run's resampled GAP on VIDEOS videos, weights whole vs block-wise")
    ap.add_argument("--gap-scaling", type=int, nargs="+", metavar="VIDEOS",
                    help="instead: CPU ms per replicate of one run's resampled GAP at each size, by replicates per product")
    ap.add_argument("--against", type=Path, metavar="WEIGHTED_PY",
                    help="with --gap-scaling: also time this version of stats/weighted.py side by side")
    ap.add_argument("--repeats", type=int, default=7, help="with --gap-scaling: timed calls of each variant and size")
    args = ap.parse_args()
    real = real_label_lists(args.data)
    print(f"label lists of {len(real[0]) - 1} real videos ({len(real[1]) / (len(real[0]) - 1):.2f} labels per video) "
          f"from {args.data}; {os.cpu_count()} cores")
    if args.gap_scaling:
        print(json.dumps({"gap_scaling": gap_scaling(args.gap_scaling, real, args.against, repeats=args.repeats)}))
        return
    if args.gap_memory:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(gap_memory(args.gap_memory, args.resamples, real, Path(tmp))))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        for n in args.sizes:
            root = base / f"report-scale-{n}"
            t = time.perf_counter()
            write_comparison(root, n, args.models, args.seeds, real)
            made = time.perf_counter() - t
            load = os.getloadavg()[0]
            out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(args.resamples)], capture_output=True,
                                 text=True, env={**os.environ, "MPLBACKEND": "Agg"})
            if out.returncode:
                sys.exit(f"report on {n} videos failed:\n{out.stderr[-3000:]}")
            got = json.loads(out.stdout.strip().splitlines()[-1])
            gaps = json.loads((root / "runs/model0-seed0/metrics.json").read_text())["test"]["gap"]
            row = {"videos": n, "report_seconds": round(got["seconds"], 1), "cpu_seconds": round(got["cpu_seconds"], 1), "peak_rss_gb": round(got["peak_rss_gb"], 2),
                   "load_before": round(load, 1), "load_after": round(os.getloadavg()[0], 1), "setup_seconds": round(made, 1),
                   "gap_model0_seed0": round(gaps, 4)}
            rows.append(row)
            print(f"{n:>8} videos: report {row['report_seconds']:>7.1f} s ({row['cpu_seconds']:.0f} CPU s), peak RSS {row['peak_rss_gb']:.2f} GB "
                  f"(load {row['load_before']} -> {row['load_after']} on {os.cpu_count()} cores; runs made in {made:.0f} s)", flush=True)
    done = [r for r in rows if "report_seconds" in r]
    result: dict = {"models": args.models, "seeds": args.seeds, "resamples": args.resamples, "classes": CLASSES, "sizes": rows}
    if len(done) >= 2:
        result.update(projection(done))
    at29k = [r for r in done if 20000 <= r["videos"] <= 40000]
    if at29k:
        r = at29k[0]
        result["target_29k"] = {"seconds_le_60": r["report_seconds"] <= 60, "rss_le_2gb": r["peak_rss_gb"] <= 2}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
