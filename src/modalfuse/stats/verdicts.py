"""Families of paired comparisons -> Holm-adjusted verdicts with their power (``comparisons.csv``).

Each metric's comparisons (every model against the reference, and each adjacent pair of the ranking)
form one Holm family. The **primary** metric's family carries the report's verdicts; every other
metric is **secondary**: Holm within its own family, no correction across metrics, labelled so.
A difference is ``difference.difference`` (seed-level t with the paired test-set variance); an
``indistinguishable`` comes with the minimum detectable effect of its test at the family's
Bonferroni level ``alpha / m`` (the level Holm's first step uses, so the MDE is never optimistic).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from ..metrics import direction
from .difference import Difference, Scores, block_scores, difference, weight_blocks
from .weighted import metric_functions

ALPHA = 0.05

RESAMPLES = 2000  # example resamples for the test-set variance (its Monte Carlo error counts B - 1 df)
COLUMNS = ("model", "reference", "metric", "role", "delta", "ci_low", "ci_high", "p_value", "p_adjusted", "verdict",
           "mde", "seeds_needed", "se", "df", "seeds", "examples", "kind", "note")


@dataclass
class Comparison:
    """One row of ``comparisons.csv``."""

    model: str
    reference: str
    metric: str
    role: str  # "primary" or "secondary"
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    verdict: str  # better / worse / indistinguishable
    mde: float  # minimum detectable effect at 80 % power, alpha / family size
    seeds_needed: int | None  # seeds per model that would detect the observed difference (None: unreachable)
    se: float
    df: float
    seeds: str  # "5/5": seeds of model / reference
    examples: int
    kind: str  # "reference" or "adjacent"
    note: str = ""

    @property
    def reading(self) -> str:
        """The verdict as a reader should take it: an ``indistinguishable`` carries its MDE."""
        return reading(self.verdict, self.mde, self.note)

    def row(self) -> dict[str, Any]:
        return asdict(self)


def reading(verdict: str, mde: float, note: str = "") -> str:
    """A verdict as a reader should take it: ``indistinguishable (could detect ≥ 0.021)``."""
    if verdict != "indistinguishable":
        return verdict
    parts = [note] if note else []
    if math.isfinite(mde):
        parts.append(f"could detect ≥ {mde:.3g}")
    return f"indistinguishable ({'; '.join(parts)})" if parts else verdict


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as given; NaN stays NaN).

    Args:
        p_values: ``[m]`` raw p-values of one family of tests.

    Returns:
        ``[m]`` adjusted p-values: the i-th smallest gets ``max_{j<=i} min(1, (m - j + 1) p_(j))``.
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ok) - rank) * p[i]))
        out[i] = running
    return out


def verdict(metric: str, delta: float, p_adjusted: float, alpha: float = ALPHA) -> str:
    """``better``/``worse`` in the metric's direction when ``p_adjusted < alpha``, else ``indistinguishable``."""
    if not math.isfinite(p_adjusted) or p_adjusted >= alpha or delta == 0:
        return "indistinguishable"
    gain = delta if direction(metric) == "max" else -delta
    return "better" if gain > 0 else "worse"


def ranking(models: dict[str, dict[str, Scores]], metric: str) -> list[str]:
    """Models from best to worst mean over seeds on ``metric``."""
    sign = -1 if direction(metric) == "max" else 1
    return sorted(models, key=lambda k: sign * models[k][metric].mean)


def _note(d: Difference, p_adjusted: float, alpha: float) -> str:
    if p_adjusted < alpha or not math.isfinite(d.df):
        return ""
    if not d.supported:
        return f"the seeds cannot support a verdict: {d.df:.1f} degrees of freedom"
    return ""


@dataclass(frozen=True)
class Judgement:
    """What a family makes of one difference: its interval, raw and Holm-adjusted p, verdict,
    minimum detectable effect, the seeds that would detect it, and a note."""

    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    verdict: str
    mde: float
    seeds_needed: int | None
    note: str


def judge(diffs: Sequence[Difference], metric: str, alpha: float = ALPHA) -> list[Judgement]:
    """One Holm family: each difference's ``1 - alpha`` interval, two-sided p, Holm-adjusted p, the
    verdict in ``metric``'s direction, and its MDE and seeds needed at the family's Bonferroni level
    ``alpha / m``. Comparison reports and robustness curves both judge their differences here."""
    p_raw = [d.p_value() for d in diffs]
    level = alpha / max(len(diffs), 1)
    out = []
    for d, p, pa in zip(diffs, p_raw, holm(p_raw)):
        lo, hi = d.interval(1 - alpha)
        out.append(Judgement(lo, hi, p, float(pa), verdict(metric, d.estimate, pa, alpha), d.mde(level),
                             d.seeds_needed(alpha=level), _note(d, float(pa), alpha)))
    return out


