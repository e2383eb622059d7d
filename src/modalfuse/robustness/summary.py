"""Intervals, areas under the curves, verdicts, and the files of a robustness folder.

Intervals are ``stats.paired``'s hierarchical paired bootstrap: one draw of test examples shared by
every model and every point (the pairing), then each model's seeds drawn with replacement; a point's
95 % interval is the 2.5/97.5 percentiles of its replicates.

Area under the curve: the levels of a curve sit at equally spaced positions ``0 .. 1`` from clean to
most severe, and ``auc`` is the trapezoidal area of the metric over them (a mean of the metric
over the graded range, in the metric's units; for ``missing`` at 0, 0.25, .., 1 it is the area over
the missing fraction itself). ``degradation`` is how much of the clean score the curve loses on
average: ``clean - auc`` for a maximised metric, ``auc - clean`` for a minimised one (lower is more
graceful). Both are linear in the points, so each bootstrap replicate gives them exactly and the
verdicts against the reference use the same replicates: ``stats.paired.compare_pair`` (percentile
interval, two-sided p), Holm-adjusted over all curves and models of one metric and quantity.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import numpy as np

from ..metrics import direction
from ..stats.paired import ALPHA, Replicates, bootstrap_models, compare_pair, holm, verdict
from ..stats.weighted import metric_functions
from .corruptions import CORRUPTIONS
from .evaluate import Point, RunResult

POINT_COLUMNS = ("model", "modality", "corruption", "level", "metric", "value", "ci_low", "ci_high", "seeds", "examples")
AUC_COLUMNS = ("model", "modality", "corruption", "metric", "clean", "auc", "auc_ci_low", "auc_ci_high",
               "degradation", "degradation_ci_low", "degradation_ci_high", "reference",
               "auc_delta", "auc_delta_ci_low", "auc_delta_ci_high", "auc_p_adjusted", "auc_verdict",
               "degradation_delta", "degradation_delta_ci_low", "degradation_delta_ci_high",
               "degradation_p_adjusted", "degradation_verdict")


def auto_resamples(comparisons: int, alpha: float = ALPHA, floor: int = 1000) -> int:
    """Bootstrap replicates for ``comparisons`` Holm-corrected tests: the smallest p-value ``B``
    replicates can give is ``2 / (B + 1)``, and Holm multiplies the smallest by the family size, so
    with too few replicates no verdict can be significant however large the difference (1000
    replicates and 48 comparisons: at best p = 0.096). ``4 m / alpha`` leaves a factor of two."""
    return max(floor, math.ceil(4 * max(comparisons, 1) / alpha))


def level_text(level: float) -> str:
    return "inf" if math.isinf(level) else f"{level:g}"


def _key(c: str, m: str, level: Any, metric: str) -> str:
    return f"{c}|{m}|{level_text(level) if isinstance(level, float) else level}|{metric}"


def trapezoid_weights(n: int) -> np.ndarray:
    """Weights of the trapezoidal area over ``n`` equally spaced positions on ``[0, 1]`` (sum 1)."""
    if n == 1:
        return np.ones(1)
    w = np.full(n, 1.0 / (n - 1))
    w[[0, -1]] /= 2
    return w


def curves_of(results: list[RunResult]) -> dict[tuple[str, str], list[float]]:
    """``(corruption, modality) -> levels`` in severity order, as evaluated."""
    curves: dict[tuple[str, str], list[float]] = {}
    for p in results[0].points:
        curves.setdefault((p.corruption, p.modality), []).append(p.level)
    return curves


def choose_metrics(results: list[RunResult], wanted: list[str] | None) -> list[str]:
    """``wanted`` (each must be bootstrappable), or the runs' monitored metric."""
    from ..errors import UserError

    sample = next(iter(results[0].points.values()))
    available = list(metric_functions(results[0].kind, sample))
    if wanted:
        bad = [m for m in wanted if m not in available]
        if bad:
            raise UserError(f"--metric {bad[0]}: not a metric with intervals for a {results[0].kind} task; "
                            f"available: {', '.join(available)}")
        return list(wanted)
    monitor = results[0].monitor
    return [monitor if monitor in available else available[0]]


def _memo(fn: Any) -> Any:
    """``fn(W)`` computed once per weight block: AUC and degradation re-read every point of a curve,
    and intact points are shared by curves, so without it GAP replicates were computed 3-4 times.
    The key is the block's memory address, shape and sum (the blocks live as long as the bootstrap)."""
    cache: dict[tuple[int, tuple[int, ...], float], np.ndarray] = {}

    def wrapped(W: np.ndarray) -> np.ndarray:
        key = (W.__array_interface__["data"][0], W.shape, float(W.sum()))
        if key not in cache:
            cache[key] = fn(W)
        return cache[key]

    return wrapped


