"""The robustness pass scores a multilabel split through the bounded top-k path: no [N, C] scores,
the same resampled metrics as the dense scores it held before."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from modalfuse.robustness.evaluate import predict_point
from modalfuse.stats.predictions import compact
from modalfuse.stats.weighted import metric_functions


class _Linear(nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.lin = nn.Linear(6, classes)

    def forward(self, feats: dict, masks: dict | None = None) -> dict:
        return {"logits": self.lin(feats["rgb"])}


def test_multilabel_points_keep_top_entries_with_the_dense_metrics() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n, c = 90, 40
    x = torch.randn(n, 6)
    labels = torch.from_numpy((rng.random((n, c)) < 0.08).astype(np.float32))
    batches = [{"features": {"rgb": x[a : a + 32]}, "masks": {}, "label": labels[a : a + 32],
                "ids": [f"v{i}" for i in range(a, min(a + 32, n))]} for a in range(0, n, 32)]
    model = _Linear(c)
    task = SimpleNamespace(kind="multilabel", num_classes=c)
    pred = predict_point(model, batches, task, None, [], 0.0, seed=0, std={}, top_k=20, threshold=0.5)
    assert "scores" not in pred and "accumulator" in pred  # each video's top entries, not [N, C]
    with torch.no_grad():
        dense = {"scores": torch.sigmoid(model({"rgb": x})["logits"]).numpy(), "labels": labels.numpy(),
                 "ids": [f"v{i}" for i in range(n)]}
    got, want = (metric_functions("multilabel", compact("multilabel", p)) for p in (pred, dense))
    W = np.vstack([np.ones(n), rng.integers(0, 3, (5, n))]).astype(np.float32)
    for name in want:
        np.testing.assert_allclose(got[name](W), want[name](W), rtol=1e-12, err_msg=name)
    assert compact("multilabel", pred)["ids"].tolist() == dense["ids"]


def test_multiclass_points_keep_every_score() -> None:
    torch.manual_seed(1)
    x, y = torch.randn(50, 6), torch.randint(0, 4, (50,))
    batches = [{"features": {"rgb": x[a : a + 20]}, "masks": {}, "label": y[a : a + 20], "ids": list(range(a, min(a + 20, 50)))}
               for a in range(0, 50, 20)]
    model = _Linear(4)
    pred = predict_point(model, batches, SimpleNamespace(kind="multiclass", num_classes=4), None, [], 0.0, seed=0, std={})
    with torch.no_grad():
        np.testing.assert_allclose(pred["scores"], model({"rgb": x})["logits"].numpy(), rtol=1e-6)
    assert pred["labels"].tolist() == y.tolist() and pred["ids"] == list(range(50))
