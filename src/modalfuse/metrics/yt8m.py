"""YouTube-8M metrics, defined exactly as the official starter code defines them (``eval_util.py``,
``average_precision_calculator.py``, ``mean_average_precision_calculator.py``), vectorised.

All functions take ``scores`` (float ``[N, C]``, e.g. sigmoid probabilities) and ``labels`` (0/1
``[N, C]``) as numpy arrays.

- GAP@k: each video's top-k scores (``argpartition``, as the official code) are pooled into one list
  and ranked; ``AP = sum over ranked positives of precision@rank / (number of positives in labels)``,
  where the denominator counts *all* positives, also those outside any top-k.
- mAP: the same per class, over the entries of that class in the videos' top-k lists; classes without a
  positive label are dropped, a class with positives that never reaches a top-k has AP 0.
- Hit@1: the fraction of videos whose top score is a true label (first maximum on ties).
- PERR: per video with L labels, the precision of its top-L scores (only scores > 0 count); a video
  without labels counts as 0, as in the official code.

Ties: the official AP shuffles its list with ``random.seed(0)`` before a stable sort, so tied scores
with different labels are ordered by that shuffle. Lists without such mixed ties do not depend on the
order and take the vectorised path; lists with them replay the official heap + shuffle exactly.
"""

from __future__ import annotations

import heapq
import random
from typing import Any

import numpy as np

from ..registry import METRICS

_CHUNK_ROWS = 2048  # argpartition returns int64 [rows, C]; chunks keep 100k x 3862 inputs in ~60 MB


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must both be [N, C]")
    return scores, labels


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's top-k scores, int64 ``[N, k]`` (official ``top_k_triplets``)."""
    n, c = scores.shape
    k = min(k, c)
    out = np.empty((n, k), np.int64)
    for a in range(0, n, _CHUNK_ROWS):
        out[a : a + _CHUNK_ROWS] = np.argpartition(scores[a : a + _CHUNK_ROWS], -k, axis=1)[:, -k:]
    return out


def _official_ap(preds: np.ndarray, acts: np.ndarray, num_positives: float) -> float:
    """The official ``AveragePrecisionCalculator`` (top_n=None): accumulate into its heap, then
    ``ap_at_n``: ``random.seed(0)`` shuffle, stable descending sort. Only used for lists with tied
    scores of different labels, where the result depends on that order."""
    heap: list[tuple[float, float]] = []
    for item in zip(preds.tolist(), acts.tolist()):
        heapq.heappush(heap, item)
    if num_positives == 0 or not heap:
        return 0.0
    p = np.array([x[0] for x in heap])
    a = np.array([x[1] for x in heap])
    random.seed(0)
    shuffle = random.sample(range(len(p)), len(p))
    p, a = p[shuffle], a[shuffle]
    order = np.argsort(-p, kind="stable")
    hits = a[order] > 0
    ranks = np.flatnonzero(hits) + 1
    return float((np.arange(1, len(ranks) + 1) / ranks).sum() / num_positives)


def _has_mixed_ties(sorted_preds: np.ndarray, sorted_hits: np.ndarray, group: np.ndarray | None = None) -> np.ndarray:
    """Per run of equal scores (within ``group``) in a sorted list: does it hold positives and negatives?

    Returns a bool per element, True where the element's tie run is mixed."""
    n = len(sorted_preds)
    if n == 0:
        return np.zeros(0, bool)
    new_run = np.ones(n, bool)
    new_run[1:] = sorted_preds[1:] != sorted_preds[:-1]
    if group is not None:
        new_run[1:] |= group[1:] != group[:-1]
    run = np.cumsum(new_run) - 1
    pos = np.bincount(run, weights=sorted_hits)
    size = np.bincount(run)
    mixed = (pos > 0) & (pos < size)
    return mixed[run]


def gap(scores: np.ndarray, labels: np.ndarray, top_k: int = 20, *, _idx: np.ndarray | None = None) -> float:
    """Global average precision over each video's top-k scores (official ``calculate_gap``).

    Args:
        scores: float ``[N, C]``.
        labels: 0/1 ``[N, C]``.
        top_k: scores kept per video.

    Returns:
        GAP in [0, 1]; 0 when there are no positive labels.
    """
    scores, labels = _check(scores, labels)
    num_positives = float(labels.sum())
    if scores.size == 0 or num_positives == 0:
        return 0.0
    idx = _top_k(scores, top_k) if _idx is None else _idx
    return gap_of_top(np.take_along_axis(scores, idx, 1), np.take_along_axis(labels, idx, 1) > 0, idx, num_positives)


