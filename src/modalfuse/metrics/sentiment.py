"""Sentiment regression metrics for CMU-MOSI / CMU-MOSEI, as MMSA defines them (``metricsTop.py``).

For predictions ``p`` and true scores ``y`` in [-3, 3]:

- ``acc2_has0`` / ``f1_has0``: binary accuracy and weighted F1 of ``p >= 0`` vs ``y >= 0`` over all
  segments (zeros count as non-negative);
- ``acc2_non0`` / ``f1_non0``: the same with ``p > 0`` vs ``y > 0`` over segments with ``y != 0``;
- ``acc5`` / ``acc7``: ``round(clip(p, -2, 2)) == round(clip(y, -2, 2))`` (resp. [-3, 3]), numpy's
  round-half-to-even;
- ``mae``: mean absolute error (minimised); ``corr``: Pearson correlation of ``p`` and ``y``.

Values are not rounded (MMSA rounds to 4 decimals for display). F1 is scikit-learn's
``average="weighted"``. Three-class results use the multiclass metrics (``accuracy``,
``f1_weighted``, ``f1_macro``) of ``classification.py``.
"""

from __future__ import annotations

import numpy as np

from ..registry import METRICS
from .classification import accuracy, f1_weighted

NAMES = ("acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc5", "acc7", "mae", "corr")


def _round_acc(pred: np.ndarray, truth: np.ndarray, bound: float) -> float:
    return float(np.mean(np.round(np.clip(pred, -bound, bound)) == np.round(np.clip(truth, -bound, bound))))


def sentiment_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """MMSA's MOSI/MOSEI regression metrics.

    Args:
        pred: predicted scores ``[N]``.
        truth: true scores ``[N]`` in [-3, 3].

    Returns:
        ``{name: value}`` for every name in ``NAMES`` (``acc2_non0``/``f1_non0`` are NaN when every
        true score is 0; ``corr`` is NaN when either side is constant).
    """
    p = np.asarray(pred, np.float64).reshape(-1)
    y = np.asarray(truth, np.float64).reshape(-1)
    if p.shape != y.shape or not len(y):
        raise ValueError(f"sentiment_scores: expected two equal, non-empty [N] arrays, found {p.shape} and {y.shape}")
    has0_p, has0_y = (p >= 0).astype(np.int64), (y >= 0).astype(np.int64)
    nz = y != 0
    non0_p, non0_y = (p[nz] > 0).astype(np.int64), (y[nz] > 0).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = float(np.corrcoef(p, y)[0, 1]) if len(y) > 1 else float("nan")
    return {
        "acc2_has0": accuracy(has0_p, has0_y),
        "f1_has0": f1_weighted(has0_p, has0_y, 2),
        "acc2_non0": accuracy(non0_p, non0_y) if nz.any() else float("nan"),
        "f1_non0": f1_weighted(non0_p, non0_y, 2) if nz.any() else float("nan"),
        "acc5": _round_acc(p, y, 2.0),
        "acc7": _round_acc(p, y, 3.0),
        "mae": float(np.mean(np.abs(p - y))),
        "corr": corr,
    }


def regression_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The training loop's regression metrics: ``sentiment_scores``."""
    return sentiment_scores(pred, truth)


def _register(name: str) -> None:
    def metric(pred: np.ndarray, truth: np.ndarray) -> float:
        return sentiment_scores(pred, truth)[name]

    metric.__name__ = name
    METRICS.register(
        name,
        task="regression",
        direction="min" if name == "mae" else "max",
        description=f"MOSI/MOSEI sentiment {name} (MMSA definition)",
    )(metric)


for _name in NAMES:
    _register(_name)
