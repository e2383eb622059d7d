"""AUC, degradation and verdicts on planted curves (no training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modalfuse.robustness.evaluate import Point, RunResult
from modalfuse.robustness.summary import auc_rows, bootstrap, point_rows, trapezoid_weights
from modalfuse.stats.predictions import compact

N = 400
LEVELS = [0.0, 0.5, 1.0]


def _run(label: str, seed: int, accuracy_per_level: list[float], truth: np.ndarray, rng: np.random.Generator) -> RunResult:
    """A run whose predictions are right with the given probability at each level (same test labels)."""
    points = {}
    for level, acc in zip(LEVELS, accuracy_per_level):
        pred = np.where(rng.random(N) < acc, truth, 1 - truth)
        pred_arrays = {"scores": np.eye(2, dtype=np.float32)[pred], "labels": truth, "ids": [str(i) for i in range(N)]}
        points[Point("missing", "text", level)] = compact("multiclass", pred_arrays)
    return RunResult(label, seed, Path(label), "multiclass", points, np.arange(N).astype(str), 1.0, "accuracy")


def test_trapezoid_weights():
    assert trapezoid_weights(3).tolist() == [0.25, 0.5, 0.25]
    assert trapezoid_weights(5).sum() == pytest.approx(1.0)


def test_a_planted_difference_in_degradation_is_found_and_equal_models_are_indistinguishable():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, N)
    curves = {"robust": [0.9, 0.88, 0.86], "fragile": [0.9, 0.7, 0.5], "twin": [0.9, 0.88, 0.86]}
    runs = [_run(label, seed, acc, truth, rng) for label, acc in curves.items() for seed in (0, 1)]
    reps = bootstrap(runs, ["accuracy"], resamples=500, seed=0)
    rows = {r["model"]: r for r in auc_rows(reps, runs, ["accuracy"], "robust")}
    assert rows["robust"]["degradation_verdict"] == "reference"
    assert rows["fragile"]["degradation_verdict"] == "worse"  # loses more: less graceful
    assert rows["fragile"]["auc_verdict"] == "worse"
    assert rows["twin"]["degradation_verdict"] == "indistinguishable"
    # degradation = clean - AUC, AUC = trapezoid over the three levels
    f = rows["fragile"]
    points = {(r["level"]): r["value"] for r in point_rows(reps, runs, ["accuracy"]) if r["model"] == "fragile"}
    auc = 0.25 * points["0"] + 0.5 * points["0.5"] + 0.25 * points["1"]
    assert f["auc"] == pytest.approx(auc) and f["degradation"] == pytest.approx(points["0"] - auc)
    assert f["degradation_ci_low"] <= f["degradation"] <= f["degradation_ci_high"]


def test_enough_resamples_for_holm_to_reach_significance():
    from modalfuse.robustness.summary import auto_resamples

    for m in (1, 16, 48, 72):
        b = auto_resamples(m)
        assert b >= 1000 and m * 2 / (b + 1) < 0.05  # the smallest attainable p, Holm-adjusted
