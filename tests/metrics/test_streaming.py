"""Bounded-memory multilabel evaluation: batch by batch equals the whole-split metrics, and what it
keeps per video does not depend on the class count."""

from __future__ import annotations

import numpy as np
import pytest

from modalfuse.metrics.streaming import PAD_INDEX, MultilabelAccumulator
from modalfuse.metrics.yt8m import multilabel_metrics
from modalfuse.stats.predictions import compact
from modalfuse.stats.weighted import full_values, metric_functions


def _data(rng, n, c, p=0.03):
    scores = rng.random((n, c)).astype(np.float32)
    scores[: n // 3, :6] = np.round(scores[: n // 3, :6], 1)  # tied scores with mixed labels
    labels = (rng.random((n, c)) < p).astype(np.float32)
    labels[:4] = 0  # videos without labels
    return scores, labels


def _accumulate(scores, labels, sizes, **kw):
    acc = MultilabelAccumulator(scores.shape[1], **kw)
    at = 0
    for b in sizes:
        acc.update(scores[at : at + b], labels[at : at + b], [f"v{i}" for i in range(at, at + b)])
        at += b
    assert at == len(scores)
    return acc


@pytest.mark.parametrize("sizes", [(300,), (1, 64, 35, 200), (0, 150, 150)])
def test_batched_metrics_equal_the_whole_split(sizes) -> None:
    rng = np.random.default_rng(0)
    scores, labels = _data(rng, 300, 50)
    want = multilabel_metrics(scores, labels, top_k=20)
    got = _accumulate(scores, labels, sizes).metrics()
    assert set(got) == set(want)
    for name in want:
        if name == "per_class_ap":
            np.testing.assert_allclose(np.array(got[name], float), np.array(want[name], float), atol=1e-12)
        else:
            assert got[name] == pytest.approx(want[name], abs=1e-7), name  # the official means run in float32


def test_compact_arrays_give_the_same_resampled_metrics() -> None:
    rng = np.random.default_rng(1)
    scores, labels = _data(rng, 240, 40, p=0.08)
    scores[200:, :30] = 0.9  # the last batch decides many classes: its rows are wider than the others'
    acc = _accumulate(scores, labels, (100, 100, 40))
    arrays = acc.arrays()
    dense = compact("multilabel", {"scores": scores, "labels": labels, "ids": [f"v{i}" for i in range(240)]})
    assert arrays["top_index"].shape == dense["top_index"].shape
    assert (arrays["top_index"][:200] == PAD_INDEX).any()  # the narrower batches were padded
    np.testing.assert_array_equal(arrays["label_ptr"], dense["label_ptr"])
    np.testing.assert_array_equal(arrays["label_index"], dense["label_index"])
    w = rng.integers(0, 4, (5, 240)).astype(float)
    for name, fn in metric_functions("multilabel", dense).items():
        np.testing.assert_allclose(metric_functions("multilabel", arrays)[name](w), fn(w), atol=1e-12, err_msg=name)
    assert full_values(metric_functions("multilabel", arrays), 240)["gap"] == pytest.approx(
        multilabel_metrics(scores, labels)["gap"], abs=0.02)  # bootstrap GAP orders ties by video, not officially


def test_what_is_kept_per_video_does_not_depend_on_the_class_count() -> None:
    rng = np.random.default_rng(2)
    kept = {}
    for c in (200, 4000):
        scores = (rng.random((64, c)) * 0.4).astype(np.float32)  # nothing decided: K = top_k
        labels = np.zeros((64, c), np.float32)
        labels[np.arange(64), rng.integers(0, c, 64)] = 1
        acc = MultilabelAccumulator(c)
        for _ in range(4):
            acc.update(scores, labels, range(64))
        kept[c] = acc.retained_bytes() - 3 * c * 8  # minus the [C] counters
        assert kept[c] / acc.count < 400  # under 20 bytes per kept entry (2 x 20 per video), not 4 per class
    assert kept[200] == kept[4000]


def test_bad_batch_shape_is_refused() -> None:
    acc = MultilabelAccumulator(10)
    with pytest.raises(ValueError, match=r"\[b, 10\]"):
        acc.update(np.zeros((3, 9)), np.zeros((3, 9)), range(3))
