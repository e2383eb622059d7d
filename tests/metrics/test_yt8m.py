"""YouTube-8M metrics: hand-computed cases (ties, videos without labels) and a loop-by-loop replay of
the official starter code's algorithm on random data."""

from __future__ import annotations

import heapq
import random

import numpy as np
import pytest

from modalfuse.metrics import gap, hit_at_one, mean_average_precision, perr
from modalfuse.metrics.yt8m import f1_scores, multilabel_metrics, per_class_average_precision


# ----------------------------------------------------------------- reference: the official algorithm, as loops
def _ref_ap(preds, acts, num_positives):
    heap = []
    for item in zip(preds, acts):
        heapq.heappush(heap, item)
    if not heap or num_positives == 0:
        return 0.0
    p, a = (np.array(x) for x in zip(*heap))
    random.seed(0)
    idx = random.sample(range(len(p)), len(p))
    p, a = p[idx], a[idx]
    order = sorted(range(len(p)), key=lambda k: p[k], reverse=True)
    ap, hits = 0.0, 0
    for i, k in enumerate(order):
        if a[k] > 0:
            hits += 1
            ap += hits / (i + 1) / num_positives
    return ap


def _ref_top_k_by_class(scores, labels, k):
    c = scores.shape[1]
    k = min(k, c)
    per_p, per_a = [[] for _ in range(c)], [[] for _ in range(c)]
    for row in range(len(scores)):
        for j in np.argpartition(scores[row], -k)[-k:]:
            per_p[j].append(float(scores[row, j]))
            per_a[j].append(float(labels[row, j]))
    return per_p, per_a, [float(labels[:, j].sum()) for j in range(c)]


def _ref_gap(scores, labels, k=20):
    per_p, per_a, pos = _ref_top_k_by_class(scores, labels, k)
    return _ref_ap([x for l in per_p for x in l], [x for l in per_a for x in l], sum(pos))


def _ref_map(scores, labels, k=20):
    per_p, per_a, pos = _ref_top_k_by_class(scores, labels, k)
    aps = [_ref_ap(per_p[j], per_a[j], pos[j]) for j in range(scores.shape[1]) if pos[j] > 0]
    return float(np.mean(aps))


def _ref_perr(scores, labels):
    total = 0.0
    for row in range(len(scores)):
        n = int(labels[row].sum())
        top = np.argpartition(scores[row], -n)[-n:]
        total += sum(labels[row, j] for j in top if scores[row, j] > 0) / top.size
    return total / len(scores)


# ----------------------------------------------------------------- hand-computed cases
def test_gap_hand_computed():
    scores = np.array([[0.9, 0.8, 0.1], [0.7, 0.2, 0.6]], np.float32)
    labels = np.array([[1, 0, 1], [0, 0, 1]], np.float32)
    # top-2 per video: (0.9,+) (0.8,-) | (0.7,-) (0.6,+); ranked: + - - + ; 3 positives in total
    # (one of them, video 0 class 2 at 0.1, is outside the top-2)
    assert gap(scores, labels, top_k=2) == pytest.approx((1 / 1 + 2 / 4) / 3)
    assert gap(scores, labels, top_k=3) == pytest.approx((1 / 1 + 2 / 4 + 3 / 6) / 3)


def test_map_hand_computed_drops_classes_without_positives():
    scores = np.array([[0.9, 0.8, 0.1], [0.7, 0.2, 0.6]], np.float32)
    labels = np.array([[1, 0, 1], [0, 0, 1]], np.float32)
    aps = per_class_average_precision(scores, labels, top_k=2)
    # class 0: list (0.9,+),(0.7,-) -> 1/1 over 1 positive; class 1: no positives -> dropped;
    # class 2: list (0.6,+) only (video 0's 0.1 is not in its top-2) -> 1/1 over 2 positives
    assert aps[0] == pytest.approx(1.0)
    assert np.isnan(aps[1])
    assert aps[2] == pytest.approx(0.5)
    assert mean_average_precision(scores, labels, top_k=2) == pytest.approx(0.75)


