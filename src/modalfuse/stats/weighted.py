"""Metrics of a resampled test set, computed from per-example predictions and resampling weights.

A bootstrap sample of ``N`` test examples is a weight vector ``w`` (how often each example was drawn,
``sum(w) == N``). Every metric here is written as a function of ``W`` ``[B, N]`` (``B`` samples at
once) returning ``[B]`` values, so one matrix product replaces ``B`` metric calls. With ``w = 1``
each equals ``modalfuse.metrics`` on the full split (tested); with repeated examples it equals the
metric of the data set holding those copies (GAP included: copies of a positive entry are adjacent
in the pooled ranking and each is scored at its own rank).

Bootstrapped metrics: multiclass ``accuracy``, ``f1_weighted``, ``f1_macro``; sentiment regression
``acc2_has0``, ``f1_has0``, ``acc2_non0``, ``f1_non0``, ``acc5``, ``acc7``, ``mae``, ``corr`` and
``acc3_band`` (3 classes from the predicted score with a neutral band, see ``NEUTRAL_BAND``);
multilabel ``gap``, ``hit_at_1``, ``perr``, ``f1_micro``. Others (``map``, multilabel ``f1_macro``:
per-class averages over rare classes) are reported without an interval.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Metric = Callable[[np.ndarray], np.ndarray]  # W [B, N] -> values [B]

NEUTRAL_BAND = 0.5  # |score| <= 0.5 is neutral: exactly the scores Acc-7 rounds to 0 (round half to even)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.full(np.shape(num), np.nan), where=den > 0)


def _f1(W: np.ndarray, pred: np.ndarray, truth: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class F1 ``[B, k]``, class support ``[B, k]`` and seen mask (predicted or true) under ``W``."""
    P = (pred[:, None] == np.arange(k)).astype(np.float64)  # [N, k]
    T = (truth[:, None] == np.arange(k)).astype(np.float64)
    tp, pc, tc = W @ (P * T), W @ P, W @ T
    f1 = np.divide(2 * tp, pc + tc, out=np.zeros_like(tp), where=(pc + tc) > 0)
    return f1, tc, (pc + tc) > 0


def _f1_weighted(W: np.ndarray, pred: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    f1, tc, _ = _f1(W, pred, truth, k)
    return _ratio((f1 * tc).sum(1), tc.sum(1))


def _f1_macro(W: np.ndarray, pred: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    f1, _, seen = _f1(W, pred, truth, k)
    return _ratio((f1 * seen).sum(1), seen.sum(1).astype(np.float64))


def _mean(x: np.ndarray) -> Metric:
    x = x.astype(np.float64)
    return lambda W: W @ x / W.sum(1)


def multiclass_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, Metric]:
    """Args: logits ``[N, C]``, class ids ``[N]``."""
    k = scores.shape[1]
    pred, truth = scores.argmax(1), labels.astype(np.int64)
    return {"accuracy": _mean(pred == truth),
            "f1_weighted": lambda W: _f1_weighted(W, pred, truth, k),
            "f1_macro": lambda W: _f1_macro(W, pred, truth, k)}


def band_classes(x: np.ndarray, band: float = NEUTRAL_BAND) -> np.ndarray:
    """0 negative (``x < -band``), 1 neutral (``|x| <= band``), 2 positive (``x > band``)."""
    return np.where(x < -band, 0, np.where(x > band, 2, 1))


def regression_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, Metric]:
    """MMSA's sentiment metrics (``modalfuse.metrics.sentiment``) and ``acc3_band``.

    Args: predicted scores ``[N]``, true scores ``[N]``.
    """
    p, y = pred.astype(np.float64), truth.astype(np.float64)
    nz = (y != 0).astype(np.float64)
    has0_p, has0_y = (p >= 0).astype(np.int64), (y >= 0).astype(np.int64)
    non0_p, non0_y = (p > 0).astype(np.int64), (y > 0).astype(np.int64)

    def rounded(bound: float) -> Metric:
        return _mean(np.round(np.clip(p, -bound, bound)) == np.round(np.clip(y, -bound, bound)))

    def corr(W: np.ndarray) -> np.ndarray:
        n = W.sum(1)
        mp, my = W @ p / n, W @ y / n
        cov = W @ (p * y) / n - mp * my
        vp, vy = W @ (p * p) / n - mp**2, W @ (y * y) / n - my**2
        return _ratio(cov, np.sqrt(np.clip(vp, 0, None) * np.clip(vy, 0, None)))

    return {
        "acc2_has0": _mean(has0_p == has0_y),
        "f1_has0": lambda W: _f1_weighted(W, has0_p, has0_y, 2),
        "acc2_non0": lambda W: _ratio(W @ ((non0_p == non0_y) * nz), W @ nz),
        "f1_non0": lambda W: _f1_weighted(W * nz, non0_p, non0_y, 2),
        "acc5": rounded(2.0), "acc7": rounded(3.0),
        "mae": _mean(np.abs(p - y)),
        "corr": corr,
        "acc3_band": _mean(band_classes(p) == band_classes(y)),
    }


