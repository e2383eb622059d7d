"""Intervals, areas under the curves, verdicts, and the files of a robustness folder.

Intervals and verdicts are the comparison report's (``stats.difference``, ``stats.verdicts``): one
draw of test-example resamples shared by every model and every point (the pairing); a point's 95 %
interval is ``stats.difference.difference`` of the model's scores alone (seed-level Student t: the
between-seed variance over the seed count plus the test-set part shared by its seeds, Welch-
Satterthwaite df), and a difference from the reference is ``difference(model, reference)``, judged
by ``stats.verdicts.judge`` (Holm, verdict, minimum detectable effect) exactly as a report's
comparisons are.

Area under the curve: the levels of a curve sit at equally spaced positions ``0 .. 1`` from clean to
most severe, and ``auc`` is the trapezoidal area of the metric over them (a mean of the metric
over the graded range, in the metric's units; for ``missing`` at 0, 0.25, .., 1 it is the area over
the missing fraction itself). ``degradation`` is how much of the clean score the curve loses on
average: ``clean - auc`` for a maximised metric, ``auc - clean`` for a minimised one (lower is more
graceful). Both are linear in the points, so each seed's AUC and degradation on each resample are
exact, and they are compared like any metric; Holm runs over all curves and models of one metric
and quantity.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import numpy as np

from ..metrics import direction
from ..stats.difference import Scores, difference
from ..stats.verdicts import ALPHA, RESAMPLES, judge, model_scores
from ..stats.weighted import metric_functions
from .corruptions import CORRUPTIONS
from .evaluate import RunResult

POINT_COLUMNS = ("model", "modality", "corruption", "level", "metric", "value", "ci_low", "ci_high", "seeds", "examples")
AUC_COLUMNS = ("model", "modality", "corruption", "metric", "clean", "auc", "auc_ci_low", "auc_ci_high",
               "degradation", "degradation_ci_low", "degradation_ci_high", "reference",
               "auc_delta", "auc_delta_ci_low", "auc_delta_ci_high", "auc_p_adjusted", "auc_verdict",
               "degradation_delta", "degradation_delta_ci_low", "degradation_delta_ci_high",
               "degradation_p_adjusted", "degradation_verdict", "auc_mde", "degradation_mde")
DEFAULT_RESAMPLES = RESAMPLES  # the report's: resamples only estimate the test-set variance (B - 1 df)


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
    Every key of a block is scored before the next block is drawn (``stats.difference.block_scores``),
    so the last block and its values are kept, the block recognised by identity; holding it keeps its
    memory from being reused by a later block (an address, shape and sum key served one block's values
    for another once blocks were freed: all blocks of a shape sum to the same count)."""
    last: list[Any] = [None, None]  # [block, fn(block)]

    def wrapped(W: np.ndarray) -> np.ndarray:
        if last[0] is not W:
            last[:] = [W, fn(W)]
        return last[1]

    return wrapped


def bootstrap(results: list[RunResult], metrics: list[str], *, resamples: int,
              seed: int) -> dict[str, dict[str, Scores]]:
    """``{model: {key: Scores}}`` over every point, AUC and degradation key: each seed's value on the
    whole test split and on every example resample (one draw shared by every model and key)."""
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
    return model_scores(per_model, len(results[0].ids), resamples=resamples, seed=seed)


def _interval(sc: Scores) -> tuple[float, float, float]:
    """The model's mean over seeds and its 95 % interval (``difference`` without a reference)."""
    lo, hi = difference(sc).interval(1 - ALPHA)
    return sc.mean, lo, hi


def point_rows(reps: dict[str, dict[str, Scores]], results: list[RunResult], metrics: list[str]) -> list[dict[str, Any]]:
    """``robustness.csv``: one row per model, curve, level and metric."""
    rows = []
    n = len(results[0].ids)
    for model, sc in reps.items():
        for (c, m), levels in curves_of(results).items():
            for level in levels:
                for metric in metrics:
                    key = _key(c, m, level, metric)
                    value, lo, hi = _interval(sc[key])
                    rows.append({"model": model, "modality": m, "corruption": c, "level": level_text(level),
                                 "metric": metric, "value": value, "ci_low": lo, "ci_high": hi,
                                 "seeds": sc[key].seeds, "examples": n})
    return rows


def auc_rows(reps: dict[str, dict[str, Scores]], results: list[RunResult], metrics: list[str], reference: str,
             alpha: float = ALPHA) -> list[dict[str, Any]]:
    """``robustness_auc.csv``: per model and curve, AUC and degradation with intervals, and each
    against ``reference`` (difference, interval, Holm-adjusted p, verdict, minimum detectable effect)."""
    rows, diffs = [], {}
    for (c, m), levels in curves_of(results).items():
        for metric in metrics:
            for model, sc in reps.items():
                auc, alo, ahi = _interval(sc[_key(c, m, "auc", metric)])
                deg, dlo, dhi = _interval(sc[_key(c, m, "degradation", metric)])
                row = {"model": model, "modality": m, "corruption": c, "metric": metric,
                       "clean": sc[_key(c, m, levels[0], metric)].mean, "auc": auc, "auc_ci_low": alo,
                       "auc_ci_high": ahi, "degradation": deg, "degradation_ci_low": dlo,
                       "degradation_ci_high": dhi, "reference": reference}
                rows.append(row)
                if model == reference:
                    row["auc_verdict"] = row["degradation_verdict"] = "reference"
                    continue
                for q in ("auc", "degradation"):
                    k = _key(c, m, q, metric)
                    diffs.setdefault((metric, q), []).append((row, difference(sc[k], reps[reference][k])))
    # one Holm family per metric and quantity (all curves, all models); less degradation is better
    # whatever the metric's direction
    for (metric, q), family in diffs.items():
        judged = judge([d for _, d in family], metric if q == "auc" else "loss", alpha)
        for (row, d), j in zip(family, judged):
            row.update({f"{q}_delta": d.estimate, f"{q}_delta_ci_low": j.ci_low, f"{q}_delta_ci_high": j.ci_high,
                        f"{q}_p_adjusted": j.p_adjusted, f"{q}_verdict": j.verdict, f"{q}_mde": j.mde})
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
