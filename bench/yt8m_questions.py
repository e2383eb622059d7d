"""The questions of issue 30 on a finished ``compare yt8m-100-short``: one Holm family of paired GAP
differences between named models, with the report's statistics (``stats.difference``: seed-level
Student t with the paired test-set variance, ``stats.verdicts.judge``).

    python bench/yt8m_questions.py runs/compare-yt8m-100-short [--pairs A:B ...] [--resamples 2000]

Default pairs: what the moving average of the weights buys for each model that has it (``X-ema``
against ``X``); Attend-Fusion (small) against rgb-only and fc-early, with and without the average;
the ensemble of the best model's seeds and the ensemble of the averaged fusions against the best
single model. Pairs naming a model the comparison lacks are skipped (and listed). Prints a markdown
table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from modalfuse.report.evidence import run_metric_functions
from modalfuse.report.runs import by_label, collect, report_split
from modalfuse.stats.difference import difference
from modalfuse.stats.verdicts import judge, model_scores

DEFAULT_PAIRS = [
    "fcrn-gated-ema:fcrn-gated", "fc-early-ema:fc-early", "rgb-only-ema:rgb-only",
    "attend-fusion-small-ema:attend-fusion-small",
    "attend-fusion-small:rgb-only", "attend-fusion-small:fc-early",
    "attend-fusion-small-ema:rgb-only-ema", "attend-fusion-small-ema:fc-early-ema",
    "fcrn-gated-ema-x3:fcrn-gated-ema", "fusions-ema:fcrn-gated-ema",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("comparison")
    ap.add_argument("--pairs", nargs="+", default=DEFAULT_PAIRS, help="MODEL:REFERENCE, one Holm family")
    ap.add_argument("--resamples", type=int, default=2000)
    args = ap.parse_args()
    runs, info, _ = collect([args.comparison])
    split = report_split(runs)
    groups = by_label(runs, list(dict.fromkeys(r.label for r in runs)))
    pairs = [tuple(p.split(":", 1)) for p in args.pairs]
    skipped = [f"{a}:{b}" for a, b in pairs if a not in groups or b not in groups]
    pairs = [(a, b) for a, b in pairs if a in groups and b in groups]
    needed = sorted({m for p in pairs for m in p})
    per_model = {m: [{"gap": run_metric_functions(r, split)["gap"]} for r in groups[m]] for m in needed}
    n = len(groups[needed[0]][0].predictions[split]["ids"])
    scores = model_scores(per_model, n, resamples=args.resamples)
    diffs = [difference(scores[a]["gap"], scores[b]["gap"]) for a, b in pairs]
    rows = []
    print(f"{split} split, {n} videos, {args.resamples} resamples; Holm over {len(pairs)} comparisons\n")
    print("| model | reference | seeds | GAP model | GAP reference | difference [95 %] | verdict |")
    print("|---|---|---|---:|---:|---|---|")
    for (a, b), d, j in zip(pairs, diffs, judge(diffs, "gap")):
        reading = j.verdict if j.verdict != "indistinguishable" else f"indistinguishable (could detect ≥ {j.mde:.4f})"
        reading += f"; {j.note}" if j.note else ""
        print(f"| {a} | {b} | {d.seeds[0]}/{d.seeds[1]} | {scores[a]['gap'].mean:.4f} | {scores[b]['gap'].mean:.4f} | "
              f"{d.estimate:+.4f} [{j.ci_low:+.4f}, {j.ci_high:+.4f}] | {reading} |")
        rows.append({"model": a, "reference": b, "delta": d.estimate, "ci_low": j.ci_low, "ci_high": j.ci_high,
                     "p_adjusted": j.p_adjusted, "verdict": j.verdict, "mde": j.mde, "df": d.df,
                     "seeds": list(d.seeds)})
    if skipped:
        print(f"\nskipped (model not in {Path(args.comparison).name}): {', '.join(skipped)}")
    print(json.dumps({"comparison": str(args.comparison), "split": split, "videos": n, "rows": rows,
                      "skipped": skipped}))


if __name__ == "__main__":
    main()
