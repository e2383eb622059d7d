"""Which verdicts of a finished comparison change from the old procedure to the new one, on the same runs.

    python bench/verdicts_old_vs_new.py COMPARE_DIR [--resamples 2000]

Old (until issue 24): hierarchical paired bootstrap (examples drawn once for all models, then each
model's seeds with replacement; ``stats/paired.py`` until its removal, replayed here by ``old_draws``
with the same random streams), percentile interval, p-value from
the inverted percentile interval, Holm within each metric, reference = the best unimodal model on
the **test** split's monitored metric. New: the report's procedure (``report.evidence.paired``:
seed-level Student t with the paired test-set variance, Holm within each metric, the preset's primary
metric, reference chosen on validation). Both are run against the old reference so that every row
pairs the same two models; the new default reference is printed too. Reads run folders only.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zlib

import numpy as np


def old_draws(models: dict, resamples: int, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """The old procedure's replicates ``{model: {metric: [B]}}``: on each shared example resample, the
    mean over the model's seeds drawn with replacement (its own stream per model, as the old
    ``stats/paired.py`` drew them), from the per-seed resampled metrics of ``model_scores``."""
    out = {}
    for name, per_metric in models.items():
        s = next(iter(per_metric.values())).seeds
        rng = np.random.default_rng([seed, 1, zlib.crc32(name.encode())])
        counts = np.stack([np.bincount(rng.integers(0, s, size=s), minlength=s) for _ in range(resamples)])
        out[name] = {m: (sc.replicates * counts).sum(1) / s for m, sc in per_metric.items()}
    return out


def old_compare(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """The old percentile interval and p-value (the inverted percentile interval, ``(k + 1)/(B + 1)``)."""
    d = (a - b)[np.isfinite(a - b)]
    if not len(d):
        return float("nan"), float("nan"), float("nan")
    lo, hi = np.percentile(d, [2.5, 97.5])
    p = 2 * min((np.sum(d <= 0) + 1) / (len(d) + 1), (np.sum(d >= 0) + 1) / (len(d) + 1))
    return float(lo), float(hi), float(min(1.0, p))


def old_rows(records, labels, split, monitor, resamples):
    """The old report's model-vs-reference rows: {(model, metric): (delta, lo, hi, p_adj, verdict)}."""
    from modalfuse.metrics import direction
    from modalfuse.report import evidence
    from modalfuse.report.runs import by_label
    from modalfuse.stats.verdicts import holm, model_scores, verdict

    groups = by_label(records, labels)
    uni = [lab for lab, g in groups.items() if len(g[0].modalities) == 1]
    sign = 1 if direction(monitor) == "max" else -1
    ref = max(uni, key=lambda lab: sign * np.mean([evidence.run_values(r, split).get(monitor, np.nan) for r in groups[lab]]))
    per_model = {lab: [evidence.run_metric_functions(r, split) for r in g] for lab, g in groups.items()}
    n = len(records[0].predictions[split]["ids"])
    models = model_scores(per_model, n, resamples=resamples, seed=0)
    draws = old_draws(models, resamples)
    out = {}
    for metric in models[ref]:
        mean = {m: models[m][metric].mean for m in models}
        pairs = [m for m in models if m != ref]
        order = sorted(models, key=lambda k: (-1 if direction(metric) == "max" else 1) * mean[k])
        adjacent = [(hi, lo) for hi, lo in zip(order, order[1:]) if ref not in (hi, lo)]
        stats = [(mean[a] - mean[b], *old_compare(draws[a][metric], draws[b][metric]))
                 for a, b in [(m, ref) for m in pairs] + adjacent]
        adj = holm([s[3] for s in stats])
        for m, s, pa in zip(pairs, stats, adj):
            out[m, metric] = (s[0], s[1], s[2], float(pa), verdict(metric, s[0], pa))
    return ref, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--resamples", type=int, default=2000)
    args = ap.parse_args(argv)
    from modalfuse.report import evidence
    from modalfuse.report.runs import collect, monitor_of, report_split

    records, info, _ = collect([args.folder])
    labels = [lab for lab in info["labels"] if any(r.label == lab for r in records)]
    split = report_split(records)
    monitor = monitor_of(records, split)
    ref, old = old_rows(records, labels, split, monitor, args.resamples)
    new = evidence.paired(records, labels, split, monitor, ref, primary=info.get("primary"), resamples=args.resamples)
    default_ref = evidence.reference_choice(records, labels, monitor)
    rows, changed = [], 0
    print(f"{args.folder}: {len(records)} runs, split {split}, old reference {ref} (best unimodal on test "
          f"`{monitor}`), new default reference {default_ref[0]} ({default_ref[1]}); primary `{new.primary}`")
    print(f"{'model':16} {'metric':10} {'old Δ [95 %]':30} {'old':18} {'new Δ [95 %]':30} {'new'}")
    for c in new.rows:
        if c.reference != ref or (c.model, c.metric) not in old:
            continue
        d, lo, hi, pa, v = old[c.model, c.metric]
        flag = " *" if v != c.verdict else ""
        changed += bool(flag)
        print(f"{c.model:16} {c.metric:10} {d:+.4f} [{lo:+.4f}, {hi:+.4f}]   {v:18} "
              f"{c.delta:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}]   {c.reading} ({c.role}){flag}")
        rows.append({"model": c.model, "metric": c.metric, "role": c.role, "old_verdict": v, "old_p_adjusted": pa,
                     "old_ci": [lo, hi], "new_verdict": c.verdict, "new_p_adjusted": c.p_adjusted,
                     "new_ci": [c.ci_low, c.ci_high], "mde": c.mde, "df": c.df})
    print(json.dumps({"folder": args.folder, "runs": len(records), "old_reference": ref,
                      "new_default_reference": default_ref[0], "primary": new.primary, "changed": changed,
                      "compared": len(rows), "loadavg": [round(x, 2) for x in os.getloadavg()], "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