def gap_of_top(preds: np.ndarray, hits: np.ndarray, idx: np.ndarray, num_positives: float) -> float:
    """GAP from each video's top-k entries alone (what ``gap`` computes after its top-k step).

    Args:
        preds: float ``[N, k]`` scores of the top-k entries.
        hits: bool ``[N, k]``: the entry is a true label.
        idx: int ``[N, k]`` their classes (the official list order on mixed ties).
        num_positives: all positive labels of the split, also those outside any top-k.
    """
    if preds.size == 0 or num_positives == 0:
        return 0.0
    preds, acts = preds.ravel(), hits.ravel()
    order = np.argsort(-preds.astype(np.float64), kind="stable")
    sp, hit = preds[order], acts[order]
    if _has_mixed_ties(sp, hit).any():
        # the official list order: classes in turn, videos in order within a class
        listed = np.lexsort((np.repeat(np.arange(len(idx)), idx.shape[1]), idx.ravel()))
        return _official_ap(preds[listed], acts[listed].astype(np.float64), num_positives)
    ranks = np.flatnonzero(hit) + 1
    return float((np.arange(1, len(ranks) + 1) / ranks).sum() / num_positives)


def per_class_average_precision(
    scores: np.ndarray, labels: np.ndarray, top_k: int = 20, *, _idx: np.ndarray | None = None
) -> np.ndarray:
    """AP of each class over the videos' top-k entries (official ``MeanAveragePrecisionCalculator``).

    Args:
        scores: float ``[N, C]``.
        labels: 0/1 ``[N, C]``.
        top_k: scores kept per video.

    Returns:
        float64 ``[C]``: AP per class; NaN for classes without a positive label.
    """
    scores, labels = _check(scores, labels)
    n, c = scores.shape
    positives = labels.sum(0).astype(np.float64)
    if n == 0:
        return np.where(positives > 0, 0.0, np.nan)
    idx = _top_k(scores, top_k) if _idx is None else _idx
    return per_class_ap_of_top(np.take_along_axis(scores, idx, 1), np.take_along_axis(labels, idx, 1) > 0, idx,
                               positives)