def bootstrap(results: list[RunResult], metrics: list[str], *, resamples: int, seed: int) -> dict[str, Replicates]:
    """``{model: Replicates}`` over every point, AUC and degradation key (one shared example draw)."""
    curves = curves_of(results)
    per_model: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        fns: dict[str, Any] = {}
        shared: dict[int, dict[str, Any]] = {}  # one set of functions per distinct prediction arrays
        for point, arrays in r.points.items():
            if id(arrays) not in shared:
                all_fns = metric_functions(r.kind, arrays)
                shared[id(arrays)] = {m: _memo(all_fns[m]) for m in metrics}
            for metric in metrics:
                fns[_key(point.corruption, point.modality, point.level, metric)] = shared[id(arrays)][metric]
        for (c, m), levels in curves.items():
            w = trapezoid_weights(len(levels))
            for metric in metrics:
                parts = [fns[_key(c, m, lv, metric)] for lv in levels]
                sign = 1.0 if direction(metric) == "max" else -1.0
                auc = lambda W, parts=parts, w=w: sum(wi * f(W) for wi, f in zip(w, parts))
                fns[_key(c, m, "auc", metric)] = auc
                fns[_key(c, m, "degradation", metric)] = (
                    lambda W, clean=parts[0], auc=auc, sign=sign: sign * (clean(W) - auc(W)))
        per_model.setdefault(r.label, []).append(fns)
    n = len(results[0].ids)
    return bootstrap_models(per_model, n, resamples=resamples, seed=seed)


def _interval(rep: Replicates, key: str) -> tuple[float, float, float]:
    v = rep.values[key]
    v = v[np.isfinite(v)]
    lo, hi = (np.percentile(v, [2.5, 97.5]) if len(v) else (math.nan, math.nan))
    return rep.observed[key], float(lo), float(hi)


def point_rows(reps: dict[str, Replicates], results: list[RunResult], metrics: list[str]) -> list[dict[str, Any]]:
    """``robustness.csv``: one row per model, curve, level and metric."""
    rows = []
    n = len(results[0].ids)
    for model, rep in reps.items():
        for (c, m), levels in curves_of(results).items():
            for level in levels:
                for metric in metrics:
                    value, lo, hi = _interval(rep, _key(c, m, level, metric))
                    rows.append({"model": model, "modality": m, "corruption": c, "level": level_text(level),
                                 "metric": metric, "value": value, "ci_low": lo, "ci_high": hi,
                                 "seeds": rep.seeds, "examples": n})
    return rows


def auc_rows(reps: dict[str, Replicates], results: list[RunResult], metrics: list[str], reference: str,
             alpha: float = ALPHA) -> list[dict[str, Any]]:
    """``robustness_auc.csv``: per model and curve, AUC and degradation with intervals, and each
    against ``reference`` (difference, interval, Holm-adjusted p, verdict)."""
    rows = []
    for (c, m), levels in curves_of(results).items():
        for metric in metrics:
            for model, rep in reps.items():
                clean = rep.observed[_key(c, m, levels[0], metric)]
                auc, alo, ahi = _interval(rep, _key(c, m, "auc", metric))
                deg, dlo, dhi = _interval(rep, _key(c, m, "degradation", metric))
                row = {"model": model, "modality": m, "corruption": c, "metric": metric, "clean": clean,
                       "auc": auc, "auc_ci_low": alo, "auc_ci_high": ahi, "degradation": deg,
                       "degradation_ci_low": dlo, "degradation_ci_high": dhi, "reference": reference}
                if model != reference:
                    for q in ("auc", "degradation"):
                        k = _key(c, m, q, metric)
                        delta, lo, hi, p = compare_pair(rep, reps[reference], k)
                        row.update({f"{q}_delta": delta, f"{q}_delta_ci_low": lo, f"{q}_delta_ci_high": hi, f"_{q}_p": p})
                rows.append(row)
    # Holm over every comparison of one metric and quantity (all curves, all models)
    for metric in metrics:
        for q in ("auc", "degradation"):
            family = [r for r in rows if r["metric"] == metric and f"_{q}_p" in r]
            for r, pa in zip(family, holm([r[f"_{q}_p"] for r in family])):
                r[f"{q}_p_adjusted"] = float(pa)
                if q == "auc":
                    r["auc_verdict"] = verdict(metric, r["auc_delta"], pa, alpha)
                else:  # less degradation is better, whatever the metric's direction
                    r["degradation_verdict"] = verdict("loss", r["degradation_delta"], pa, alpha)
    for r in rows:
        r.pop("_auc_p", None)
        r.pop("_degradation_p", None)
        if r["model"] == reference:
            r["auc_verdict"] = r["degradation_verdict"] = "reference"
    return rows


def csv_text(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def plot_curves(rows: list[dict[str, Any]], corruption: str, metric: str, path: Any) -> None:
    """One figure for one corruption: a panel per modality, the metric against the level, a line per
    model with its 95 % band (levels at equal spacing, clean on the left)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..training.runfolder import atomic_write

    sel = [r for r in rows if r["corruption"] == corruption and r["metric"] == metric]
    modalities = list(dict.fromkeys(r["modality"] for r in sel))
    models = list(dict.fromkeys(r["model"] for r in sel))
    fig, axes = plt.subplots(1, len(modalities), figsize=(3.6 * len(modalities) + 0.8, 3.4), squeeze=False, sharey=True)
    for ax, m in zip(axes[0], modalities):
        for i, model in enumerate(models):
            pts = [r for r in sel if r["modality"] == m and r["model"] == model]
            x = np.arange(len(pts))
            y = np.array([r["value"] for r in pts])
            ax.plot(x, y, marker="o", ms=3, label=model, color=f"C{i}")
            ax.fill_between(x, [r["ci_low"] for r in pts], [r["ci_high"] for r in pts], color=f"C{i}", alpha=0.15, lw=0)
            ax.set_xticks(x, [r["level"] for r in pts])
        ax.set_title(f"{corruption} on {m}")
        ax.set_xlabel(CORRUPTIONS[corruption].axis, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"test {metric} ({'higher' if direction(metric) == 'max' else 'lower'} is better)")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buf.getvalue())
