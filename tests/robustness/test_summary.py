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
    runs = [_run(label, seed, acc, truth, rng) for label, acc in curves.items() for seed in (0, 1, 2)]
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


def test_point_intervals_and_deltas_are_the_reports_difference() -> None:
    """Every interval and Δ is ``stats.difference.difference`` on the shared resamples, judged by the
    report's ``stats.verdicts.judge``: the same numbers as computing them directly."""
    from modalfuse.stats.difference import difference
    from modalfuse.stats.verdicts import judge

    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, N)
    curves = {"a": [0.85, 0.8, 0.7], "b": [0.85, 0.75, 0.6]}
    runs = [_run(label, seed, acc, truth, rng) for label, acc in curves.items() for seed in (0, 1, 2)]
    reps = bootstrap(runs, ["accuracy"], resamples=300, seed=0)
    key = "missing|text|0.5|accuracy"
    row = next(r for r in point_rows(reps, runs, ["accuracy"]) if r["model"] == "b" and r["level"] == "0.5")
    d = difference(reps["b"][key])
    assert (row["value"], row["ci_low"], row["ci_high"]) == pytest.approx((d.estimate, *d.interval(0.95)))
    assert row["seeds"] == 3 and d.df < 30  # three seeds: a t interval with few degrees of freedom
    auc = {r["model"]: r for r in auc_rows(reps, runs, ["accuracy"], "a")}["b"]
    k = "missing|text|degradation|accuracy"
    dd = difference(reps["b"][k], reps["a"][k])
    j = judge([dd], "loss")[0]
    assert auc["degradation_delta"] == pytest.approx(dd.estimate)
    assert (auc["degradation_delta_ci_low"], auc["degradation_delta_ci_high"]) == pytest.approx((j.ci_low, j.ci_high))
    assert auc["degradation_p_adjusted"] == pytest.approx(j.p_adjusted) and auc["degradation_mde"] == pytest.approx(j.mde)


def test_no_p_value_floor_from_the_resample_count() -> None:
    """100 resamples, 40 comparisons in one Holm family: a large difference still gets its verdict
    (a percentile bootstrap's smallest p, 2/101, times 40 could never fall below 0.05)."""
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 2, N)
    models = {"ref": [0.9, 0.88, 0.86], **{f"m{i}": [0.9, 0.7, 0.5] for i in range(40)}}
    runs = [_run(label, seed, acc, truth, rng) for label, acc in models.items() for seed in (0, 1, 2)]
    rows = auc_rows(bootstrap(runs, ["accuracy"], resamples=100, seed=0), runs, ["accuracy"], "ref")
    assert {r["degradation_verdict"] for r in rows if r["model"] != "ref"} == {"worse"}


def test_replicates_do_not_depend_on_the_weight_blocks(monkeypatch) -> None:
    """The bootstrap draws its weights block by block and frees each block: a memoised point must
    never serve one block's values for another (a later block can reuse a freed block's memory)."""
    import sys

    diff = sys.modules["modalfuse.stats.difference"]
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 2, N)
    runs = [_run(label, seed, acc, truth, rng) for label, acc in {"a": [0.9, 0.8, 0.6], "b": [0.9, 0.85, 0.8]}.items()
            for seed in (0, 1)]
    whole = bootstrap(runs, ["accuracy"], resamples=60, seed=0)  # one block of 60 replicates
    monkeypatch.setattr(diff, "BLOCK_ENTRIES", 3 * N)  # 20 blocks of 3
    blocks = bootstrap(runs, ["accuracy"], resamples=60, seed=0)
    for model, keys in whole.items():
        for key, sc in keys.items():
            np.testing.assert_allclose(blocks[model][key].replicates, sc.replicates, rtol=1e-12, err_msg=key)
