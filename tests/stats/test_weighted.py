"""The resampled GAP (one sparse pass per replicate) against the per-copy definition it replaced."""

from __future__ import annotations

import numpy as np
import pytest

from modalfuse.stats.difference import example_weights
from modalfuse.stats.predictions import compact
from modalfuse.stats.weighted import _ratio, is_label, metric_functions


def _per_copy_gap(arrays, W, top_k=20):
    """The previous implementation: every copy of every hit entry scored in a loop over copies."""
    idx, score = arrays["top_index"].astype(np.int64), arrays["top_score"].astype(np.float64)
    ptr, lab, c = arrays["label_ptr"], arrays["label_index"].astype(np.int64), int(arrays["num_classes"])
    n, k = idx.shape
    truth = np.zeros(n * c, bool)
    truth[np.repeat(np.arange(n), np.diff(ptr)) * c + lab] = True
    hit = truth[np.arange(n)[:, None] * c + idx]
    kk = min(top_k, k)
    order = np.argsort(-score[:, :kk].ravel(), kind="stable")
    s_hit, s_video = hit[:, :kk].ravel()[order].astype(np.float64), np.repeat(np.arange(n), kk)[order]
    w = W[:, s_video]
    before_all = np.cumsum(w, 1) - w
    before_hit = np.cumsum(w * s_hit, 1) - w * s_hit
    total = np.zeros(W.shape[0])
    for j in range(1, int(W.max(initial=0)) + 1):
        on = (w >= j) * s_hit
        total += (on * (before_hit + j) / np.maximum(before_all + j, 1)).sum(1)
    return _ratio(total, W @ np.diff(ptr).astype(np.float64))


@pytest.mark.parametrize("n,c", [(1, 5), (60, 30), (400, 120)])
def test_gap_equals_the_per_copy_definition(n, c) -> None:
    rng = np.random.default_rng(n)
    scores = rng.random((n, c)).astype(np.float32)
    scores[:, :4] = np.round(scores[:, :4], 1)  # ties across videos
    labels = (rng.random((n, c)) < 0.05).astype(np.float32)
    labels[0, 0] = 1
    arrays = compact("multilabel", {"scores": scores, "labels": labels, "ids": range(n)})
    W = np.vstack([example_weights(n, 30, rng), np.ones(n), np.zeros(n), rng.integers(0, 12, n)])
    got = metric_functions("multilabel", arrays)["gap"](W)
    want = _per_copy_gap(arrays, W)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert np.isnan(got[-2])  # no example drawn: no value
    assert np.all(got[np.isfinite(got)] > 0)


def test_gap_without_any_hit_in_the_lists_is_zero() -> None:
    scores = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0]], np.float32)
    labels = np.array([[0, 0, 1], [0, 0, 1]], np.float32)
    arrays = compact("multilabel", {"scores": scores, "labels": labels, "ids": range(2)}, top_k=2)
    assert metric_functions("multilabel", arrays, top_k=2)["gap"](np.ones((3, 2))).tolist() == [0.0, 0.0, 0.0]


def test_is_label_ignores_padding_and_matches_a_dense_table() -> None:
    rng = np.random.default_rng(3)
    labels = rng.random((50, 9)) < 0.3
    rows, cols = np.nonzero(labels)
    ptr = np.concatenate([[0], np.cumsum(labels.sum(1))])
    index = rng.integers(-1, 9, (50, 6))
    want = np.where(index >= 0, labels[np.arange(50)[:, None], np.maximum(index, 0)], False)
    np.testing.assert_array_equal(is_label(index, ptr, cols, 9), want)


@pytest.mark.parametrize("block", [7, 50, 1 << 20])
def test_gap_is_the_same_however_replicates_share_products_and_running_sums(monkeypatch, block) -> None:
    """Above ~260k hits a product takes more replicates (``_GAP_PRODUCT``) than a running-sum pass
    (``_GAP_BLOCK`` / hits), and above 2**20 hits a pass takes part of the hits; forced here on a small
    split (passes of 7 and 50 hits): ties, videos without labels, remainders."""
    from modalfuse.stats import weighted

    rng = np.random.default_rng(11)
    n, c = 300, 40
    scores = np.round(rng.random((n, c)), 2).astype(np.float32)  # many ties within and across videos
    labels = (rng.random((n, c)) < 0.06).astype(np.float32)
    labels[:40] = 0  # 40 videos without labels
    arrays = compact("multilabel", {"scores": scores, "labels": labels, "ids": range(n)})
    W = np.vstack([example_weights(n, 23, rng), np.ones(n), rng.integers(0, 9, n)])
    monkeypatch.setattr(weighted, "_GAP_BLOCK", block)  # 7 and 50: one replicate and part of the hits per pass
    got = metric_functions("multilabel", arrays)["gap"](W)
    np.testing.assert_allclose(got, _per_copy_gap(arrays, W), rtol=1e-12, atol=1e-15)
    monkeypatch.setattr(weighted, "_GAP_PRODUCT", 1)  # the grouping before: as many per product as per pass
    np.testing.assert_array_equal(got, metric_functions("multilabel", arrays)["gap"](W))
    assert np.all(np.isfinite(got)) and np.all(got > 0)
