"""Attend-Fusion's parameter sensitivity: test GAP against parameters per design, and attention vs none.

    python bench/yt8m_frontier.py [COMPARISON_DIR ...] [--out runs/yt8m-frontier] [--resamples 2000]

Default folders: ``runs/compare-yt8m-frontier-4k`` (``modalfuse compare yt8m-frontier-4k``: three
designs x four widths) and ``runs/compare-yt8m-paper-4k`` (``modalfuse compare yt8m-paper-4k``: the
paper-size presets, fc-late and the small references), both trained on the same 4,000 videos and tested
on the same 1,380 (checked: every run must have the same test ids).

Series: labels ``<design>-w<width>`` make one curve per design; the paper-size presets extend them
(``attend-fusion`` -> projection, ``attend-fusion-modality`` -> modality, ``attend-fusion-none`` ->
none); every other label (fc-late, fc-early, rgb-only, ...) is a single point. A point is the mean
test GAP@20 over a model's seeds, with the comparison report's 95 % interval (``stats.difference``:
seed-level Student t with the test-set variance from test-video resamples drawn once for every
model). The same resamples give, at each width, the paired difference of each attention design minus
``none`` (interval and p-value as in the comparison reports; not Holm-adjusted: they are reported,
not used to pick). The Pareto frontier lists the models that no other model matches or beats on both
GAP and parameters. Writes ``OUT/frontier.png`` and ``OUT/frontier.json``; the last line printed is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

PAPER = {"attend-fusion": "projection", "attend-fusion-modality": "modality", "attend-fusion-none": "none"}
WIDTH = re.compile(r"^(?P<design>[a-z]+)-w(?P<width>\d+)$")


def _series(label: str) -> tuple[str | None, str]:
    """(design, width tag) of a label, design ``None`` for a single reference point."""
    m = WIDTH.match(label)
    if m:
        return m["design"], m["width"]
    if label in PAPER:
        return PAPER[label], "paper"
    return None, label


def collect(folders: list[Path]) -> dict[str, list]:
    """Finished runs with predictions, by label (a label in two folders is an error)."""
    from modalfuse.report.runs import read_run

    groups: dict[str, list] = {}
    where: dict[str, Path] = {}
    for folder in folders:
        for run_dir in sorted((folder / "runs").glob("*-seed*")):
            if not ((run_dir / "metrics.json").is_file() and (run_dir / "predictions.npz").is_file()):
                continue
            label, seed = run_dir.name.rsplit("-seed", 1)
            if label in where and where[label] != folder:
                raise SystemExit(f"{run_dir}: label {label!r} is also in {where[label]}")
            where[label] = folder
            groups.setdefault(label, []).append(read_run(run_dir, label, int(seed)))
    return groups


def analyse(folders: list[Path], resamples: int) -> dict:
    from modalfuse.report.runs import check_comparable
    from modalfuse.stats.difference import difference
    from modalfuse.stats.verdicts import model_scores
    from modalfuse.stats.weighted import metric_functions

    groups = collect(folders)
    if not groups:
        raise SystemExit(f"no finished runs with predictions in {', '.join(map(str, folders))}")
    check_comparable([r for runs in groups.values() for r in runs])  # one task, the same test videos
    ids = next(iter(groups.values()))[0].predictions["test"]["ids"]
    per_model = {lab: [{"gap": metric_functions(r.kind, r.predictions["test"])["gap"]} for r in runs]
                 for lab, runs in groups.items()}
    models = {lab: sc["gap"] for lab, sc in model_scores(per_model, len(ids), resamples=resamples, seed=0).items()}
    points = []
    for label, runs in groups.items():
        design, width = _series(label)
        points.append({"model": label, "design": design, "width": width, "seeds": len(runs),
                       "parameters": int(runs[0].analysis["efficiency"]["parameters"]) if runs[0].analysis else None,
                       "gap": models[label].mean, "ci95": list(difference(models[label]).interval(0.95)),
                       "valid_gap": float(np.mean([r.metrics["valid"]["gap"] for r in runs]))})
    points.sort(key=lambda p: (p["parameters"] or 0))
    pareto = [p["model"] for p in points
              if not any(q is not p and q["gap"] >= p["gap"] and q["parameters"] <= p["parameters"]
                         and (q["gap"] > p["gap"] or q["parameters"] < p["parameters"]) for q in points)]
    versus = []
    for p in points:
        if p["design"] in (None, "none"):
            continue
        none = next((q["model"] for q in points if q["design"] == "none" and q["width"] == p["width"]), None)
        if none is None:
            continue
        d = difference(models[p["model"]], models[none])
        versus.append({"model": p["model"], "vs": none, "delta": d.estimate, "ci95": list(d.interval(0.95)),
                       "p_value": d.p_value(), "df": d.df})
    return {"test_videos": int(len(ids)), "resamples": resamples, "folders": [str(f) for f in folders],
            "points": points, "pareto": pareto, "attention_minus_none": versus}


def plot(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    designs = sorted({p["design"] for p in out["points"] if p["design"]})
    for i, design in enumerate(designs):
        pts = [p for p in out["points"] if p["design"] == design]
        x = [p["parameters"] for p in pts]
        y = [p["gap"] for p in pts]
        err = np.array([[p["gap"] - p["ci95"][0] for p in pts], [p["ci95"][1] - p["gap"] for p in pts]])
        ax.errorbar(x, y, yerr=err, fmt="o-", color=f"C{i}", capsize=3, label=f"Attend-Fusion: {design}")
    singles = [p for p in out["points"] if not p["design"]]
    for j, p in enumerate(singles):
        ax.errorbar([p["parameters"]], [p["gap"]], yerr=[[p["gap"] - p["ci95"][0]], [p["ci95"][1] - p["gap"]]],
                    fmt="s", color=f"C{len(designs) + j}", capsize=3, label=p["model"])
    ax.set_xscale("log")
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel(f"test GAP@20 ({out['test_videos']} videos)")
    ax.set_title("YouTube-8M, 4,000 training videos: GAP vs parameters (95% bootstrap intervals)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from modalfuse.training.runfolder import atomic_write

    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="*", default=["runs/compare-yt8m-frontier-4k", "runs/compare-yt8m-paper-4k"])
    ap.add_argument("--out", default="runs/yt8m-frontier")
    ap.add_argument("--resamples", type=int, default=2000)
    args = ap.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    from modalfuse.training.runfolder import atomic_write

    out = analyse([Path(f) for f in args.folders], args.resamples)
    plot(out, out_dir / "frontier.png")
    atomic_write(out_dir / "frontier.json", json.dumps(out, indent=1))
    print(json.dumps({"points": {p["model"]: [p["parameters"], round(p["gap"], 4)] for p in out["points"]},
                      "pareto": out["pareto"],
                      "attention_minus_none": {v["model"]: [round(v["delta"], 4), [round(c, 4) for c in v["ci95"]]]
                                               for v in out["attention_minus_none"]}}))


if __name__ == "__main__":
    main()
