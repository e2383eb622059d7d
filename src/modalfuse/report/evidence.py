"""What a reader needs to trust a comparison, from the runs' files: metrics recomputed from the
saved per-example predictions, paired comparisons with intervals (``modalfuse.stats``), the
majority-class / label-prior and chance baselines, class counts per split and warnings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UserError
from ..metrics import compute_metrics, direction
from ..stats import comparisons, metric_functions, model_scores
from ..stats.verdicts import ALPHA, RESAMPLES, Comparison
from ..stats.predictions import compact
from ..stats.weighted import NEUTRAL_BAND, band_classes, full_values
from .runs import Run, by_label
from .yt8m_baselines import multilabel_baselines

CHANCE_DRAWS = 50  # random predictors averaged for the chance row
VALID_GAP = 0.05  # validation this far above test (absolute, or relative for error metrics) is flagged
BAND_CLASSES = ("negative", "neutral", "positive")


def run_metric_functions(run: Run, split: str) -> dict[str, Any]:
    """A run's bootstrappable metrics on ``split``, with its own ``eval.top_k`` and ``eval.threshold``."""
    r = run.config.get("eval") or {}
    return metric_functions(run.kind, run.predictions[split], top_k=int(r.get("top_k", 20)),
                            threshold=float(r.get("threshold", 0.5)))


def has_predictions(runs: list[Run], split: str) -> bool:
    return all(r.predictions is not None and split in r.predictions for r in runs)


