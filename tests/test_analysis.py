"""analyze's attention summary: per-group means accumulated batch by batch equal the means over the
whole split held at once (the computation it replaced), for every task kind."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from modalfuse.analysis import MAX_LABELS, GroupMeans


def _whole_split(kind: str, w: np.ndarray, y: np.ndarray, num_classes: int) -> list[tuple[str, int, list[float]]]:
    """The previous code: every label held, a boolean selector per group."""
    if kind == "multilabel":
        labels = y > 0.5
        sel = [(str(c), labels[:, c]) for c in np.argsort(-labels.sum(0), kind="stable")[:MAX_LABELS]]
    else:
        sel = [(str(c), y == c) for c in range(num_classes)]
    return [(name, int(s.sum()), w[s].mean(0).tolist()) for name, s in sel if s.any()]


@pytest.mark.parametrize("kind", ["multiclass", "multilabel"])
@pytest.mark.parametrize("batch", [1, 7, 500])
def test_group_means_batch_by_batch_equal_the_whole_split(kind: str, batch: int) -> None:
    rng = np.random.default_rng(batch)
    n, c = 300, 40
    w = rng.dirichlet(np.ones(3), n)
    if kind == "multilabel":  # label frequencies from 0.2 down, some labels never present
        y = (rng.random((n, c)) < np.linspace(0.2, 0.0, c)).astype(np.float32)
    else:
        y = rng.choice(c, n, p=np.r_[np.full(c - 5, 1 / (c - 5)), np.zeros(5)])
    means = GroupMeans(SimpleNamespace(kind=kind, num_classes=c, class_names=None))
    for a in range(0, n, batch):
        means.add(w[a : a + batch], y[a : a + batch])
    got, want = means.summary(), _whole_split(kind, w, y, c)
    assert [g[:2] for g in got] == [g[:2] for g in want]
    assert len(got) == (MAX_LABELS if kind == "multilabel" else c - 5)
    np.testing.assert_allclose([g[2] for g in got], [g[2] for g in want], rtol=1e-12)
    np.testing.assert_allclose(means.total / means.n, w.mean(0), rtol=1e-12)