def test_hit_at_one_and_perr_with_a_video_without_labels():
    scores = np.array([[0.9, 0.8, 0.1], [0.1, 0.2, 0.6], [0.5, 0.4, 0.3]], np.float32)
    labels = np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]], np.float32)
    assert hit_at_one(scores, labels) == pytest.approx(1 / 3)  # video 1 only; the unlabelled video misses
    # video 0: top-2 = {0, 1} -> 1/2; video 1: top-1 = {2} -> 1; video 2 (no labels) -> 0
    assert perr(scores, labels) == pytest.approx((0.5 + 1.0 + 0.0) / 3)


def test_perr_ignores_non_positive_scores():
    scores = np.array([[0.0, -1.0, -2.0]], np.float32)
    labels = np.array([[1, 0, 0]], np.float32)
    assert perr(scores, labels) == 0.0


def test_ties_with_one_label_do_not_depend_on_order():
    scores = np.array([[0.5, 0.5, 0.5, 0.1]], np.float32)
    labels = np.array([[1, 1, 1, 0]], np.float32)
    assert gap(scores, labels, top_k=3) == pytest.approx(1.0)
    assert hit_at_one(scores, labels) == 1.0  # argmax takes the first of the tied maxima


def test_mixed_ties_follow_the_official_shuffle():
    # two tied entries, one positive: AP is 1 or 1/2 depending on the official seeded shuffle
    scores = np.array([[0.5, 0.5]], np.float32)
    labels = np.array([[0, 1]], np.float32)
    got = gap(scores, labels, top_k=2)
    assert got in (pytest.approx(1.0), pytest.approx(0.5))
    assert got == pytest.approx(_ref_gap(scores, labels, 2))


def test_first_maximum_wins_hit_at_one():
    scores = np.array([[0.7, 0.7]], np.float32)
    assert hit_at_one(scores, np.array([[0, 1]], np.float32)) == 0.0
    assert hit_at_one(scores, np.array([[1, 0]], np.float32)) == 1.0


def test_f1_hand_computed():
    scores = np.array([[0.9, 0.6, 0.1], [0.2, 0.5, 0.7]], np.float32)
    labels = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    f = f1_scores(scores, labels, 0.5)
    # decisions: [1,1,0],[0,1,1]; tp=2 fp=2 fn=0 -> micro 4/6
    assert f["f1_micro"] == pytest.approx(4 / 6)
    # class 0: 2/2=1; class 1: tp1 fp1 -> 2/3; class 2: fp1 -> 0
    assert f["f1_macro"] == pytest.approx((1 + 2 / 3 + 0) / 3)


# ----------------------------------------------------------------- against the official algorithm
@pytest.mark.parametrize("quantum", [None, 0.05])  # 0.05: coarse scores, many mixed ties
def test_matches_official_algorithm_on_random_data(quantum):
    rng = np.random.default_rng(0)
    n, c = 120, 30
    scores = rng.random((n, c)).astype(np.float32)
    if quantum:
        scores = (np.round(scores / quantum) * quantum).astype(np.float32)
    labels = (rng.random((n, c)) < 0.1).astype(np.float32)
    labels[:5] = 0  # videos without labels
    labels[:, 3] = 0  # a class without positives
    assert gap(scores, labels) == pytest.approx(_ref_gap(scores, labels), abs=1e-12)
    assert mean_average_precision(scores, labels) == pytest.approx(_ref_map(scores, labels), abs=1e-12)
    assert perr(scores, labels) == pytest.approx(_ref_perr(scores, labels), rel=1e-6)  # float32 sums
    m = multilabel_metrics(scores, labels)
    per_class = m.pop("per_class_ap")
    assert set(m) == {"gap", "map", "hit_at_1", "perr", "f1_micro", "f1_macro"}
    assert all(isinstance(v, float) for v in m.values())
    assert m["map"] == pytest.approx(_ref_map(scores, labels), abs=1e-12)
    assert len(per_class) == c and per_class[3] is None  # class 3 has no positives
    assert np.mean([a for a in per_class if a is not None]) == pytest.approx(m["map"], abs=1e-12)


def test_registered():
    from modalfuse.registry import METRICS

    for name in ("gap", "map", "hit_at_1", "perr", "f1_micro"):
        assert METRICS.info(name)["direction"] == "max"