def run_values(run: Run, split: str) -> dict[str, float]:
    """A run's scalar metrics on ``split``: ``metrics.json``, with every metric the predictions file
    can recompute recomputed from it (and derived ones, such as ``acc3_band``, added)."""
    values = {k: float(v) for k, v in run.metrics.get(split, {}).items()
              if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if run.predictions is not None and split in run.predictions:
        values.update(full_values(run_metric_functions(run, split), len(run.predictions[split]["ids"])))
    return values


@dataclass
class Paired:
    """Result of the paired analysis of one report."""

    reference: str
    metrics: list[str]
    rows: list[Comparison]
    examples: int
    resamples: int
    primary: str = ""
    reference_how: str = ""  # how the reference was chosen
    notes: list[str] = field(default_factory=list)
    alpha: float = ALPHA  # the family-wise level of the verdicts (lower under --seeds auto: one share per look)


def check_pairing(runs: list[Run]) -> None:
    """Every run predicts the same examples in the same order, in every split its predictions hold;
    else one line naming the split, the two runs and the first differing example id."""
    first = next((r for r in runs if r.predictions), None)
    for r in runs:
        for split in sorted(set(first.predictions if first else ()) & set(r.predictions or ())):
            if "ids" not in first.predictions[split] or "ids" not in r.predictions[split]:
                continue  # the training split keeps labels only (for the prior), nothing is paired on it
            a, b = first.predictions[split]["ids"], r.predictions[split]["ids"]
            if len(a) == len(b) and np.array_equal(a, b):
                continue
            i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
            got = f"id '{b[i]}'" if i < len(b) else "no example (it has fewer)"
            want = f"id '{a[i]}'" if i < len(a) else "no example (it has fewer)"
            raise UserError(f"{r.folder}: {split} split, example {i} is {got} where {first.folder} has {want} "
                            f"({len(b)} and {len(a)} {split} examples); paired comparisons need the same examples "
                            f"in the same order in every run")


def reference_choice(runs: list[Run], labels: list[str], monitor: str) -> tuple[str, str]:
    """The best unimodal model on ``monitor`` on the **validation** split (mean over seeds), and how
    it was chosen; never chosen on test. Without validation scores: the first unimodal model."""
    groups = by_label(runs, labels)
    uni = [lab for lab, g in groups.items() if len(g[0].modalities) == 1]
    if not uni:
        return next(iter(groups)), "the first model (none is unimodal)"
    valid = {lab: [run_values(r, "valid").get(monitor, np.nan) for r in groups[lab]] for lab in uni}
    if not all(np.isfinite(v).all() for v in valid.values()):
        return uni[0], f"the first unimodal model (no validation `{monitor}` for every run)"
    sign = 1 if direction(monitor) == "max" else -1
    return max(uni, key=lambda lab: sign * float(np.mean(valid[lab]))), f"the best unimodal model on validation `{monitor}`"


def pick_reference(runs: list[Run], labels: list[str], monitor: str, named: str | None = None,
                   declared: str | None = None) -> tuple[str, str]:
    """The reference and how it was chosen: ``--reference``, else the comparison preset's
    ``reference:`` (when that model is in the report), else ``reference_choice`` on validation."""
    if named:
        return named, "named by --reference"
    if declared and declared in by_label(runs, labels):
        return declared, "declared by the comparison preset (`reference:`)"
    return reference_choice(runs, labels, monitor)


def paired(runs: list[Run], labels: list[str], split: str, monitor: str, reference: str | None = None, *,
           primary: str | None = None, resamples: int = RESAMPLES, seed: int = 0, alpha: float = ALPHA,
           declared_reference: str | None = None) -> Paired | None:
    """Every model against the reference and adjacent pairs, on every metric with an interval
    (``None`` when some run has no ``predictions.npz``); ``primary`` (default ``monitor``) carries
    the verdicts, the other metrics are secondary."""
    groups = by_label(runs, labels)
    if reference is not None and reference not in groups:
        raise UserError(f"--reference {reference}: no such model in this report; models: {', '.join(groups)}")
    if not has_predictions(runs, split):
        return None
    check_pairing(runs)  # before any resampling
    ref, how = pick_reference(runs, labels, monitor, reference, declared_reference)
    per_model = {lab: [run_metric_functions(r, split) for r in g] for lab, g in groups.items()}
    n = len(runs[0].predictions[split]["ids"])
    metrics = list(per_model[ref][0])
    notes = []
    if primary and primary not in metrics:
        notes.append(f"The declared primary metric `{primary}` has no interval for these runs; "
                     f"`{monitor if monitor in metrics else metrics[0]}` carries the verdicts instead.")
    primary = primary if primary in metrics else monitor if monitor in metrics else metrics[0]
    rows = comparisons(model_scores(per_model, n, resamples=resamples, seed=seed), ref, metrics, primary, examples=n,
                       alpha=alpha)
    single = [lab for lab, g in groups.items() if len(g) == 1]
    if single:
        which = "" if len(single) == len(groups) else f" ({', '.join(single)})"
        notes.append(f"Models with one seed{which}: their intervals cover test-set sampling only, not training noise.")
    return Paired(ref, metrics, rows, n, resamples, primary, how, notes, alpha)


# ---------------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------------

def _prior_labels(runs: list[Run]) -> tuple[dict[str, np.ndarray] | None, str]:
    """Labels the prior is estimated on: the training split's when saved, else validation's."""
    for r in runs:
        if r.predictions and "train" in r.predictions:
            return r.predictions["train"], "train"
    for r in runs:
        if r.predictions and "valid" in r.predictions:
            return r.predictions["valid"], "valid"
    return None, ""


def _metrics_of(kind: str, scores: np.ndarray, arrays: dict[str, np.ndarray], labels: np.ndarray, names: list[str],
                run: Run) -> dict[str, float]:
    pred = {"scores": scores, "labels": labels, "ids": arrays["ids"]}
    got: dict[str, Any] = dict(compute_metrics(kind, scores, labels, num_classes=1 if kind == "regression" else scores.shape[1]))
    eval_cfg = run.config.get("eval") or {}
    fns = metric_functions(kind, compact(kind, pred, top_k=int(eval_cfg.get("top_k", 20))), top_k=int(eval_cfg.get("top_k", 20)))
    # The official metrics first (their tie-breaking matters for constant predictors); the
    # resampling functions only add what compute_metrics lacks (acc3_band).
    got.update({k: v for k, v in full_values(fns, len(labels)).items() if k not in got})
    return {k: float(got[k]) for k in names if k in got and isinstance(got[k], (int, float, np.floating))}


def _best_constant(prior: dict[str, np.ndarray], source: str, arrays: dict[str, np.ndarray], names: list[str],
                   run: Run) -> dict[str, Any]:
    """Regression: per metric, the best score any constant reaches on ``arrays`` (the reported
    split), the constant chosen there: the floor a model must clear to have learned more than a
    constant (scikit-learn's DummyRegressor/DummyClassifier, with the strategy that suits each
    metric). Candidates: the median of the ``source`` labels and of the split's, and the class
    centres -3..3 of Acc-7 (which include the signs of Acc-2 and the classes of Acc-5). One
    constant for every metric (the median) put Acc-2 non0 below chance."""
    y = arrays["labels"].astype(np.float64)
    medians = {"the median training score" if source == "train" else f"the median {source} score":
               float(np.median(prior["labels"])), "the split's median score": float(np.median(y))}
    candidates = {**{float(v): "" for v in range(-3, 4)}, **{v: name for name, v in medians.items()}}
    scored = {v: _metrics_of("regression", np.full(len(y), v), arrays, y, names, run) for v in candidates}
    row: dict[str, Any] = {}
    chosen: dict[float, list[str]] = {}
    for m in names:
        options = [(got[m], v) for v, got in scored.items() if m in got and math.isfinite(got[m])]
        if not options:  # a constant has no correlation: corr stays undefined (shown as —)
            continue
        value, best = (max if direction(m) == "max" else min)(options, key=lambda sv: sv[0])
        row[m] = value
        chosen.setdefault(best, []).append(m)
    text = "; ".join(f"{v:+.2f}{f' ({candidates[v]})' if candidates[v] else ''} for {', '.join(ms)}"
                     for v, ms in chosen.items())
    return {"model": "best constant",
            "note": f"per metric, the best any constant scores on this split (chosen on it, so no constant "
                    f"does better): {text}", **row}


def _multilabel_baselines(arrays: dict[str, np.ndarray], prior: dict[str, np.ndarray], source: str,
                          run: Run, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Label prior and chance for YouTube-8M, from each video's top entries (``yt8m_baselines``)."""
    c = int(arrays["num_classes"])
    freq = (np.bincount(prior["label_index"], minlength=c) / max(len(prior["label_ptr"]) - 1, 1)).astype(np.float32)
    eval_cfg = run.config.get("eval") or {}
    return multilabel_baselines(arrays, freq, source, int(eval_cfg.get("top_k", 20)), float(eval_cfg.get("threshold", 0.5)), rng)


def baselines(runs: list[Run], split: str, names: list[str]) -> list[dict[str, Any]]:
    """Rows ``{"model": name, "note": how, metric: value}`` for the label-prior / majority predictor and
    chance, on ``split`` (empty without predictions files)."""
    if not has_predictions(runs, split):
        return []
    prior, source = _prior_labels(runs)
    run = runs[0]
    arrays = run.predictions[split]
    kind, rng = run.kind, np.random.default_rng(0)
    rows = []
    if kind == "multiclass":
        k = arrays["scores"].shape[1]
        y = arrays["labels"]
        counts = np.bincount(prior["labels"], minlength=k)
        major = int(counts.argmax())
        scores = np.tile(np.eye(k)[major], (len(y), 1))
        names_ = run.data["task"].get("class_names") or [str(c) for c in range(k)]
        rows.append({"model": "majority class", "note": f"always '{names_[major]}', the most frequent {source} class",
                     **_metrics_of(kind, scores, arrays, y, names, run)})
        draws = [_metrics_of(kind, np.eye(k)[rng.integers(0, k, len(y))], arrays, y, names, run) for _ in range(CHANCE_DRAWS)]
        rows.append({"model": "chance", "note": f"uniformly random class, mean of {CHANCE_DRAWS} draws",
                     **{m: float(np.mean([d[m] for d in draws])) for m in draws[0]}})
    elif kind == "regression":
        y = arrays["labels"].astype(np.float64)
        rows.append(_best_constant(prior, source, arrays, names, run))
        pool = prior["labels"].astype(np.float64)
        draws = [_metrics_of(kind, rng.choice(pool, len(y)), arrays, y, names, run) for _ in range(CHANCE_DRAWS)]
        rows.append({"model": "chance", "note": f"scores drawn from the {source} score distribution, mean of {CHANCE_DRAWS} draws",
                     **{m: float(np.nanmean([d[m] for d in draws])) for m in draws[0]}})
    else:
        rows += [{k: v for k, v in row.items() if k in ("model", "note") or k in names}
                 for row in _multilabel_baselines(arrays, prior, source, run, rng)]
    return rows


# ---------------------------------------------------------------------------------------------
# Class counts and warnings
# ---------------------------------------------------------------------------------------------

def class_names(run: Run) -> list[str]:
    t = run.data["task"]
    if t["kind"] == "regression":
        return list(BAND_CLASSES)
    return list(t.get("class_names") or [str(c) for c in range(t["num_classes"])])


def _classes(run: Run, arrays: dict[str, np.ndarray], truth: bool = True) -> np.ndarray | None:
    """Class per example (multiclass; the neutral-band classes of regression), or None (multilabel)."""
    if run.kind == "multiclass":
        return arrays["labels"] if truth else arrays["scores"].argmax(1)
    if run.kind == "regression":
        return band_classes(arrays["labels"] if truth else arrays["scores"])
    return None


def class_counts(runs: list[Run]) -> dict[str, list[int]] | None:
    """``{split: [count per class]}`` from the first run's predictions file (train when saved)."""
    run = next((r for r in runs if r.predictions), None)
    if run is None or run.kind == "multilabel":
        return None
    k = len(class_names(run))
    return {s: np.bincount(_classes(run, run.predictions[s]), minlength=k).tolist()
            for s in ("train", "valid", "test") if s in run.predictions}


def warnings(runs: list[Run], labels: list[str], split: str, monitor: str) -> list[str]:
    """One line per problem: a class with test examples a model never predicts; validation far above test."""
    lines = []
    groups = by_label(runs, labels)
    if has_predictions(runs, split) and runs[0].kind != "multilabel":
        names = class_names(runs[0])
        truth = _classes(runs[0], runs[0].predictions[split])
        present = np.bincount(truth, minlength=len(names))
        what = "" if runs[0].kind == "multiclass" else f" (3 classes from the predicted score, neutral |score| <= {NEUTRAL_BAND})"
        for lab, g in groups.items():
            for c, name in enumerate(names):
                never = [r.seed for r in g if present[c] and not np.any(_classes(r, r.predictions[split], truth=False) == c)]
                if never:
                    lines.append(f"`{lab}` never predicts class '{name}'{what}, which has {present[c]} {split} examples "
                                 f"({len(never)} of {len(g)} seeds).")
    if split == "test":
        far, selecting = [], []
        for lab, g in groups.items():
            v = [r.metrics.get("valid", {}).get(monitor) for r in g]
            t = [r.metrics.get("test", {}).get(monitor) for r in g]
            if any(x is None for x in v + t):
                continue
            v_mean, t_mean = float(np.mean(v)), float(np.mean(t))
            gap = v_mean - t_mean if direction(monitor) == "max" else (t_mean - v_mean) / max(abs(t_mean), 1e-12)
            if gap > VALID_GAP:
                far.append(f"{lab} (valid {v_mean:.3f}, test {t_mean:.3f})")
                if g[0].config["train"].get("select", "best") != "last":
                    selecting.append(lab)
        if far:
            lines.append(f"Validation `{monitor}` sits far above test for {len(far)} of {len(groups)} models: "
                         f"{', '.join(far)}. Validation cannot select epochs or hyperparameters for them; "
                         + (f"yet {', '.join(selecting)} kept the checkpoint validation chose (train.select: best)."
                            if selecting else "they keep the last epoch (train.select: last)."))
    return lines
