"""Metrics as plain functions on numpy arrays, and ``compute_metrics`` that picks them by task.

Names say their direction (see ``direction``): accuracies, F1, GAP, mAP, Hit@1, PERR and
correlation are maximised; ``mae`` and ``*_loss`` are minimised.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..registry import METRICS
from .classification import accuracy, classification_metrics, confusion_matrix, f1_macro, f1_weighted
from .sentiment import regression_metrics, sentiment_scores
from .yt8m import gap, hit_at_one, mean_average_precision, perr  # noqa: F401

DEFAULT_MONITOR = {"multiclass": "accuracy", "multilabel": "gap", "regression": "mae"}


def direction(name: str) -> str:
    """``"max"`` or ``"min"`` for a metric name (registered metrics, then the naming convention)."""
    if name in METRICS:
        return METRICS.info(name)["direction"]
    return "min" if name.endswith("_loss") or name in ("loss", "mae", "mse") else "max"


def is_better(name: str, new: float, old: float | None) -> bool:
    """Whether ``new`` improves on ``old`` in ``name``'s direction. NaN (``corr`` of a constant
    prediction) never improves on anything; anything that is not NaN improves on nothing (``None``)
    or on NaN, so an early NaN cannot stay best for good."""
    if new != new:  # NaN
        return False
    if old is None or old != old:
        return True
    return new < old if direction(name) == "min" else new > old


def compute_metrics(
    kind: str, outputs: np.ndarray, labels: np.ndarray, *, num_classes: int, threshold: float = 0.5,
    top_k: int = 20,
) -> dict[str, Any]:
    """All metrics of a task from model outputs.

    Args:
        kind: ``multiclass`` (outputs: logits ``[N, C]``), ``multilabel`` (probabilities ``[N, C]``)
            or ``regression`` (predictions ``[N]``).
        labels: ``[N]`` class indices, ``[N, C]`` multi-hot, or ``[N]`` scores.
    """
    if kind == "multiclass":
        return classification_metrics(outputs, labels, num_classes)
    if kind == "multilabel":
        from .yt8m import multilabel_metrics

        return multilabel_metrics(outputs, labels, top_k=top_k, threshold=threshold)
    from .sentiment import regression_metrics

    return regression_metrics(np.asarray(outputs).reshape(-1), np.asarray(labels).reshape(-1))


__all__ = [
    "accuracy", "classification_metrics", "compute_metrics", "confusion_matrix", "direction",
    "f1_macro", "f1_weighted", "is_better", "DEFAULT_MONITOR",
]
