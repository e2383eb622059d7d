"""The verdict logic on constructed estimates and constructed predictions (fast, no training):
TOST equivalence, non-inferiority, orderings, differences and values, each way."""

from __future__ import annotations

import numpy as np
import pytest

from modalfuse.claims.estimate import StudentEstimate, difference, score
from modalfuse.claims.verdicts import claim_tests, decide, decide_exact
from modalfuse.stats import metric_functions, model_scores
from modalfuse.stats.difference import Difference


def _normal(mean: float, sd: float, df: float = float("inf")) -> StudentEstimate:
    """An estimate with standard error ``sd`` (normal, or Student-t with ``df``)."""
    return StudentEstimate(Difference(mean, sd, df, 0.0, sd**2, (3, 3), 2000))


def _verdict(kind: str, est: StudentEstimate, **kw) -> str:
    ts = claim_tests(kind, est, **kw)
    return decide(kind, est, [t.p_value for t in ts], **kw).verdict


def test_equivalence_is_two_one_sided_tests() -> None:
    est = _normal(0.2, 0.3)  # 90 % interval about [-0.29, +0.69]
    lo, hi = est.interval(0.90)
    assert _verdict("equivalence", est, margin=1.0) == "supported"  # inside (-1, 1)
    assert _verdict("equivalence", est, margin=0.5) == "inconclusive"  # hi > 0.5, yet not significantly outside
    # TOST at alpha: supported exactly when the 90 % interval lies inside (-m, m)
    for m in (0.6, max(-lo, hi) - 0.01, max(-lo, hi) + 0.01, 0.8):
        ts = claim_tests("equivalence", est, margin=m)
        assert (ts[0].p_value < 0.05) == (-m < lo and hi < m), m
    far = _normal(3.0, 0.3)
    assert _verdict("equivalence", far, margin=1.0) == "contradicted"
    assert "margin of" in decide("equivalence", est, [1.0, 1.0], margin=0.5).reason  # says what would decide it


def test_non_inferiority_and_its_contradiction() -> None:
    assert _verdict("non-inferiority", _normal(-0.2, 0.3), margin=1.0) == "supported"  # lower 90 % bound > -1
    assert _verdict("non-inferiority", _normal(-0.8, 0.3), margin=1.0) == "inconclusive"
    assert _verdict("non-inferiority", _normal(-2.0, 0.3), margin=1.0) == "contradicted"
    out = decide("non-inferiority", _normal(-0.8, 0.3), [0.3, 0.7], margin=1.0)
    assert "non-inferior at a margin of" in out.reason and out.level == pytest.approx(0.90)


def test_ordering_difference_and_value() -> None:
    assert _verdict("ordering", _normal(2.0, 0.5)) == "supported"
    assert _verdict("ordering", _normal(-2.0, 0.5)) == "contradicted"
    out = decide("ordering", _normal(0.1, 0.5), [0.8])
    assert out.verdict == "inconclusive" and "80 % power" in out.reason
    # a published difference: supported when the 90 % interval is inside published +- margin
    assert _verdict("difference", _normal(0.5, 0.2), centre=0.52, margin=1.0) == "supported"
    assert _verdict("difference", _normal(4.0, 0.2), centre=0.52, margin=1.0) == "contradicted"
    assert _verdict("difference", _normal(0.5, 2.0), centre=0.52, margin=1.0) == "inconclusive"
    assert _verdict("value", _normal(70.0, 1.0), centre=71.0) == "supported"
    assert _verdict("value", _normal(70.0, 0.2), centre=71.87) == "contradicted"
    # a rounded published number: the tolerance widens what counts as the same number
    assert _verdict("value", _normal(70.0, 0.05), centre=70.3, tolerance=0.25) == "supported"
    assert decide_exact(67_130_390, 72e6, 0.5e6).verdict == "contradicted"
    assert decide_exact(71_848_982, 72e6, 0.5e6).verdict == "supported"


def test_holm_adjustment_can_turn_a_verdict() -> None:
    est = _normal(0.25, 0.12)  # p about 0.037 unadjusted
    p = claim_tests("ordering", est)[0].p_value
    assert p < 0.05
    assert decide("ordering", est, [min(1.0, 3 * p)]).verdict == "inconclusive"


def test_estimates_from_constructed_predictions() -> None:
    """Two classifiers on the same 600 examples, 3 seeds each: a is right on 80 %, b on 70 %; the
    paired bootstrap difference finds +10 points, and equivalence within 1 point is contradicted."""
    rng = np.random.default_rng(1)
    n, k = 600, 3
    labels = rng.integers(0, k, n)

    def seeds(p_right: float) -> list:
        out = []
        for _ in range(3):
            right = rng.random(n) < p_right
            pred = np.where(right, labels, (labels + 1) % k)
            out.append(metric_functions("multiclass", {"scores": np.eye(k)[pred], "labels": labels}))
        return out

    models = model_scores({"a": seeds(0.8), "b": seeds(0.7)}, n, resamples=1000)
    d = difference(models, "a", "b", "accuracy").scaled(100)
    assert 6 < d.value < 14
    lo, hi = d.interval(0.95)
    assert lo < d.value < hi and lo > 0
    assert _verdict("ordering", d) == "supported"
    assert _verdict("equivalence", d, margin=1.0) == "contradicted"
    assert _verdict("equivalence", d, margin=30.0) == "supported"
    assert d.scaled(-1).interval(0.9) == pytest.approx(tuple(-x for x in reversed(d.interval(0.9))))
    s = score(models, "a", "accuracy")
    assert s.interval(0.95)[0] < s.value < s.interval(0.95)[1]
