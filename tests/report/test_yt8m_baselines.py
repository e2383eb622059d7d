"""The YouTube-8M baselines from top entries equal the dense computation they replace: the label
prior exactly (same scores), chance in distribution (means over many draws)."""

from __future__ import annotations

import numpy as np
import pytest

from modalfuse.metrics.streaming import MultilabelAccumulator
from modalfuse.report.yt8m_baselines import Labels, chance, distinct_classes, label_prior, top_uniforms

NAMES = ("gap", "map", "hit_at_1", "perr", "f1_micro", "f1_macro")


def _split(n: int, c: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR labels with frequent and rare classes, some videos without labels and one duplicate label."""
    rng = np.random.default_rng(seed)
    dense = rng.random((n, c)) < np.geomspace(0.4, 0.002, c)
    dense[:3] = False
    ptr = np.concatenate([[0], np.cumsum(dense.sum(1))])
    index = np.nonzero(dense)[1]
    index = np.insert(index, ptr[5], index[ptr[5]])  # video 5 lists its first label twice
    ptr[6:] += 1
    return ptr, index, dense.astype(np.float32)


def _dense(scores: np.ndarray, truth: np.ndarray, top_k: int = 20, threshold: float = 0.5) -> dict[str, float]:
    """What the report computed before: the official metrics of the dense score matrix."""
    acc = MultilabelAccumulator(truth.shape[1], top_k=top_k, threshold=threshold, keep_compact=False)
    acc.update(scores, truth, range(len(truth)))
    got = acc.metrics()
    return {k: float(got[k]) for k in NAMES}


@pytest.mark.parametrize("threshold", [0.5, 0.05])
def test_label_prior_equals_the_dense_computation(threshold: float) -> None:
    """Ties included: classes of equal frequency (zeros among them) and a frequency above threshold."""
    n, c = 400, 300
    ptr, index, truth = _split(n, c, 0)
    rng = np.random.default_rng(1)
    freq = (np.round(rng.random(c) * 20) / 200).astype(np.float32)  # many tied frequencies
    freq[rng.integers(0, c, 40)] = 0
    got = label_prior(Labels(ptr, index, c), freq, 20, threshold)
    want = _dense(np.broadcast_to(freq, (n, c)), truth, threshold=threshold)
    assert got.keys() == want.keys()
    for k in NAMES:
        assert got[k] == pytest.approx(want[k], rel=1e-12, abs=1e-12), k
    assert 0 < got["gap"] < 1 and got["perr"] > 0


def test_top_uniforms_and_distinct_classes_have_the_dense_distribution() -> None:
    rng = np.random.default_rng(2)
    n, k, c = 20000, 5, 200
    top = top_uniforms(n, k, c, rng)
    dense = -np.sort(-rng.random((n, c), dtype=np.float32), axis=1)[:, :k]
    assert top.dtype == np.float32 and np.all(np.diff(top, axis=1) <= 0)
    assert np.all(top * 2**24 == np.floor(top * 2**24))  # on numpy's float32 grid
    se = dense.std(0) / np.sqrt(n)
    assert np.all(np.abs(top.mean(0) - dense.mean(0)) < 5 * np.sqrt(2) * se)
    for c_ in (30, 2000):  # the dense shuffle and the rejection path
        cls = distinct_classes(4000, k, c_, rng)
        assert np.all(np.sort(cls, 1)[:, 1:] != np.sort(cls, 1)[:, :-1])
        counts = np.bincount(cls.ravel(), minlength=c_)
        expected = 4000 * k / c_
        assert abs(counts.mean() - expected) < 1e-9 and counts.std() < 2 * np.sqrt(expected)


def test_chance_equals_the_dense_computation_in_distribution() -> None:
    """Means over 150 draws each way, within 5 standard errors of their difference."""
    n, c, draws = 120, 60, 150
    ptr, index, truth = _split(n, c, 3)
    labels = Labels(ptr, index, c)
    rng = np.random.default_rng(4)
    new = np.array([[chance(labels, 10, 0.5, rng)[k] for k in NAMES] for _ in range(draws)])
    old = np.array([[_dense(rng.random((n, c), dtype=np.float32), truth, top_k=10)[k] for k in NAMES] for _ in range(draws)])
    se = np.sqrt((new.var(0, ddof=1) + old.var(0, ddof=1)) / draws)
    assert np.all(se > 0)
    assert np.all(np.abs(new.mean(0) - old.mean(0)) < 5 * se), (new.mean(0), old.mean(0), se)
    # the test has the power to see a GAP off by half
    assert abs(new.mean(0)[0] - 0.5 * old.mean(0)[0]) > 5 * se[0]