def family(models: dict[str, dict[str, Scores]], reference: str, metric: str, *, role: str, examples: int,
           alpha: float = ALPHA) -> list[Comparison]:
    """One metric's comparisons, Holm-adjusted together: each model against ``reference``, then each
    adjacent pair of the ranking not involving it (better model first)."""
    pairs = [(m, reference, "reference") for m in models if m != reference]
    order = ranking(models, metric)
    pairs += [(hi, lo, "adjacent") for hi, lo in zip(order, order[1:]) if reference not in (hi, lo)]
    diffs = [difference(models[x][metric], models[y][metric]) for x, y, _ in pairs]
    return [Comparison(x, y, metric, role, d.estimate, j.ci_low, j.ci_high, j.p_value, j.p_adjusted, j.verdict,
                       j.mde, j.seeds_needed, d.se, d.df, f"{d.seeds[0]}/{d.seeds[1]}", examples, kind, j.note)
            for (x, y, kind), d, j in zip(pairs, diffs, judge(diffs, metric, alpha))]


def comparisons(models: dict[str, dict[str, Scores]], reference: str, metrics: Sequence[str], primary: str, *,
                examples: int, alpha: float = ALPHA) -> list[Comparison]:
    """Every metric's family (``family``): ``primary`` first and labelled primary, the rest secondary.

    Args:
        models: ``{model: {metric: Scores}}`` on shared example resamples (``model_scores``).
        reference: the model every other is compared with.
        metrics: metrics to compare (those some model lacks are skipped).
        primary: the metric whose family carries the verdicts.
    """
    rows: list[Comparison] = []
    for metric in sorted(metrics, key=lambda m: m != primary):
        if all(metric in s for s in models.values()):
            rows += family(models, reference, metric, role="primary" if metric == primary else "secondary",
                           examples=examples, alpha=alpha)
    return rows


def model_scores(per_model: dict[str, list[dict[str, Any]]], n_examples: int, *, resamples: int = RESAMPLES,
                 seed: int = 0) -> dict[str, dict[str, Scores]]:
    """``{model: {metric: Scores}}``: every model's seeds on one shared draw of example resamples.

    Args:
        per_model: ``{model: [per-seed {metric: fn}]}`` (``weighted.metric_functions``), same examples.
        n_examples: the examples every function scores.
    """
    blocks = weight_blocks(n_examples, resamples, np.random.default_rng([seed, 0]))  # O(block x N) memory
    return block_scores(per_model, blocks, n_examples)


# ---------------------------------------------------------------------------------------------
# Predictions a user brings
# ---------------------------------------------------------------------------------------------

