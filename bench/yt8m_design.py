"""Attend-Fusion design study: pick the design on validation GAP, then report it on test.

    python bench/yt8m_design.py [--small runs/compare-yt8m-100-short] [--paper runs/compare-yt8m-paper-4k]
        [--resamples 2000]

Candidates (labels of the comparison folders), at matched widths:

- small size (``compare yt8m-100-short``: per-modality MLP [512], head [512], 25,953 training
  videos, 3 seeds): ``attend-fusion-small`` (tokens cut from each modality's projected vector),
  ``attend-fusion-small-modality`` (one token per modality, attention across modalities),
  ``attend-fusion-small-none`` (attention removed);
- paper size (``compare yt8m-paper-4k``: MLP [4096, 4096], head [2304], 4,000 training videos, 1 seed):
  ``attend-fusion``, ``attend-fusion-modality``, ``attend-fusion-none``.

At each size the pick is the attention design (not ``none``: it is the control that says whether
attention helps at all) with the highest mean validation GAP over its seeds; the table gives every
candidate's validation and test GAP (mean, and sample standard deviation over seeds where there are
several). Test differences against ``none`` are the comparison report's (``stats.difference``: seed-level
Student t with the paired test-set variance from shared test-video resamples), 95 % interval and
two-sided p-value, not Holm-adjusted.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SIZES = {
    "small": ("attend-fusion-small", "attend-fusion-small-modality", "attend-fusion-small-none"),
    "paper": ("attend-fusion", "attend-fusion-modality", "attend-fusion-none"),
}


def study(folder: Path, labels: tuple[str, ...], resamples: int) -> dict:
    from modalfuse.report.runs import read_run
    from modalfuse.stats.difference import difference
    from modalfuse.stats.verdicts import model_scores
    from modalfuse.stats.weighted import metric_functions

    runs = {lab: [read_run(d, lab, int(d.name.rsplit("-seed", 1)[1]))
                  for d in sorted((folder / "runs").glob(f"{lab}-seed*"))
                  if (d / "metrics.json").is_file() and (d / "predictions.npz").is_file()] for lab in labels}
    runs = {lab: rs for lab, rs in runs.items() if rs}
    if not runs:
        return {"folder": str(folder), "candidates": {}}
    rows = {}
    for lab, rs in runs.items():
        valid = [r.metrics["valid"]["gap"] for r in rs]
        test = [r.metrics["test"]["gap"] for r in rs]
        rows[lab] = {"seeds": len(rs), "valid_gap": float(np.mean(valid)),
                     "valid_sd": float(np.std(valid, ddof=1)) if len(rs) > 1 else None,
                     "test_gap": float(np.mean(test)), "test_sd": float(np.std(test, ddof=1)) if len(rs) > 1 else None,
                     "parameters": rs[0].analysis["efficiency"]["parameters"] if rs[0].analysis else None}
    attention = [lab for lab in rows if not lab.endswith("-none")]
    pick = max(attention, key=lambda lab: rows[lab]["valid_gap"]) if attention else None
    none = next((lab for lab in rows if lab.endswith("-none")), None)
    versus = {}
    if none:
        n = len(next(iter(runs.values()))[0].predictions["test"]["ids"])
        models = model_scores({lab: [{"gap": metric_functions(r.kind, r.predictions["test"])["gap"]} for r in rs]
                               for lab, rs in runs.items()}, n, resamples=resamples, seed=0)
        for lab in attention:
            d = difference(models[lab]["gap"], models[none]["gap"])
            versus[lab] = {"vs": none, "delta": d.estimate, "ci95": list(d.interval(0.95)), "p_value": d.p_value(),
                           "df": d.df, "mde": d.mde()}
    return {"folder": str(folder), "candidates": rows, "pick_on_validation": pick, "test_minus_none": versus}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", default="runs/compare-yt8m-100-short")
    ap.add_argument("--paper", default="runs/compare-yt8m-paper-4k")
    ap.add_argument("--resamples", type=int, default=2000)
    args = ap.parse_args()
    out = {size: study(Path(getattr(args, size)), labels, args.resamples) for size, labels in SIZES.items()}
    for size, res in out.items():
        print(f"\n{size} size ({res['folder']}): pick on validation = {res.get('pick_on_validation')}")
        print(f"{'design':32} {'seeds':>5} {'valid GAP':>18} {'test GAP':>18} {'params':>12}  test - none [95% CI]")
        for lab, r in res["candidates"].items():
            sd = lambda v: f" ± {v:.4f}" if v is not None else ""  # noqa: E731
            vs = res["test_minus_none"].get(lab)
            vs_text = f"{vs['delta']:+.4f} [{vs['ci95'][0]:+.4f}, {vs['ci95'][1]:+.4f}] p={vs['p_value']:.3f}" if vs else ""
            print(f"{lab:32} {r['seeds']:>5} {r['valid_gap']:.4f}{sd(r['valid_sd']):>9} "
                  f"{r['test_gap']:.4f}{sd(r['test_sd']):>9} {r['parameters'] or 0:>12,}  {vs_text}")
    print(json.dumps({size: {"pick": res.get("pick_on_validation"),
                             "valid": {k: round(v["valid_gap"], 4) for k, v in res["candidates"].items()},
                             "test": {k: round(v["test_gap"], 4) for k, v in res["candidates"].items()}}
                      for size, res in out.items()}))


if __name__ == "__main__":
    main()
