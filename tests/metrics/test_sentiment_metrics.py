"""MMSA's MOSI/MOSEI regression metrics, checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from modalfuse import plugins
from modalfuse.metrics import direction
from modalfuse.metrics.sentiment import NAMES, regression_metrics, sentiment_scores


def test_hand_computed():
    truth = np.array([2.0, -1.0, 0.0, 0.4, -2.6])
    pred = np.array([1.4, 0.5, -0.2, 0.6, -3.5])
    s = sentiment_scores(pred, truth)
    # has0: truth >= 0 -> [1,0,1,1,0], pred >= 0 -> [1,1,0,1,0]: 3/5 correct
    assert s["acc2_has0"] == pytest.approx(0.6)
    # per class F1: class 0 (support 2): tp 1, fp 1, fn 1 -> 0.5; class 1 (support 3): tp 2, fp 1, fn 1 -> 2/3
    assert s["f1_has0"] == pytest.approx((2 * 0.5 + 3 * 2 / 3) / 5)
    # non0 drops truth == 0: truth > 0 [1,0,1,0], pred > 0 [1,1,1,0]: 3/4
    assert s["acc2_non0"] == pytest.approx(0.75)
    assert s["f1_non0"] == pytest.approx((2 * (2 / 3) + 2 * 0.8) / 4)
    # acc7: round(clip) pred [1, 0 (0.5 half-even), -0, 1, -3] vs truth [2, -1, 0, 0, -3]
    assert s["acc7"] == pytest.approx(2 / 5)
    # acc5: pred clipped [1.4,.5,-.2,.6,-2] -> [1,0,0,1,-2]; truth [2,-1,0,0,-2]
    assert s["acc5"] == pytest.approx(2 / 5)
    assert s["mae"] == pytest.approx(np.mean(np.abs(pred - truth)))
    assert s["corr"] == pytest.approx(np.corrcoef(pred, truth)[0, 1])
    assert regression_metrics(pred, truth) == s


def test_registered_with_directions():
    plugins.load()
    assert [direction(n) for n in NAMES] == ["max"] * 6 + ["min", "max"]


def test_all_zero_truth_has_no_non0():
    s = sentiment_scores(np.array([0.3, -0.1]), np.zeros(2))
    assert np.isnan(s["acc2_non0"]) and s["acc2_has0"] == 0.5
