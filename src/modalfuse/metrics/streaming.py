"""Multilabel (YouTube-8M) evaluation in bounded memory: scores arrive batch by batch and only each
video's top entries are kept, never the ``[N, C]`` score matrix.

Per video the accumulator keeps two small lists:

- the official top-``top_k`` (``argpartition``, exactly as ``metrics.yt8m`` selects them): class,
  score and whether it is a label. GAP and per-class AP (mAP) need nothing else, with the count of
  positive labels (all of them, also those outside any top-k) per class;
- the compact arrays of ``predictions.npz`` (``stats.predictions.compact``): the top ``K`` entries,
  ``K`` at least ``top_k``, the video's label count and its count of scores at or above the
  threshold, so the report's resampled metrics stay exact.

Hit@1, PERR and the F1 counts are exact sums over videos, added up per batch. Memory: about
``(top_k + K) * 9`` bytes per video (about 0.4 KB at ``top_k = 20``, against 15 KB for a float32
row of 3,862 scores), plus ``[C]`` counters.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from .yt8m import _top_k, gap_of_top, per_class_ap_of_top, perr

PAD_INDEX = -1  # a padded entry of a row of the compact arrays: no class, score -inf


class Rows:
    """Rows appended in place into one array that doubles when full (and widens, padding with
    ``fill``, when rows are wider than it).

    Why not a list of per-batch arrays: small arrays kept for the whole split, allocated between each
    batch's large temporaries, pin the C heap (see ``training.evaluation.fixed_mmap_threshold``);
    a few large arrays leave nothing pinned between them.
    """

    def __init__(self, dtype: Any, width: int | None = None, fill: Any = 0) -> None:
        self.fill, self.n = fill, 0
        self.data = np.full((1024,) if width is None else (1024, width), fill, dtype)

    def append(self, rows: np.ndarray) -> None:
        need = self.n + len(rows)
        shape = (len(self.data), *np.maximum(self.data.shape[1:], rows.shape[1:]).tolist())
        if need > shape[0]:
            shape = (max(need, 2 * shape[0]), *shape[1:])
        if shape != self.data.shape:
            grown = np.full(shape, self.fill, self.data.dtype)
            grown[(slice(0, self.n), *(slice(0, d) for d in self.data.shape[1:]))] = self.data[: self.n]
            self.data = grown
        self.data[(slice(self.n, need), *(slice(0, d) for d in rows.shape[1:]))] = rows
        self.n = need

    def extend(self, other: Rows) -> None:
        self.append(other.view())

    def view(self) -> np.ndarray:
        return self.data[: self.n]


class MultilabelAccumulator:
    """The metrics and compact predictions of a multilabel split, from its batches.

    Args:
        num_classes: ``C``.
        top_k: entries per video that GAP and mAP read.
        threshold: the F1 decision threshold.
        keep_compact: keep the rows ``arrays()`` returns (off for metrics alone: a baseline that
            decides half the classes would keep half of them per video).
    """

    def __init__(self, num_classes: int, *, top_k: int = 20, threshold: float = 0.5, keep_compact: bool = True) -> None:
        self.num_classes, self.top_k, self.threshold = num_classes, min(top_k, num_classes), threshold
        self.keep_compact = keep_compact
        k = self.top_k
        # the official top-k of each video: classes, scores, whether each is a label ([N, top_k])
        self._official = (Rows(np.int32, k), Rows(np.float32, k), Rows(np.bool_, k))
        # the compact arrays' rows ([N, K], K the widest batch's; narrower rows padded) and the labels
        self._compact = (Rows(np.int32, k, PAD_INDEX), Rows(np.float32, k, -np.inf))
        self._labels = (Rows(np.int64), Rows(np.int32))  # label count per video, label classes
        self._ids: list[str] = []
        self.positives = np.zeros(num_classes)  # positive labels per class
        self._tp, self._predicted = np.zeros(num_classes), np.zeros(num_classes)
        self._hit1 = self._perr = 0.0

    @property
    def count(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> list[str]:
        return self._ids

    def merge(self, other: MultilabelAccumulator) -> None:
        """Append ``other``'s videos (another rank's share of the split) after this one's."""
        if (other.num_classes, other.top_k, other.threshold) != (self.num_classes, self.top_k, self.threshold):
            raise ValueError("accumulators of different classes, top_k or threshold cannot be merged")
        for mine, theirs in zip((*self._official, *self._compact, *self._labels),
                                (*other._official, *other._compact, *other._labels)):
            mine.extend(theirs)
        self._ids += other._ids
        self.positives += other.positives
        self._tp += other._tp
        self._predicted += other._predicted
        self._hit1 += other._hit1
        self._perr += other._perr

    def update(self, scores: np.ndarray, labels: np.ndarray, ids: Iterable[Any]) -> None:
        """Add one batch: probabilities ``[b, C]``, 0/1 labels ``[b, C]``, ``b`` ids."""
        scores, positive = np.asarray(scores), np.asarray(labels) > 0.5
        if scores.ndim != 2 or scores.shape != positive.shape or scores.shape[1] != self.num_classes:
            raise ValueError(f"scores {scores.shape} and labels {positive.shape} must both be [b, {self.num_classes}]")
        self._ids += [str(i) for i in ids]
        if not len(scores):
            return
        idx = _top_k(scores, self.top_k)
        for rows, part in zip(self._official, (idx, np.take_along_axis(scores, idx, 1), np.take_along_axis(positive, idx, 1))):
            rows.append(part)
        decided = scores >= self.threshold
        self.positives += positive.sum(0)
        self._tp += np.count_nonzero(decided & positive, axis=0)
        self._predicted += np.count_nonzero(decided, axis=0)
        self._hit1 += float(positive[np.arange(len(scores)), scores.argmax(1)].sum())
        self._perr += perr(scores, positive) * len(scores)
        rows, cols = np.nonzero(positive)
        self._labels[0].append(np.bincount(rows, minlength=len(scores)))
        self._labels[1].append(cols)
        if not self.keep_compact:
            return
        k = max(self.top_k, int(positive.sum(1).max()), int(decided.sum(1).max()))
        for rows, part in zip(self._compact, sorted_top(scores, min(k, self.num_classes))):
            rows.append(part)

    def arrays(self) -> dict[str, np.ndarray]:
        """The compact arrays of ``predictions.npz`` (``stats.predictions``): ``ids``, ``top_index``,
        ``top_score``, ``label_index``, ``label_ptr``, ``num_classes`` (``keep_compact`` only). Rows of batches that needed
        fewer entries than the widest batch end in padding (class ``PAD_INDEX``, score -inf), which
        no metric reads: they lie past the row's top-k, its label count and its decided scores."""
        if not self.keep_compact:
            raise ValueError("this accumulator was made with keep_compact=False")
        counts = self._labels[0].view()
        ptr = np.zeros(self.count + 1, np.int64)
        np.cumsum(counts, out=ptr[1:])
        return {"ids": np.asarray(self._ids, dtype=np.str_), "top_index": self._compact[0].view().copy(),
                "top_score": self._compact[1].view().copy(), "label_index": self._labels[1].view().copy(),
                "label_ptr": ptr, "num_classes": np.int64(self.num_classes)}

    def metrics(self) -> dict[str, Any]:
        """What ``metrics.yt8m.multilabel_metrics`` returns for the whole split, equal to it."""
        n = self.count
        idx, preds, hits = (rows.view() for rows in self._official)
        aps = per_class_ap_of_top(preds, hits, idx, self.positives)
        present = aps[~np.isnan(aps)]
        fp, fn = self._predicted - self._tp, self.positives - self._tp
        denom = 2 * self._tp + fp + fn
        seen = denom > 0
        return {
            "gap": gap_of_top(preds, hits, idx, float(self.positives.sum())),
            "map": float(present.mean()) if present.size else 0.0,
            "per_class_ap": [None if np.isnan(a) else float(a) for a in aps],
            "hit_at_1": self._hit1 / n if n else 0.0,
            "perr": self._perr / n if n else 0.0,
            "f1_micro": float(2 * self._tp.sum() / denom.sum()) if denom.sum() > 0 else 0.0,
            "f1_macro": float((2 * self._tp[seen] / denom[seen]).mean()) if seen.any() else 0.0,
        }

    def retained_bytes(self) -> int:
        """Bytes of the per-video arrays kept so far (what grows with the split)."""
        rows = (*self._official, *self._compact, *self._labels)
        return sum(r.view().nbytes for r in rows) + self.positives.nbytes * 3


def sorted_top(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` highest scores, descending: ``(int32 classes, float32 scores)`` ``[b, k]``
    (the selection and order of ``stats.predictions.compact``)."""
    n, c = scores.shape
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < c else np.tile(np.arange(c), (n, 1))
    top_score = np.take_along_axis(scores, top, 1)
    order = np.argsort(-top_score, axis=1, kind="stable")
    return np.take_along_axis(top, order, 1).astype(np.int32), np.take_along_axis(top_score, order, 1).astype(np.float32)
