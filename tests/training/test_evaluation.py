"""Scoring a multilabel split batch by batch (training.evaluation): the same metrics and the same
predictions file as scoring it whole, without keeping the [N, C] scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from modalfuse.datasets.base import ArrayDataset, TaskSpec
from modalfuse.metrics import compute_metrics
from modalfuse.stats.predictions import compact, load_predictions, save_predictions
from modalfuse.training.evaluation import TopCollector
from modalfuse.training.loop import predict_split


class _Linear(nn.Module):
    def __init__(self, d: int, c: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(d, c)

    def forward(self, feats, masks):
        return {"logits": 3 * self.fc(feats["x"])}


@pytest.mark.parametrize("batch_size", [7, 64])
def test_streamed_split_equals_the_dense_metrics_and_file(tmp_path, batch_size) -> None:
    rng = np.random.default_rng(0)
    n, d, c = 150, 8, 60
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (rng.random((n, c)) < 0.05).astype(np.float32)
    ds = ArrayDataset({"x": x}, y, [f"v{i}" for i in range(n)])
    model, task = _Linear(d, c), TaskSpec("multilabel", c)
    pred = predict_split(model, ds, task, batch_size=batch_size, device=torch.device("cpu"), top_k=5)
    assert "scores" not in pred and len(pred["ids"]) == n
    with torch.no_grad():
        dense = torch.sigmoid(model({"x": torch.from_numpy(x)}, {})["logits"]).numpy()
    want = compute_metrics("multilabel", dense, y, num_classes=c, top_k=5)
    got = pred["accumulator"].metrics()
    for k in ("gap", "map", "hit_at_1", "perr", "f1_micro", "f1_macro"):
        assert got[k] == pytest.approx(want[k], abs=1e-6), k
    save_predictions(tmp_path / "p.npz", "multilabel", {"test": pred}, top_k=5)
    _, arrays = load_predictions(tmp_path / "p.npz")
    ref = compact("multilabel", {"scores": dense, "labels": y, "ids": pred["ids"]}, top_k=5)
    for key in ("label_ptr", "label_index", "ids"):
        np.testing.assert_array_equal(arrays["test"][key], ref[key])
    kept = arrays["test"]["top_index"] >= 0
    np.testing.assert_array_equal(arrays["test"]["top_index"][:, :5], ref["top_index"][:, :5])
    assert kept.sum() <= ref["top_index"].size


def test_two_ranks_merge_in_rank_order() -> None:
    from modalfuse.training.evaluation import merged

    rng = np.random.default_rng(1)
    s, y = rng.random((20, 12)), (rng.random((20, 12)) < 0.2).astype(float)
    parts = [TopCollector(12, 4, 0.5), TopCollector(12, 4, 0.5)]
    parts[0].add(s[:11], y[:11], range(11))
    parts[1].add(s[11:], y[11:], range(11, 20))
    got = merged(parts)["accumulator"].metrics()
    want = compute_metrics("multilabel", s, y, num_classes=12, top_k=4)
    assert got["gap"] == pytest.approx(want["gap"]) and got["perr"] == pytest.approx(want["perr"])
