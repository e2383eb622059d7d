"""YouTube-8M data-scaling study: test GAP against training-set size, nested subsets, power-law fits.

    python bench/yt8m_scaling.py [--data ../shared/data/yt8m/video] [--out runs/yt8m-scaling]
        [--models logistic fc-early moe] [--sizes 1000 2000 4000 8000 16000 all] [--seeds 3] [--jobs 2]
        [--sizes-for MODEL=N,N,...] [--seeds-for MODEL=N] [--reuse COMPARISON_DIR ...]
        [--analyse-only] [--bootstrap 500]

Protocol (docs/results_yt8m.md): shards 0000-0089 train, 0090-0094 validate, 0095-0099 test. Each
model trains on the first N videos of one seeded permutation of the training split
(``data.train_limit``, ``data.subset_seed=0``), so every smaller subset is inside every larger one and
is the same for every training seed. Schedule: the short one of the YouTube-8M tables (AdamW, lr 1e-3,
10 epochs, early stopping on validation GAP with patience 3, batch 64), one CPU thread per run.

Training: ``modalfuse train`` subprocesses, ``--jobs`` at a time, seed-major (every model's curve for
seed 0 first), niced; a run folder already finished is reused and an unfinished one is resumed, so
re-running the command continues the study. Run folders: ``OUT/<model>/n<N>/``. ``--reuse DIR``
takes the finished runs of a ``modalfuse compare`` folder (``DIR/runs/<label>-seed<k>``, trained on this
split with this schedule, e.g. ``compare yt8m-100-short`` for the full training set or
``compare yt8m-paper-4k`` for 4,000 videos) as points of model ``<label>`` at their training size,
and does not train those (model, size, seed) again.

Analysis (also ``--analyse-only``): every finished run's best checkpoint scores the test split; the
GAP per (model, N) is the mean over seeds. The interval at each N and the fit's uncertainty come from
one bootstrap that resamples test videos (the same draw for every run, so sizes and models stay
paired) and seeds (a draw with replacement per (model, N)). Per model, the saturating power law
``GAP(n) = a - b * n**(-c)`` is fitted by ``scipy.optimize.curve_fit`` to the mean GAPs of each
bootstrap replicate and evaluated at the full 2018 training set (3,888,919 videos); the printed
interval is the replicate 2.5-97.5 percentiles. Writes ``OUT/scaling.png`` (log x) and
``OUT/scaling.json``; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

FULL_TRAIN = 3_888_919  # videos in the official 2018 video-level training split
SCHEDULE = ["train.epochs=10", "train.learning_rate=0.001", "train.patience=3", "train.threads=1",
            "train.progress=log", "data.subset_seed=0"]


def _split_globs(data: str) -> dict[str, str]:
    return {"train": f"{data}/validate00[0-8][0-9].tfrecord", "valid": f"{data}/validate009[0-4].tfrecord",
            "test": f"{data}/validate009[5-9].tfrecord"}


def _runs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if (p / "config.yaml").is_file()) if folder.is_dir() else []


def _seed(run: Path) -> int:
    import yaml

    return int(yaml.safe_load((run / "config.yaml").read_text())["train"]["seed"])


def _finished(run: Path) -> bool:
    return (run / "metrics.json").is_file() and (run / "run.json").is_file()


def _size_key(run: Path) -> str:
    """A run's training size as the grid names it: ``data.train_limit`` or ``all``."""
    import yaml

    limit = (yaml.safe_load((run / "config.yaml").read_text()).get("data") or {}).get("train_limit")
    return str(limit) if limit else "all"


def _reused(args: argparse.Namespace) -> dict[tuple[str, str], list[Path]]:
    """Finished runs of the ``--reuse`` comparison folders: (model label, size key) -> run folders."""
    out: dict[tuple[str, str], list[Path]] = {}
    for folder in args.reuse:
        for run in sorted((Path(folder) / "runs").glob("*-seed*")):
            if _finished(run):
                out.setdefault((run.name.rsplit("-seed", 1)[0], _size_key(run)), []).append(run)
    return out


def _train_one(model: str, size: str, seed: int, args: argparse.Namespace) -> str:
    folder = Path(args.out) / model / f"n{size}"
    if any(_seed(r) == seed for r in _reused(args).get((model, size), [])):
        return f"{model} n={size} seed={seed}: in a --reuse comparison"
    mine = [r for r in _runs(folder) if _seed(r) == seed]
    if any(_finished(r) for r in mine):
        return f"{model} n={size} seed={seed}: done before"
    cmd = [sys.executable, "-m", "modalfuse", "train"]
    if mine:  # interrupted earlier: continue where its last checkpoint stopped
        cmd += [str(mine[-1] / "config.yaml"), "--resume", str(mine[-1]), "--set", "train.threads=1"]
    else:
        globs = _split_globs(args.data)
        cmd += [f"yt8m/{model}", "--out", str(folder), "--set", f"train.seed={seed}",
                *[f"--set=data.{k}={v}" for k, v in globs.items()], *[f"--set={o}" for o in SCHEDULE]]
        if size != "all":
            cmd += ["--set", f"data.train_limit={size}"]
    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    with open(folder / f"seed{seed}.log", "a") as log:
        rc = subprocess.call(["nice", "-n", str(args.nice), *cmd], stdout=log, stderr=subprocess.STDOUT)
    return f"{model} n={size} seed={seed}: exit {rc} after {time.perf_counter() - t:.0f} s"