MULTICLASS_METRICS = ("accuracy", "f1_weighted", "f1_macro")
REGRESSION_METRICS = ("mae", "corr", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc5", "acc7", "acc3_band")
MULTILABEL_METRICS = ("gap", "hit_at_1", "perr", "f1_micro")


def _arrays(kind: str, pred: np.ndarray, labels: np.ndarray, where: str) -> dict[str, np.ndarray]:
    """One seed's predictions as ``metric_functions`` reads them; bad shapes are one-line errors."""
    from ..errors import UserError
    from .predictions import compact

    n = len(labels)
    if len(pred) != n:
        raise UserError(f"{where}: {len(pred)} predictions, expected {n} (one per label, in the labels' order)")
    ids = np.arange(n).astype(str)
    if kind == "regression":
        if pred.ndim != 1:
            raise UserError(f"{where}: expected [N] predicted values for a regression metric, got shape {pred.shape}")
        return compact(kind, {"scores": pred, "labels": labels, "ids": ids})
    if kind == "multilabel":
        if pred.shape != labels.shape:
            raise UserError(f"{where}: expected [N, C] scores shaped like the labels {labels.shape}, got {pred.shape}")
        return compact(kind, {"scores": pred, "labels": labels, "ids": ids})
    classes = int(max(labels.max(initial=0), pred.max(initial=0) if pred.ndim == 1 else pred.shape[1] - 1)) + 1
    if pred.ndim == 1:
        if not np.issubdtype(pred.dtype, np.integer):
            raise UserError(f"{where}: expected [N] class ids (integers) or [N, C] scores, got {pred.dtype} values")
        pred = np.eye(classes)[pred]
    elif pred.ndim != 2:
        raise UserError(f"{where}: expected [N] class ids or [N, C] scores, got shape {pred.shape}")
    return compact(kind, {"scores": pred, "labels": labels, "ids": ids})


def compare_predictions(predictions: dict[str, list[Any]], labels: Any, *, metric: str,
                        reference: str | None = None, alpha: float = ALPHA, seed: int = 0,
                        second_opinion: bool = False) -> list[dict[str, Any]]:
    """The report's paired comparisons on a user's own predictions, no training.

    Args:
        predictions: model name -> list of per-seed arrays, each in the example order of ``labels``:
            ``[N]`` class ids or ``[N, C]`` scores (classification), ``[N]`` values (regression:
            ``mae``, ``corr``, ``acc2_*``...), ``[N, C]`` scores (multilabel: ``gap``, ``hit_at_1``...).
        labels: ``[N]`` class ids or true values, or ``[N, C]`` multi-hot.
        metric: the metric compared (its direction comes from ``modalfuse.metrics.direction``).
        reference: the model every other is compared with (default: the first in ``predictions``).
        alpha: the family-wise error rate (Holm over the comparisons).
        seed: seeds the example resamples.
        second_opinion: add ``aso``, deepsig's almost-stochastic-order ``epsilon_min`` over the
            per-seed scores (needs the ``[stats]`` extra; about 10 s per comparison).

    Returns:
        The ``comparisons.csv`` rows as dicts (``model, reference, metric, delta, ci_low, ci_high,
        p_value, p_adjusted, verdict, mde`` and the other columns of ``COLUMNS``; ``aso`` with
        ``second_opinion``).
    """
    from ..errors import UserError

    y = np.asarray(labels)
    if metric not in (*MULTICLASS_METRICS, *REGRESSION_METRICS, *MULTILABEL_METRICS):
        raise UserError(f"metric {metric!r}: not a metric with an interval; known: "
                        f"{', '.join((*MULTICLASS_METRICS, *REGRESSION_METRICS, *MULTILABEL_METRICS))}")
    kind = "regression" if metric in REGRESSION_METRICS else "multilabel" if metric in MULTILABEL_METRICS else "multiclass"
    if not predictions:
        raise UserError("predictions: expected at least one model, got none")
    reference = next(iter(predictions)) if reference is None else reference
    if reference not in predictions:
        raise UserError(f"reference {reference!r}: not among the models {', '.join(predictions)}")
    per_model = {}
    for name, seeds in predictions.items():
        if not len(seeds):
            raise UserError(f"predictions[{name!r}]: expected a list of per-seed arrays, got an empty list")
        per_model[name] = [metric_functions(kind, _arrays(kind, np.asarray(p), y, f"predictions[{name!r}][{i}]"))
                           for i, p in enumerate(seeds)]
        if metric not in per_model[name][0]:
            raise UserError(f"metric {metric!r}: not a {kind} metric with an interval; "
                            f"known: {', '.join(per_model[name][0])}")
    models = model_scores(per_model, len(y), seed=seed)
    rows = [c.row() for c in family(models, reference, metric, role="primary", examples=len(y), alpha=alpha)]
    if second_opinion:
        aso = _aso_column(models, metric)
        for r in rows:
            r["aso"] = aso(r["model"], r["reference"])
    return rows


def _aso_column(models: dict[str, dict[str, Scores]], metric: str) -> Any:
    """deepsig's almost stochastic order (Dror et al. 2019; del Barrio et al. 2018) over per-seed
    scores, as a second opinion: ``epsilon_min`` < 0.5 means the model is almost stochastically
    better than the reference (in the metric's direction), 0 that it is stochastically better."""
    from ..errors import UserError

    try:
        from deepsig import aso
    except ImportError:
        raise UserError("second_opinion: needs deepsig (pip install 'modalfuse[stats]')") from None
    sign = 1 if direction(metric) == "max" else -1

    def one(a: str, b: str) -> float:
        x, y = sign * models[a][metric].per_seed, sign * models[b][metric].per_seed
        if len(x) < 2 or len(y) < 2:
            return math.nan
        return float(aso(x, y, seed=zlib.crc32(f"{a}/{b}".encode()) % (1 << 31), show_progress=False,
                         num_jobs=1))
    return one
