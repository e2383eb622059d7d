"""Label schemes for sentiment scores in [-3, 3] (CMU-MOSI / CMU-MOSEI).

==============  =======  ==================================================================
scheme          classes  rule (``s`` the continuous score)
==============  =======  ==================================================================
2class_has0     2        negative ``s < 0`` (0), non-negative ``s >= 0`` (1)
2class_non0     2        negative ``s < 0`` (0), positive ``s > 0`` (1); ``s == 0`` dropped
3class          3        negative ``s < -t`` (0), neutral ``|s| <= t`` (1), positive ``s > t``
                         (2); ``t = neutral_band`` (default 0: neutral is exactly 0)
5class          5        ``round(clip(s, -2, 2)) + 2``: 0 = -2 ... 4 = +2
7class          7        ``round(clip(s, -3, 3)) + 3``: 0 = -3 ... 6 = +3
regression      1        ``s`` itself (float32)
==============  =======  ==================================================================

Rounding is numpy's round-half-to-even (``np.round``), as MMSA computes Acc-5/Acc-7: 0.5 -> 0,
1.5 -> 2, -2.5 -> -2.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .base import TaskSpec

LabelScheme = Literal["2class_has0", "2class_non0", "3class", "5class", "7class", "regression"]
SCHEMES: tuple[str, ...] = ("2class_has0", "2class_non0", "3class", "5class", "7class", "regression")

CLASS_NAMES: dict[str, tuple[str, ...] | None] = {
    "2class_has0": ("negative", "non-negative"),
    "2class_non0": ("negative", "positive"),
    "3class": ("negative", "neutral", "positive"),
    "5class": ("-2", "-1", "0", "+1", "+2"),
    "7class": ("-3", "-2", "-1", "0", "+1", "+2", "+3"),
    "regression": None,
}


def task_for(scheme: str) -> TaskSpec:
    """The ``TaskSpec`` a scheme trains: multiclass with its class names, or regression."""
    names = CLASS_NAMES[scheme]
    if names is None:
        return TaskSpec(kind="regression", num_classes=1)
    return TaskSpec(kind="multiclass", num_classes=len(names), class_names=names)


def apply_scheme(scores: np.ndarray, scheme: str, neutral_band: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Turn continuous scores into training labels.

    Args:
        scores: sentiment scores ``[N]``.
        scheme: one of ``SCHEMES``.
        neutral_band: ``t`` for ``3class``: ``|s| <= t`` is neutral.

    Returns:
        ``(labels [K], keep [N] bool)``: int64 class ids (float32 scores for regression) of the kept
        segments; only ``2class_non0`` drops any (the zeros).
    """
    s = np.asarray(scores, np.float64).reshape(-1)
    keep = np.ones(len(s), bool)
    if scheme == "2class_has0":
        labels = (s >= 0).astype(np.int64)
    elif scheme == "2class_non0":
        keep = s != 0
        labels = (s[keep] > 0).astype(np.int64)
    elif scheme == "3class":
        labels = np.where(s < -neutral_band, 0, np.where(s > neutral_band, 2, 1)).astype(np.int64)
    elif scheme == "5class":
        labels = (np.round(np.clip(s, -2, 2)) + 2).astype(np.int64)
    elif scheme == "7class":
        labels = (np.round(np.clip(s, -3, 3)) + 3).astype(np.int64)
    elif scheme == "regression":
        labels = s.astype(np.float32)
    else:
        raise ValueError(f"unknown label scheme '{scheme}' (one of {', '.join(SCHEMES)})")
    return labels, keep