def _grid(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    """(model, size, seed) in the order trained: seed-major, then models as given, then sizes."""
    sizes = {m: args.sizes for m in args.models}
    seeds = dict.fromkeys(args.models, args.seeds)
    for item in args.sizes_for:  # MODEL=SIZE,SIZE,...
        model, _, listed = item.partition("=")
        sizes[model] = listed.split(",")
    for item in args.seeds_for:  # MODEL=N
        model, _, n = item.partition("=")
        seeds[model] = int(n)
    return [(m, s, seed) for seed in range(max(seeds.values())) for m in args.models if seed < seeds[m]
            for s in sizes[m]]


def train(args: argparse.Namespace) -> None:
    jobs = _grid(args)
    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(lambda j: _train_one(*j, args), jobs):
            print(line, flush=True)


# --------------------------------------------------------------------------- analysis


def _topk(run: Path, data, k: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Top-k test scores ``[N, k]`` and whether each is a true label ``[N, k]`` of a run's best model."""
    import torch

    from modalfuse.datasets.loader import eval_batches
    from modalfuse.training.run import load_run

    _, model, _ = load_run(run, data=data)
    scores, hits = [], []
    with torch.no_grad():
        for batch in eval_batches(data.test, 512):
            s = torch.sigmoid(model(batch["features"])["logits"].float())
            top = torch.topk(s, k, dim=1)
            scores.append(top.values.numpy())
            hits.append(torch.gather(batch["label"], 1, top.indices).numpy())
    return np.concatenate(scores), np.concatenate(hits)


def gap_topk(scores: np.ndarray, hits: np.ndarray, positives: float) -> float:
    """GAP from pooled top-k lists: ``scores``/``hits`` ``[N, k]``, ``positives`` = all true labels of the
    N videos (the official denominator counts positives outside the top k too)."""
    s, y = scores.ravel(), hits.ravel()
    order = np.argsort(-s, kind="stable")
    y = y[order]
    precision = np.cumsum(y) / np.arange(1, len(y) + 1)
    return float((precision * y).sum() / max(positives, 1))


def power_law(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """Saturating power law: tends to ``a`` as ``n`` grows; ``b``, ``c`` > 0."""
    return a - b * np.power(n / 1000.0, -c)


def _fit(n: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    from scipy.optimize import curve_fit

    try:
        p, _ = curve_fit(power_law, n, y, p0=(y.max() + 0.05, 0.1, 0.5),
                         bounds=([0, 0, 0.01], [1, 10, 3]), maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    return p


def analyse(args: argparse.Namespace) -> dict:
    from modalfuse import plugins
    from modalfuse.errors import UserError
    from modalfuse.registry import DATASETS
    from modalfuse.training.runfolder import atomic_write

    plugins.load()
    root = Path(args.out)
    data = DATASETS.get("yt8m")(DATASETS.info("yt8m")["params"](**_split_globs(args.data)))
    labels = data.test.labels
    positives = labels.sum(1)
    n_test = len(labels)
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, n_test, n_test) for _ in range(args.bootstrap)]
    out: dict = {"test_videos": n_test, "full_train": FULL_TRAIN, "bootstrap": args.bootstrap, "models": {}}
    grid: dict[str, dict[str, list[Path]]] = {}
    for model_dir in sorted(p for p in root.glob("*") if p.is_dir()):
        for size_dir in model_dir.glob("n*"):
            grid.setdefault(model_dir.name, {}).setdefault(size_dir.name[1:], []).extend(
                r for r in _runs(size_dir) if _finished(r))
    for (model, size), runs in _reused(args).items():
        if model not in args.models:  # a comparison's other models are not part of this study
            continue
        seeds = {_seed(r) for r in grid.get(model, {}).get(size, [])}
        grid.setdefault(model, {}).setdefault(size, []).extend(r for r in runs if _seed(r) not in seeds)
    for model in sorted(m for m in grid if m in args.models):
        points = []
        for runs in grid[model].values():
            if not runs:
                continue
            n_train = json.loads((runs[0] / "data.json").read_text())["info"]["records"]["train"]
            tops = []
            for r in runs:
                try:
                    tops.append(_topk(r, data))
                except UserError as e:  # e.g. a run saved before the one-model-family redesign
                    print(f"skipped {r}: {str(e).splitlines()[0][:160]}", flush=True)
            if not tops:
                continue
            full = [gap_topk(s, h, positives.sum()) for s, h in tops]
            boot = np.empty((args.bootstrap, len(tops)))
            for b, idx in enumerate(draws):
                for j, (s, h) in enumerate(tops):
                    boot[b, j] = gap_topk(s[idx], h[idx], positives[idx].sum())
            points.append({"n": n_train, "seeds": len(tops), "gap": float(np.mean(full)), "gap_seeds": full,
                           "_boot": boot})
        if not points:
            continue
        points.sort(key=lambda p: p["n"])
        n = np.array([p["n"] for p in points], float)
        y = np.array([p["gap"] for p in points])
        # one replicate: the same test-video draw for every size, seeds drawn with replacement per size
        reps = np.array([[p["_boot"][b, rng.integers(0, p["seeds"], p["seeds"])].mean() for p in points]
                         for b in range(args.bootstrap)])
        for p, col in zip(points, reps.T):
            p["ci95"] = [float(np.percentile(col, 2.5)), float(np.percentile(col, 97.5))]
            del p["_boot"]
        entry: dict = {"points": points}
        if len(points) >= 4:
            fit = _fit(n, y)
            extrap = [float(power_law(FULL_TRAIN, *f)) for f in (_fit(n, r) for r in reps) if f is not None]
            if fit is not None and extrap:
                entry["fit"] = {"a": float(fit[0]), "b": float(fit[1]), "c": float(fit[2]),
                                "gap_at_full": float(power_law(FULL_TRAIN, *fit)),
                                "gap_at_full_ci95": [float(np.percentile(extrap, 2.5)), float(np.percentile(extrap, 97.5))],
                                "replicates_fitted": len(extrap)}
        out["models"][model] = entry
    _plot(out, root / "scaling.png")
    atomic_write(root / "scaling.json", json.dumps(out, indent=1))
    return out


def _plot(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    grid = np.geomspace(500, FULL_TRAIN, 200)
    for i, (name, entry) in enumerate(out["models"].items()):
        color = f"C{i}"
        pts = entry["points"]
        n = [p["n"] for p in pts]
        y = [p["gap"] for p in pts]
        err = np.array([[p["gap"] - p["ci95"][0] for p in pts], [p["ci95"][1] - p["gap"] for p in pts]])
        ax.errorbar(n, y, yerr=err, fmt="o", color=color, capsize=3, label=name)
        if "fit" in entry:
            f = entry["fit"]
            ax.plot(grid, power_law(grid, f["a"], f["b"], f["c"]), "-", color=color, alpha=0.6)
            lo, hi = f["gap_at_full_ci95"]
            ax.errorbar([FULL_TRAIN], [f["gap_at_full"]], yerr=[[f["gap_at_full"] - lo], [hi - f["gap_at_full"]]],
                        fmt="s", color=color, capsize=3, alpha=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("training videos (log scale; squares: fit extrapolated to the full 2018 training set)")
    ax.set_ylabel(f"test GAP@20 ({out['test_videos']} videos)")
    ax.set_title("YouTube-8M: GAP vs training-set size (95% bootstrap intervals)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    from modalfuse.training.runfolder import atomic_write

    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = Path(__file__).resolve().parent.parent
    ap.add_argument("--data", default=str(here.parent / "shared" / "data" / "yt8m" / "video"))
    ap.add_argument("--out", default="runs/yt8m-scaling")
    ap.add_argument("--models", nargs="+", default=["logistic", "fc-early", "moe"])
    ap.add_argument("--sizes", nargs="+", default=["1000", "2000", "4000", "8000", "16000", "all"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--sizes-for", nargs="*", default=[], metavar="MODEL=N,N,...",
                    help="sizes for one model instead of --sizes")
    ap.add_argument("--seeds-for", nargs="*", default=[], metavar="MODEL=N", help="seeds for one model")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--nice", type=int, default=10)
    ap.add_argument("--bootstrap", type=int, default=500)
    ap.add_argument("--reuse", nargs="*", default=[], metavar="COMPARISON_DIR",
                    help="modalfuse compare folders whose finished runs are points (label = model)")
    ap.add_argument("--analyse-only", action="store_true")
    args = ap.parse_args()
    if not args.analyse_only:
        train(args)
    out = analyse(args)
    summary = {name: {"gap_by_n": {p["n"]: round(p["gap"], 4) for p in e["points"]},
                      **({"gap_at_full": round(e["fit"]["gap_at_full"], 4),
                          "gap_at_full_ci95": [round(x, 4) for x in e["fit"]["gap_at_full_ci95"]]} if "fit" in e else {})}
               for name, e in out["models"].items()}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