def per_class_ap_of_top(preds: np.ndarray, hits: np.ndarray, idx: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """Per-class AP from each video's top-k entries alone (``[N, k]`` as ``gap_of_top``) and the
    count of positive labels per class ``[C]``. Returns float64 ``[C]``, NaN where no positive."""
    c = len(positives)
    cls = idx.ravel()
    preds, acts = preds.ravel(), hits.ravel()
    order = np.lexsort((-preds.astype(np.float64), cls))  # by class, then score descending (stable)
    cls_s, hit = cls[order], acts[order]
    start = np.searchsorted(cls_s, np.arange(c))
    rank = np.arange(len(order)) - start[cls_s] + 1  # 1-based rank within the class's list
    cum_pos = np.cumsum(hit)
    before = np.concatenate([[0], cum_pos])[start]  # positives of earlier classes
    precision = (cum_pos - before[cls_s]) / rank
    sums = np.bincount(cls_s[hit], weights=precision[hit], minlength=c)
    with np.errstate(invalid="ignore", divide="ignore"):
        aps = np.where(positives > 0, sums / positives, np.nan)
    mixed = _has_mixed_ties(preds[order], hit, cls_s)
    for k in np.unique(cls_s[mixed]).tolist():
        if positives[k] > 0:  # replay the official order for this class: videos in order
            sel = np.flatnonzero(cls == k)  # row-major: already in video order
            aps[k] = _official_ap(preds[sel], acts[sel].astype(np.float64), positives[k])
    return aps


def mean_average_precision(
    scores: np.ndarray, labels: np.ndarray, top_k: int = 20, *, _idx: np.ndarray | None = None
) -> float:
    """Mean of ``per_class_average_precision`` over classes with at least one positive label.

    Returns:
        mAP in [0, 1]; 0 when no class has a positive.
    """
    return _mean_present(per_class_average_precision(scores, labels, top_k, _idx=_idx))


def _mean_present(aps: np.ndarray) -> float:
    """Mean of per-class APs ``[C]`` over the classes that have one (not NaN); 0 when none does."""
    present = aps[~np.isnan(aps)]
    return float(present.mean()) if present.size else 0.0


def hit_at_one(scores: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of videos whose highest score (first one on ties) is a true label.

    Returns:
        Hit@1 in [0, 1]; videos without labels count as misses.
    """
    scores, labels = _check(scores, labels)
    if len(scores) == 0:
        return 0.0
    top = scores.argmax(1)
    return float(np.average(labels[np.arange(len(labels)), top]))


def perr(scores: np.ndarray, labels: np.ndarray) -> float:
    """Precision at equal recall rate: per video with L labels, the fraction of its top-L scores that are
    labels (scores <= 0 never count), averaged over all videos (those without labels count 0).

    Returns:
        PERR in [0, 1].
    """
    scores, labels = _check(scores, labels)
    n = len(scores)
    if n == 0:
        return 0.0
    num_labels = labels.sum(1).astype(np.int64)
    total = 0.0
    for count in np.unique(num_labels).tolist():
        if count == 0:
            continue  # official: precision over the whole row of a video without labels is 0
        rows = np.flatnonzero(num_labels == count)
        for a in range(0, len(rows), _CHUNK_ROWS):
            r = rows[a : a + _CHUNK_ROWS]
            sub = scores[r]
            top = np.argpartition(sub, -count, axis=1)[:, -count:]
            hit = np.take_along_axis(labels[r], top, 1) * (np.take_along_axis(sub, top, 1) > 0)
            total += float((hit.sum(1) / count).sum())
    return total / n


def f1_scores(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Micro- and macro-F1 of the decisions ``scores >= threshold``.

    Macro-F1 averages the per-class F1 over classes present in the labels or in the decisions (as
    ``f1_macro`` does for multiclass tasks).

    Returns:
        ``{"f1_micro": float, "f1_macro": float}``.
    """
    scores, labels = _check(scores, labels)
    c = scores.shape[1]
    tp, predicted, actual = np.zeros(c), np.zeros(c), np.zeros(c)
    for a in range(0, len(scores), _CHUNK_ROWS):  # chunks: no [N, C] temporaries
        pred = scores[a : a + _CHUNK_ROWS] >= threshold
        truth = labels[a : a + _CHUNK_ROWS] > 0
        tp += np.count_nonzero(pred & truth, axis=0)
        predicted += np.count_nonzero(pred, axis=0)
        actual += np.count_nonzero(truth, axis=0)
    fp, fn = predicted - tp, actual - tp
    denom = 2 * tp + fp + fn
    micro = float(2 * tp.sum() / denom.sum()) if denom.sum() > 0 else 0.0
    seen = denom > 0
    macro = float((2 * tp[seen] / denom[seen]).mean()) if seen.any() else 0.0
    return {"f1_micro": micro, "f1_macro": macro}


def multilabel_metrics(
    scores: np.ndarray, labels: np.ndarray, *, top_k: int = 20, threshold: float = 0.5
) -> dict[str, Any]:
    """Every multilabel metric at once.

    Args:
        scores: probabilities ``[N, C]``.
        labels: 0/1 ``[N, C]``.
        top_k: scores kept per video for GAP and mAP.
        threshold: decision threshold for the F1 scores.

    Returns:
        ``{"gap", "map", "hit_at_1", "perr", "f1_micro", "f1_macro"}`` as floats, and
        ``per_class_ap``: a list ``[C]`` of per-class AP (``None`` for classes without a positive),
        which the training loop saves to ``per_class.json``.
    """
    scores, labels = _check(scores, labels)
    idx = _top_k(scores, top_k)  # shared by GAP and mAP
    aps = per_class_average_precision(scores, labels, top_k, _idx=idx)  # once, for mAP and per-class AP
    return {
        "gap": gap(scores, labels, top_k, _idx=idx),
        "map": _mean_present(aps),
        "per_class_ap": [None if np.isnan(a) else float(a) for a in aps],
        "hit_at_1": hit_at_one(scores, labels),
        "perr": perr(scores, labels),
        **f1_scores(scores, labels, threshold),
    }


METRICS.register("gap", task="multilabel", direction="max",
                 description="global average precision over each video's top-20 scores (YouTube-8M)")(gap)
METRICS.register("map", task="multilabel", direction="max",
                 description="mean per-class AP over the top-20 entries, classes without positives dropped")(
    mean_average_precision)
METRICS.register("hit_at_1", task="multilabel", direction="max",
                 description="fraction of videos whose top-scored class is a true label")(hit_at_one)
METRICS.register("perr", task="multilabel", direction="max",
                 description="precision at equal recall rate (top-L precision, L = the video's label count)")(perr)
METRICS.register("f1_micro", task="multilabel", direction="max",
                 description="micro-averaged F1 of scores >= threshold (0.5)")(
    lambda scores, labels, threshold=0.5: f1_scores(scores, labels, threshold)["f1_micro"])
# "f1_macro" is registered by metrics.classification (same name and direction); multilabel_metrics
# computes the multilabel one.
