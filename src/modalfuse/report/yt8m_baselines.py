"""The YouTube-8M baselines of a report (label prior, chance) scored from each video's top entries
alone, without ``[N, C]`` score blocks, with the official metrics of ``metrics.yt8m``.

- **Label prior**: every video gets the same scores (the training label frequencies), so every
  video's top-k is the same ``k`` classes (the ``argpartition`` of that one row, exactly what the
  official code selects from each identical row), and its top-``L`` for PERR the same ``L`` classes
  for each label count ``L``. GAP, mAP, Hit@1, PERR and the F1 counts follow from the labels and
  that ranking: equal to scoring the dense matrix (``tests/report/test_yt8m_baselines.py``).
- **Chance** (uniform random float32 scores): a video's top-``K`` scores are the ``K`` largest of
  ``C`` uniforms, drawn directly as order statistics (exponential spacings, then rounded down to the
  2^-24 grid of numpy's float32 draws, so ties occur as often), on ``K`` distinct classes drawn
  uniformly; each class is decided (score >= threshold) with the grid's probability, so the F1
  counts are binomial draws. Equal **in distribution** to scoring dense random matrices (not the
  same draws): the draws of ``[N, C]`` uniforms are exactly what this avoids.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..metrics.yt8m import _top_k, gap_of_top, per_class_ap_of_top

GRID = 2**24  # numpy's float32 uniforms are multiples of 2^-24 in [0, 1)
REJECT_BELOW = 8  # classes per drawn entry under which distinct classes come from a dense shuffle


class Labels:
    """The (deduplicated) labels of a split: per video its count, per class its positives, and a
    sorted key ``video * C + class`` per label to look entries up."""

    def __init__(self, ptr: np.ndarray, index: np.ndarray, num_classes: int) -> None:
        self.n, self.c = len(ptr) - 1, num_classes
        video = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(ptr))
        self.keys = np.unique(video * num_classes + np.asarray(index, np.int64))
        self.counts = np.bincount(self.keys // num_classes, minlength=self.n)
        self.positives = np.bincount(self.keys % num_classes, minlength=num_classes).astype(np.float64)

    def hits(self, rows: np.ndarray, cls: np.ndarray) -> np.ndarray:
        """bool ``[len(rows), k]``: class ``cls[i, j]`` is a label of video ``rows[i]``."""
        q = rows[:, None].astype(np.int64) * self.c + cls
        if not len(self.keys):
            return np.zeros(q.shape, bool)
        at = np.minimum(np.searchsorted(self.keys, q), len(self.keys) - 1)
        return self.keys[at] == q


def _scores(labels: Labels, idx: np.ndarray, preds: np.ndarray, hits: np.ndarray, hit1: float, perr: float,
            tp: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """The scalar metrics of ``MultilabelAccumulator.metrics`` from the top-k entries and the counts."""
    aps = per_class_ap_of_top(preds, hits, idx, labels.positives)
    present = aps[~np.isnan(aps)]
    fp, fn = predicted - tp, labels.positives - tp
    denom = 2 * tp + fp + fn
    seen = denom > 0
    return {"gap": gap_of_top(preds, hits, idx, float(labels.positives.sum())),
            "map": float(present.mean()) if present.size else 0.0,
            "hit_at_1": hit1, "perr": perr,
            "f1_micro": float(2 * tp.sum() / denom.sum()) if denom.sum() > 0 else 0.0,
            "f1_macro": float((2 * tp[seen] / denom[seen]).mean()) if seen.any() else 0.0}


def label_prior(labels: Labels, freq: np.ndarray, top_k: int, threshold: float) -> dict[str, float]:
    """Metrics of the predictor that scores every video with ``freq`` (float32 ``[C]``)."""
    n, row = labels.n, np.asarray(freq, np.float32)[None]
    if n == 0:
        return {}
    top = _top_k(row, top_k)[0]
    idx = np.broadcast_to(top, (n, len(top)))
    videos = np.arange(n)
    hits = labels.hits(videos, idx)
    first = int(row[0].argmax())  # Hit@1: the first maximum, as ``argmax`` of each row
    hit1 = float(labels.hits(videos, np.full((n, 1), first)).mean())
    perr = 0.0
    for count in np.unique(labels.counts[labels.counts > 0]).tolist():
        rows = np.flatnonzero(labels.counts == count)
        top_l = np.argpartition(row, -count, axis=1)[0, -count:]  # as ``perr`` picks from each row
        ok = row[0, top_l] > 0
        perr += float((labels.hits(rows, np.broadcast_to(top_l, (len(rows), count))) & ok).sum() / count)
    decided = row[0] >= threshold
    return _scores(labels, idx, np.broadcast_to(row[0, top], idx.shape), hits, hit1, perr / n,
                   np.where(decided, labels.positives, 0.0), np.where(decided, float(n), 0.0))


def distinct_classes(n: int, k: int, c: int, rng: np.random.Generator) -> np.ndarray:
    """int64 ``[n, k]``: per row ``k`` distinct classes of ``c``, uniformly (rows redrawn while
    they repeat a class; a dense shuffle where repeats would be common)."""
    if c < REJECT_BELOW * k:
        return np.argsort(rng.random((n, c)), axis=1)[:, :k]
    out = rng.integers(0, c, (n, k))
    redo = np.arange(n)
    while len(redo):
        s = np.sort(out[redo], axis=1)
        redo = redo[(s[:, 1:] == s[:, :-1]).any(1)]
        out[redo] = rng.integers(0, c, (len(redo), k))
    return out


def top_uniforms(n: int, k: int, c: int, rng: np.random.Generator) -> np.ndarray:
    """float32 ``[n, k]``: per row the ``k`` largest of ``c`` float32 uniforms, descending
    (``1 - S_j / S_(c+1)`` with ``S`` the sums of ``c + 1`` unit exponentials, on the 2^-24 grid)."""
    sums = np.cumsum(rng.standard_exponential((n, k)), axis=1)
    total = sums[:, -1] + rng.standard_gamma(c + 1 - k, n)
    grid = np.minimum(np.floor((1 - sums / total[:, None]) * GRID), GRID - 1)
    return (grid / GRID).astype(np.float32)


def chance(labels: Labels, top_k: int, threshold: float, rng: np.random.Generator) -> dict[str, float]:
    """Metrics of one predictor with uniformly random float32 scores, drawn as its top entries."""
    n, c = labels.n, labels.c
    if n == 0:
        return {}
    k = min(c, max(top_k, int(labels.counts.max(initial=0))))
    cls, score = distinct_classes(n, k, c, rng), top_uniforms(n, k, c, rng)
    hits = labels.hits(np.arange(n), cls)
    counts = labels.counts
    cum = np.cumsum(hits & (score > 0), axis=1)
    has = counts > 0
    perr = float((cum[has, counts[has] - 1] / counts[has]).sum()) / n
    p = (GRID - np.ceil(min(max(threshold, 0.0), 1.0) * GRID)) / GRID  # P(float32 uniform >= threshold)
    tp = rng.binomial(labels.positives.astype(np.int64), p).astype(np.float64)
    predicted = tp + rng.binomial(n - labels.positives.astype(np.int64), p)
    t = min(top_k, c)
    return _scores(labels, cls[:, :t], score[:, :t], hits[:, :t], float(hits[:, 0].mean()), perr, tp, predicted)


def multilabel_baselines(arrays: dict[str, np.ndarray], freq: np.ndarray, source: str, top_k: int, threshold: float,
                         rng: np.random.Generator, draws: int = 3) -> list[dict[str, Any]]:
    """The rows ``{"model", "note", metric: value}`` of the label prior and of chance (mean of ``draws``)."""
    labels = Labels(arrays["label_ptr"], arrays["label_index"], int(arrays["num_classes"]))
    rows: list[dict[str, Any]] = [{"model": "label prior", "note": f"every video scored by {source} label frequency",
                                   **label_prior(labels, freq, top_k, threshold)}]
    got = [chance(labels, top_k, threshold, rng) for _ in range(draws)]
    rows.append({"model": "chance", "note": f"uniformly random scores, mean of {draws} draws",
                 **{m: float(np.mean([d[m] for d in got])) for m in got[0]}})
    return rows
