"""Holm, verdict directions, and the resampled metrics the comparisons are built on."""

from __future__ import annotations

import numpy as np
import pytest

from modalfuse.metrics import compute_metrics
from modalfuse.stats import holm, metric_functions, verdict
from modalfuse.stats.predictions import compact, load_predictions, save_predictions


def test_holm_matches_a_worked_example() -> None:
    # Holm (1979) step-down by hand: sorted 0.01, 0.02, 0.03, 0.04 (m = 4) -> 0.04, 0.06, 0.06, 0.06.
    np.testing.assert_allclose(holm([0.04, 0.01, 0.03, 0.02]), [0.06, 0.04, 0.06, 0.06])
    np.testing.assert_allclose(holm([0.5, np.nan, 0.01]), [0.5, np.nan, 0.02])


def test_verdict_respects_metric_direction() -> None:
    assert verdict("accuracy", 0.02, 0.01) == "better"
    assert verdict("mae", 0.02, 0.01) == "worse"  # a larger error is worse
    assert verdict("mae", -0.02, 0.01) == "better"
    assert verdict("accuracy", 0.02, 0.2) == "indistinguishable"


def test_predictions_file_round_trip_gives_the_same_metrics(tmp_path) -> None:
    rng = np.random.default_rng(4)
    s, y = rng.normal(size=(50, 3)), rng.integers(0, 3, 50)
    p, t = rng.normal(size=60), rng.normal(size=60)
    ms, ml = rng.random((40, 30)), (rng.random((40, 30)) < 0.1).astype(float)
    for kind, pred in (("multiclass", {"scores": s, "labels": y}), ("regression", {"scores": p, "labels": t}),
                       ("multilabel", {"scores": ms, "labels": ml})):
        pred["ids"] = [f"v{i}" for i in range(len(pred["labels"]))]
        save_predictions(tmp_path / "p.npz", kind, {"test": pred})
        got_kind, splits = load_predictions(tmp_path / "p.npz")
        assert got_kind == kind and list(splits["test"]["ids"]) == pred["ids"]
        fns = metric_functions(kind, splits["test"])
        want = compute_metrics(kind, pred["scores"], pred["labels"], num_classes=pred["scores"].shape[-1] if kind != "regression" else 1)
        ones = np.ones((1, len(pred["ids"])))
        for name, fn in fns.items():
            if name in want:
                assert fn(ones)[0] == pytest.approx(want[name], abs=1e-6), (kind, name)


def test_resampled_gap_equals_gap_of_the_duplicated_set() -> None:
    rng = np.random.default_rng(5)
    s, y = rng.random((80, 40)), (rng.random((80, 40)) < 0.08).astype(float)
    w = rng.integers(0, 4, 80)
    rows = np.repeat(np.arange(80), w)
    want = compute_metrics("multilabel", s[rows], y[rows], num_classes=40)
    fns = metric_functions("multilabel", compact("multilabel", {"scores": s, "labels": y, "ids": range(80)}))
    for name in ("gap", "hit_at_1", "perr", "f1_micro"):
        assert fns[name](w[None].astype(float))[0] == pytest.approx(want[name], abs=1e-9), name
