"""What scoring a split keeps, batch by batch: ``training.loop.predict_split`` hands each batch's
scores here and gets back the split's predictions.

- Multiclass and regression splits keep every score (``[N, C]`` logits or ``[N]`` values: small).
- Multilabel splits (YouTube-8M: 3,862 classes) go through ``metrics.streaming.MultilabelAccumulator``,
  which keeps only each video's top entries, so memory does not grow with ``N x C``: the result
  carries the accumulator, which ``split_metrics`` asks for the metrics and
  ``stats.predictions.compact`` for the compact arrays of ``predictions.npz``.

Both give ``{"ids": [...], ...}``; the multilabel one has ``"accumulator"`` instead of
``"scores"``/``"labels"``.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ..metrics.streaming import MultilabelAccumulator


class DenseCollector:
    """Every score and label of a split (multiclass, regression)."""

    def __init__(self) -> None:
        self.scores: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.ids: list[Any] = []

    def add(self, scores: np.ndarray, labels: np.ndarray, ids: Iterable[Any]) -> None:
        self.scores.append(scores)
        self.labels.append(labels)
        self.ids += list(ids)


def fixed_mmap_threshold(size: int = 1 << 20) -> bool:
    """Ask glibc to serve every allocation of ``size`` bytes or more by ``mmap`` (returned to the system
    when freed), instead of raising that threshold after the first large free (its default).

    Why: scoring a split allocates megabytes of temporaries per batch while the kept top entries grow;
    once the temporaries come from the heap, the kept arrays between them pin it, and RSS grew by
    about 2.6 KB per video for the 0.36 KB kept (bench/yt8m_full_scale.py). Returns whether the
    setting was made (False off glibc)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-3, size))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


class TopCollector:
    """The top entries of each example of a multilabel split (``MultilabelAccumulator``)."""

    def __init__(self, num_classes: int, top_k: int, threshold: float) -> None:
        fixed_mmap_threshold()
        self.acc = MultilabelAccumulator(num_classes, top_k=top_k, threshold=threshold)

    def add(self, scores: np.ndarray, labels: np.ndarray, ids: Iterable[Any]) -> None:
        self.acc.update(scores, labels, ids)


def collector(kind: str, num_classes: int, *, top_k: int = 20, threshold: float = 0.5) -> DenseCollector | TopCollector:
    """The collector for a task's predictions."""
    return TopCollector(num_classes, top_k, threshold) if kind == "multilabel" else DenseCollector()


def merged(parts: list[DenseCollector | TopCollector]) -> dict[str, Any]:
    """One split's predictions from the collectors of every rank (in rank order)."""
    if isinstance(parts[0], TopCollector):
        acc = parts[0].acc
        for p in parts[1:]:
            acc.merge(p.acc)
        return {"accumulator": acc, "ids": acc.ids}
    cat = lambda key: np.concatenate([a for p in parts for a in getattr(p, key)]) if any(getattr(p, key) for p in parts) else np.zeros((0,))
    return {"scores": cat("scores"), "labels": cat("labels"), "ids": [i for p in parts for i in p.ids]}


def streamed_metrics(pred: dict[str, Any], top_k: int, threshold: float) -> dict[str, Any] | None:
    """The metrics of a multilabel split scored by a ``TopCollector`` (``None`` for other predictions)."""
    acc = pred.get("accumulator")
    if acc is None:
        return None
    if (acc.top_k, acc.threshold) != (min(top_k, acc.num_classes), threshold):
        raise ValueError(f"predictions were collected with top_k={acc.top_k}, threshold={acc.threshold}; "
                         f"asked for top_k={top_k}, threshold={threshold}")
    return acc.metrics()
