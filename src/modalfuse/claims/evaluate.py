"""Claims against a comparison: which dataset the runs are on, which model and metric each claim maps
to, the report's resamples (same draws), the tests in the report's Holm family, the verdicts.

The family of a metric is the report's paired comparisons of that metric (every model against the
reference and adjacent pairs, ``stats.comparisons``) together with one entry per claim tested on it:
the claims' p-values are Holm-adjusted over all of them. The report's own comparison verdicts keep
their adjustment over the comparisons alone (the claims only make the claims' own verdicts more
conservative).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..metrics import direction
from ..report import evidence
from ..report.runs import Run, by_label, collect, monitor_of, report_split
from ..stats import comparisons, holm, metric_functions, model_scores
from ..stats.difference import Scores
from ..stats.verdicts import ALPHA, RESAMPLES
from . import estimate
from .schema import UNIT_SCALE, Claim, ClaimsFile, MetricMap
from .verdicts import Outcome, claim_tests, decide, decide_exact

EXACT = ("parameters",)  # run-level quantities without sampling noise: compared, not tested


@dataclass
class ClaimRow:
    """One claim's verdict against one comparison (``claims.csv``: the first eleven fields first)."""

    claim: str
    kind: str
    dataset: str  # the claim's
    metric: str  # the claim's metric (the paper's name)
    published: float | None
    reproduced: float | None  # value: the model's score; otherwise a - b (claim units)
    ci_low: float | None
    ci_high: float | None
    margin: float | None
    verdict: str
    reason: str
    comparison: str = ""
    tested_on: str = ""  # the comparison's dataset (as named in the claims file)
    measured_as: str = ""  # the runs' metric
    models: str = ""  # "a - b" as comparison labels
    unit: str = ""
    level: float | None = None  # the interval's level
    margin_by: str = ""
    p_adjusted: float | None = None  # the claim's Holm-adjusted p-value (its entry in the metric's family)
    source: str = ""
    notes: str = ""  # what qualifies the verdict (nearest data, another metric definition or protocol)


