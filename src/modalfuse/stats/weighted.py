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

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    import torch

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


def is_label(index: np.ndarray, label_ptr: np.ndarray, label_index: np.ndarray, num_classes: int) -> np.ndarray:
    """Whether each ``index[v, i]`` is one of video ``v``'s labels (CSR ``label_ptr``/``label_index``):
    bool ``[N, K]``, by a search among the sorted ``video * C + class`` keys (no ``[N, C]`` table)."""
    n = len(label_ptr) - 1
    keys = np.sort(np.repeat(np.arange(n, dtype=np.int64), np.diff(label_ptr)) * num_classes + label_index)
    query = np.arange(n, dtype=np.int64)[:, None] * num_classes + index
    at = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
    found = keys[at] == query if len(keys) else np.zeros(query.shape, bool)
    return found & (index >= 0)  # class -1 pads a row (metrics.streaming), never a label


_GAP_BLOCK = 1 << 20  # hits x replicates per block: bounds the [b, H] float64 temporaries at ~8 MB each
# Replicates per sparse product, at least: one replicate per product costs 3x as much per replicate as
# four (torch's CSR kernel, 290k videos; docs/results_yt8m.md "Reports at scale"), and above ~260k
# hits the _GAP_BLOCK bound alone would allow only one.
_GAP_PRODUCT = 4


def _weighted_gap(score: np.ndarray, hit: np.ndarray, npos: np.ndarray) -> Metric:
    """GAP of every weight row from the pooled ranking of the videos' top-k entries.

    The ranking is sorted once (score descending; ties in video order). Under weights ``w`` the
    copies of an entry are adjacent, so the ``j``-th copy of a hit entry sits at rank ``A + j`` with
    ``H + j`` hits up to it, where ``A`` (``H``) is the weight of all (hit) entries ranked before it;
    its precision is ``(H + j) / (A + j)``. ``A`` at every hit is a sum over the entries between
    consecutive hits: one sparse ``[hits, videos]`` product with the ``[videos, b]`` weights (every
    entry read once per replicate, no ``[b, entries]`` copy), then a cumulative sum over hits.

    Args: top-k scores ``[N, k]``, whether each is a true label ``[N, k]``, label counts ``[N]``.
    Returns: ``W [B, N] -> [B]``.
    """
    import torch  # torch's CSR product is the one sparse kernel among the core dependencies

    n, kk = score.shape
    order = np.argsort(-score.ravel(), kind="stable")  # the pooled ranking, sorted once
    video = order // max(kk, 1)
    hit_pos = np.flatnonzero(hit.ravel()[order])  # ranks of the hit entries
    hit_video = video[hit_pos]
    # Row h of `between` sums the weights of the entries ranked in [hit h-1, hit h): prefix sums of
    # those rows give A at every hit.
    crow = np.concatenate([[0], hit_pos]).astype(np.int64)
    cols = video[: crow[-1]].astype(np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta": the product is tested here
        between = torch.sparse_csr_tensor(torch.from_numpy(crow), torch.from_numpy(cols),
                                          torch.ones(len(cols)), size=(len(hit_pos), n))

    # replicates per sparse product (and per thread's part); rows and hits per running-sum pass
    rows = max(1, _GAP_BLOCK // max(len(hit_pos), 1))
    step, chunk = max(_GAP_PRODUCT, rows), max(1, _GAP_BLOCK // rows)

    def block(Wb: np.ndarray) -> np.ndarray:  # multiplicities [b, N] float32 -> hit precision sums [b]
        if len(hit_pos) == 0:
            return np.zeros(len(Wb))
        # float32 products are exact here (small integer counts): how many replicates share a product
        # or a running-sum pass changes no value (above _GAP_BLOCK hits a row's precisions are summed
        # in passes: its last bits may move)
        seg = (between @ torch.from_numpy(np.ascontiguousarray(Wb.T))).t().contiguous()  # [b, H]
        return np.concatenate([_hit_sums(seg[a : a + rows], Wb[a : a + rows], hit_video, chunk) for a in range(0, len(Wb), rows)])

    def gap(W: np.ndarray) -> np.ndarray:
        parts = [W[a : a + step].astype(np.float32) for a in range(0, W.shape[0], step)]
        with ThreadPoolExecutor(min(len(parts), os.cpu_count() or 1)) as pool:  # numpy and torch release the GIL
            total = np.concatenate(list(pool.map(block, parts)))
        return _ratio(total, W @ npos)

    return gap


def _hit_sums(seg: torch.Tensor, Wb: np.ndarray, hit_video: np.ndarray, chunk: int) -> np.ndarray:
    """Sum of the precisions at every copy of every hit entry, per replicate: ``[b]``.

    Args: the weight of the entries between consecutive hits ``[b, H]`` (float32 tensor), the
    multiplicities ``[b, N]`` (float32), each hit entry's video ``[H]``, hits per pass (``b x chunk``
    bounds the float64 temporaries; the running sums carry over exactly: integer counts).
    """
    import torch

    total = np.zeros(len(Wb))
    carry_all, carry_hit = np.zeros((len(Wb), 1)), np.zeros((len(Wb), 1))
    for c in range(0, len(hit_video), chunk):
        # float32 gathers are exact; the running sums are float64, taken along contiguous rows ([b, H]
        # layout: several times faster than down columns)
        before_all = torch.cumsum(seg[:, c : c + chunk], 1, dtype=torch.float64).numpy() + carry_all  # A
        w_t = torch.from_numpy(np.take(Wb, hit_video[c : c + chunk], axis=1))  # copies of each hit entry
        hits = torch.cumsum(w_t, 1, dtype=torch.float64).numpy() + carry_hit
        w = w_t.numpy()
        total += _precision_sums(before_all, hits - w, w)
        carry_all, carry_hit = before_all[:, -1:], hits[:, -1:]
    return total


def _precision_sums(before_all: np.ndarray, before_hit: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``sum_j (H + j) / (A + j)`` over the copies ``j = 1..w`` of every hit entry, per row: ``[b]``."""
    # first copies everywhere, then the entries drawn twice or more (about a quarter), one j at a time
    total = np.where(w >= 1, (before_hit + 1) / (before_all + 1), 0.0).sum(1)
    at = np.flatnonzero(w >= 2)  # flat positions and index arrays: 3x faster than 2-D fancy indexing
    a, h, m, rows = before_all.ravel()[at], before_hit.ravel()[at], w.ravel()[at], at // w.shape[1]
    j = 2
    while len(m):
        total += np.bincount(rows, (h + j) / (a + j), minlength=len(total))
        keep = np.flatnonzero(m > j)
        a, h, m, rows = a[keep], h[keep], m[keep], rows[keep]
        j += 1
    return total


def multilabel_metrics(arrays: dict[str, np.ndarray], top_k: int = 20, threshold: float = 0.5) -> dict[str, Metric]:
    """GAP, Hit@1, PERR and micro-F1 from the compact top-K arrays of ``predictions.npz``."""
    idx, score = arrays["top_index"].astype(np.int64), arrays["top_score"].astype(np.float64)
    ptr, lab = arrays["label_ptr"], arrays["label_index"].astype(np.int64)
    n, k = idx.shape
    npos = np.diff(ptr).astype(np.float64)
    c = int(arrays["num_classes"])
    hit = is_label(idx, ptr, lab, c)  # [N, K]

    gap = _weighted_gap(score[:, :min(top_k, k)], hit[:, :min(top_k, k)], npos)
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
