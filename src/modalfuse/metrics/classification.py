"""Multiclass metrics: accuracy, weighted and macro F1, and the confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..registry import METRICS


def confusion_matrix(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """``[C, C]`` counts; rows are true classes, columns predicted classes."""
    idx = truth.astype(np.int64) * num_classes + pred.astype(np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def f1_per_class(cm: np.ndarray) -> np.ndarray:
    """F1 of each class from a confusion matrix; 0 where a class is never predicted nor present."""
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(0) + cm.sum(1)  # predicted + actual = 2TP + FP + FN
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


@METRICS.register("accuracy", task="multiclass", direction="max", description="fraction of correct top-1 classes")
def accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(pred == truth)) if len(truth) else 0.0


@METRICS.register("f1_weighted", task="multiclass", direction="max",
                  description="per-class F1 averaged with weights = class support (scikit-learn 'weighted')")
def f1_weighted(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> float:
    cm = confusion_matrix(pred, truth, num_classes)
    support = cm.sum(1)
    return float((f1_per_class(cm) * support).sum() / max(support.sum(), 1))


@METRICS.register("f1_macro", task="multiclass", direction="max",
                  description="unweighted mean of per-class F1 over classes present in truth or predictions")
def f1_macro(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> float:
    cm = confusion_matrix(pred, truth, num_classes)
    seen = (cm.sum(0) + cm.sum(1)) > 0
    return float(f1_per_class(cm)[seen].mean()) if seen.any() else 0.0


def classification_metrics(logits: np.ndarray, truth: np.ndarray, num_classes: int) -> dict[str, Any]:
    """All multiclass metrics from scores ``[N, C]`` (any monotone scores) and labels ``[N]``."""
    pred = logits.argmax(1)
    truth = truth.astype(np.int64)
    return {
        "accuracy": accuracy(pred, truth),
        "f1_weighted": f1_weighted(pred, truth, num_classes),
        "f1_macro": f1_macro(pred, truth, num_classes),
        "confusion_matrix": confusion_matrix(pred, truth, num_classes).tolist(),
    }