def _lookup(config: dict[str, Any], key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def match_dataset(claims: ClaimsFile, config: dict[str, Any]) -> str | None:
    """The claims file's dataset the runs' resolved config matches (first match), or None."""
    for name, d in claims.datasets.items():
        if all(str(_lookup(config, k)) in ([v] if isinstance(v, str) else v) for k, v in d.match.items()):
            return name
    return None


def _metric_map(claims: ClaimsFile, dataset: str, metric: str) -> MetricMap | None:
    m = claims.datasets[dataset].metrics.get(metric)
    return MetricMap(metric=m) if isinstance(m, str) else m


@dataclass
class _Check:
    """Whether a claim can be tested on a comparison: ``blocked`` (no numbers at all), ``not_comparable``
    (numbers shown, no verdict: a value on other data, metric definition or protocol) and ``notes``
    that qualify a verdict."""

    blocked: str = ""
    not_comparable: str = ""
    notes: tuple[str, ...] = ()


def _check(claims: ClaimsFile, c: Claim, dataset: str | None, labels: list[str], measured: MetricMap | None,
           data_name: str) -> _Check:
    if dataset is None:
        return _Check(f"dataset (the runs' data.name '{data_name}' is none of this file's datasets: "
                      f"{', '.join(claims.datasets)})")
    missing = [f"{m} (label '{claims.models[m].label}')" for m in c.models() if claims.models[m].label not in labels]
    if missing:
        return _Check(f"model {', '.join(missing)} is not in this comparison")
    if measured is None:
        return _Check(f"metric (no measure of {c.metric} on {dataset} in this claims file)")
    value = c.kind == "value"
    notes, why = [], ""
    if dataset != c.dataset:
        if c.dataset not in claims.datasets[dataset].nearest_to:
            return _Check(f"dataset (the claim is on {c.dataset}, this comparison on {dataset})")
        if value:
            why = why or f"dataset (a number on {c.dataset}; this comparison is on {dataset})"
        else:
            notes.append(f"tested on {dataset} as the nearest data (the claim is on {c.dataset})")
    if not measured.same_definition:
        if value:
            why = why or f"metric definition ({c.metric} measured as {measured.metric}: {measured.note})"
        else:
            notes.append(f"{c.metric} measured as {measured.metric}: {measured.note}")
    protocol = claims.datasets[dataset].protocol
    if protocol:
        if value:
            why = why or f"protocol ({protocol})"
        else:
            notes.append(f"protocol differs: {protocol}")
    if measured.metric in EXACT and not value:
        return _Check(f"metric ({measured.metric} is exact: only value claims use it)")
    return _Check("", why, tuple(notes))


def _exact(groups: dict[str, list[Run]], label: str, metric: str) -> float:
    if metric == "parameters":
        return float(np.mean([r.data.get("parameters", np.nan) for r in groups[label]]))
    raise ValueError(metric)


def _gain(c: Claim, claims: ClaimsFile, models: dict[str, dict[str, Scores]], run_metric: str, scale: float
          ) -> estimate.StudentEstimate:
    """A value claim's score, ``a - b`` for equivalence/difference, the gain of ``a`` otherwise (claim units)."""
    label = {m: claims.models[m].label for m in c.models()}
    if c.kind == "value":
        return estimate.score(models, label[c.model], run_metric).scaled(scale)
    d = estimate.difference(models, label[c.a], label[c.b], run_metric).scaled(scale)
    turn = 1.0 if c.kind in ("equivalence", "difference") or direction(run_metric) == "max" else -1.0
    return d.scaled(turn)


def _row(c: Claim, claims: ClaimsFile, comparison: str, dataset: str | None, measured: MetricMap | None) -> ClaimRow:
    unit = claims.metrics[c.metric].unit
    names = " - ".join(claims.models[m].label for m in c.models())
    return ClaimRow(c.id, c.kind, c.dataset, c.metric, c.published, None, None, None, c.margin, "", "", comparison,
                    dataset or "", measured.metric if measured else "", names, unit, None, c.margin_by or "", "",
                    c.source)


def _fill(row: ClaimRow, out: Outcome, value: float, check: _Check, adjusted: list[float] | None) -> None:
    row.reproduced, (row.ci_low, row.ci_high), row.level = value, out.interval, out.level
    row.p_adjusted = min(adjusted) if adjusted else None
    if check.not_comparable:  # a number that cannot be compared: shown, untested, with the reason
        lo, hi = out.interval
        shown = (f"{value:.4g}, {100 * out.level:.0f} % interval [{lo:.4g}, {hi:.4g}]" if lo != hi
                 else f"{value:,.0f}" if row.unit == "count" else f"{value:.4g}")
        row.verdict, row.reason = "not comparable", f"{check.not_comparable}; reproduced {shown}"
    else:
        row.notes = "; ".join(check.notes)
        row.verdict, row.reason = out.verdict, "; ".join([*check.notes, out.reason])


def evaluate(claims: ClaimsFile, compare_dir: str, *, reference: str | None = None,
             resamples: int = RESAMPLES, seed: int = 0) -> list[ClaimRow]:
    """Every claim of ``claims`` against one comparison folder (or the report's run folders)."""
    runs, info, _ = collect([compare_dir])
    groups = by_label(runs, list(dict.fromkeys([*info.get("labels", []), *(r.label for r in runs)])))
    split = report_split(runs)
    if not reference and info.get("reference") in groups:  # the comparison preset's declared reference
        reference = info["reference"]
    dataset = match_dataset(claims, runs[0].config)
    comparison = str(info.get("name") or Path(compare_dir).name)
    data_name = str(runs[0].config.get("data", {}).get("name"))
    rows, pending = [], []
    for c in claims.claims:
        measured = _metric_map(claims, dataset, c.metric) if dataset else None
        row = _row(c, claims, comparison, dataset, measured)
        rows.append(row)
        check = _check(claims, c, dataset, list(groups), measured, data_name)
        if check.blocked:
            row.verdict, row.reason = "not comparable", check.blocked
        else:
            pending.append((row, c, measured.metric, check))  # type: ignore[union-attr]
    needed = {m for _, _, m, _ in pending if m not in EXACT}
    models = _bootstrap(runs, groups, split, needed, resamples, seed) if needed else {}
    for row, c, metric, check in pending:
        if metric in EXACT:
            value = _exact(groups, claims.models[c.model].label, metric) * UNIT_SCALE[claims.metrics[c.metric].unit]
            _fill(row, decide_exact(value, c.published, c.tolerance), value, check, None)
        elif not models or metric not in next(iter(models.values())):
            row.verdict, row.reason = "not comparable", f"metric ({metric} has no interval: no per-example predictions for it)"
    _decide_all(claims, [p for p in pending if p[2] not in EXACT and models and p[2] in next(iter(models.values()))],
                models, runs, list(groups), split, reference)
    return rows


def _bootstrap(runs: list[Run], groups: dict[str, list[Run]], split: str, needed: set[str], resamples: int,
               seed: int) -> dict[str, dict[str, Scores]]:
    """The report's bootstrap (same seed and draws), restricted to the metrics the claims read."""
    if not evidence.has_predictions(runs, split):
        return {}
    per_model = {}
    for lab, g in groups.items():
        fns = []
        for r in g:
            e = r.config.get("eval") or {}
            all_fns = metric_functions(r.kind, r.predictions[split], top_k=int(e.get("top_k", 20)),
                                       threshold=float(e.get("threshold", 0.5)))
            fns.append({m: f for m, f in all_fns.items() if m in needed})
        per_model[lab] = fns
    return model_scores(per_model, len(runs[0].predictions[split]["ids"]), resamples=resamples, seed=seed)


def _decide_all(claims: ClaimsFile, pending: list[tuple[ClaimRow, Claim, str, _Check]],
                models: dict[str, dict[str, Scores]], runs: list[Run], labels: list[str], split: str,
                reference: str | None) -> None:
    """Tests, the Holm family per metric (the report's comparisons plus the claims' tests), verdicts.
    A claim that is not comparable is not tested: its tests stay out of the family."""
    family: dict[str, list[float]] = {}
    todo = []
    for row, c, metric, check in pending:
        gain = _gain(c, claims, models, metric, UNIT_SCALE[claims.metrics[c.metric].unit])
        centre = (c.published or 0.0) if c.kind in ("value", "difference") else 0.0
        ts = claim_tests(c.kind, gain, centre=centre, margin=c.margin, tolerance=c.tolerance)
        at = None
        if not check.not_comparable:  # one entry per claim: its tests' nulls are complementary (see verdicts)
            at = len(family.setdefault(metric, []))
            family[metric].append(min(t.p_value for t in ts))
        todo.append((row, c, gain, centre, ts, metric, check, at))
    adjusted = _holm_with_report(family, models, runs, labels, split, reference)
    constant = _constant_baseline(runs, split, {t[5] for t in todo if t[1].kind in ("equivalence", "non-inferiority")})
    for row, c, gain, centre, ts, metric, check, at in todo:
        raw = [t.p_value for t in ts]
        adj = raw if at is None else [float(adjusted[metric][at]) if p == min(raw) else 1.0 for p in raw]
        names = (claims.models[c.a].label, claims.models[c.b].label) if c.kind != "value" else ("", "")
        out = decide(c.kind, gain, adj, centre=centre, margin=c.margin, tolerance=c.tolerance, alpha=ALPHA,
                     names=names)  # type: ignore[arg-type]
        _fill(row, out, gain.value, check, adj if at is not None else None)
        if metric in constant and c.kind in ("equivalence", "non-inferiority"):
            row.reason += _vacuous(c, claims, models, metric, constant[metric])


def _constant_baseline(runs: list[Run], split: str, metrics: set[str]) -> dict[str, tuple[str, float]]:
    """The report's first baseline row (label prior, majority class or best constant) per metric."""
    if not metrics:
        return {}
    rows = evidence.baselines(runs, split, sorted(metrics))
    return {m: (rows[0]["model"], float(rows[0][m])) for m in metrics if rows and m in rows[0]}


def _vacuous(c: Claim, claims: ClaimsFile, models: dict[str, dict[str, Scores]], metric: str,
             baseline: tuple[str, float]) -> str:
    """A warning when both models score within the margin of a constant predictor: two models that are
    no better than a constant are "equivalent" without saying anything about the claim."""
    scale = UNIT_SCALE[claims.metrics[c.metric].unit]
    name, value = baseline
    a, b = (models[claims.models[m].label][metric].mean for m in (c.a, c.b))
    if max(abs(a - value), abs(b - value)) * scale > (c.margin or 0.0):
        return ""
    return (f"; warning: both models score within the margin of the {name} baseline ({value * scale:.3g}): "
            f"{a * scale:.3g} and {b * scale:.3g}, so the verdict says nothing about models that work")


def _holm_with_report(family: dict[str, list[float]], models: dict[str, dict[str, Scores]], runs: list[Run],
                      labels: list[str], split: str, reference: str | None) -> dict[str, np.ndarray]:
    """Per metric: the claims' p-values Holm-adjusted together with the report's comparisons of it."""
    if not family:
        return {}
    ref = reference or evidence.reference_choice(runs, labels, monitor_of(runs, split))[0]
    n = len(runs[0].predictions[split]["ids"])
    out = {}
    for metric, ps in family.items():
        report_ps = [r.p_value for r in comparisons(models, ref, [metric], metric, examples=n)] if ref in models else []
        out[metric] = holm([*ps, *report_ps])[: len(ps)]
    return out