def multilabel_metrics(arrays: dict[str, np.ndarray], top_k: int = 20, threshold: float = 0.5) -> dict[str, Metric]:
    """GAP, Hit@1, PERR and micro-F1 from the compact top-K arrays of ``predictions.npz``."""
    idx, score = arrays["top_index"].astype(np.int64), arrays["top_score"].astype(np.float64)
    ptr, lab = arrays["label_ptr"], arrays["label_index"].astype(np.int64)
    n, k = idx.shape
    npos = np.diff(ptr).astype(np.float64)
    c = int(arrays["num_classes"])
    truth = np.zeros(n * c, bool)  # not [N, C] dense per bootstrap, just one flat membership table
    truth[np.repeat(np.arange(n), np.diff(ptr)) * c + lab] = True
    hit = truth[np.arange(n)[:, None] * c + idx]  # [N, K]

    kk = min(top_k, k)
    # Pooled ranking of every video's top-k entries (score descending; ties in video order).
    flat_score, flat_hit = score[:, :kk].ravel(), hit[:, :kk].ravel()
    video = np.repeat(np.arange(n), kk)
    order = np.argsort(-flat_score, kind="stable")
    s_hit, s_video = flat_hit[order].astype(np.float64), video[order]

    def gap(W: np.ndarray) -> np.ndarray:
        w = W[:, s_video]  # [B, E]
        before_all = np.cumsum(w, 1) - w
        before_hit = np.cumsum(w * s_hit, 1) - w * s_hit
        total = np.zeros(W.shape[0])
        for j in range(1, int(W.max(initial=0)) + 1):  # the j-th copy of a hit entry, at its own rank
            on = (w >= j) * s_hit
            total += (on * (before_hit + j) / np.maximum(before_all + j, 1)).sum(1)
        return _ratio(total, W @ npos)

    top1 = hit[:, 0].astype(np.float64)
    L = np.minimum(npos.astype(np.int64), k)
    rank = np.arange(k)[None, :]
    in_top_l = (rank < L[:, None]) & hit & (score > 0)
    per_video = _ratio(in_top_l.sum(1).astype(np.float64), npos)
    per_video = np.nan_to_num(per_video, nan=0.0)  # a video without labels counts 0 (official)
    decided = score >= threshold
    tp = (decided & hit).sum(1).astype(np.float64)
    predicted = decided.sum(1).astype(np.float64)

    return {"gap": gap, "hit_at_1": _mean(top1), "perr": _mean(per_video),
            "f1_micro": lambda W: _ratio(2 * (W @ tp), W @ predicted + W @ npos)}


def metric_functions(kind: str, arrays: dict[str, np.ndarray], *, top_k: int = 20,
                     threshold: float = 0.5) -> dict[str, Metric]:
    """The bootstrappable metrics of one split's arrays (``predictions.load_predictions``)."""
    if kind == "multiclass":
        return multiclass_metrics(arrays["scores"], arrays["labels"])
    if kind == "regression":
        return regression_metrics(arrays["scores"], arrays["labels"])
    return multilabel_metrics(arrays, top_k, threshold)


def full_values(fns: dict[str, Metric], n: int) -> dict[str, float]:
    """Each metric on the whole split (weights all 1)."""
    ones = np.ones((1, n))
    return {name: float(fn(ones)[0]) for name, fn in fns.items()}
