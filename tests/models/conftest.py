"""Tiny shapes and specs shared by the model tests."""

from __future__ import annotations

import torch

from modalfuse.config import TrainConfig
from modalfuse.datasets.base import ModalitySpec, TaskSpec
from modalfuse.training.loop import model_loss

DIMS = {"audio": 8, "text": 12, "video": 16}
TASKS = {"multiclass": TaskSpec("multiclass", 3), "multilabel": TaskSpec("multilabel", 5),
         "regression": TaskSpec("regression", 1)}


def specs(seq: int | None) -> dict[str, ModalitySpec]:
    return {m: ModalitySpec(d, seq) for m, d in DIMS.items()}


def batch(seq: int | None, b: int = 4, kind: str = "multiclass", seed: int = 0):
    """Features, masks (rows with all, 2, 1 and all steps real) and labels for ``TASKS[kind]``."""
    g = torch.Generator().manual_seed(seed)
    if seq is None:
        feats, masks = {m: torch.randn(b, d, generator=g) for m, d in DIMS.items()}, {}
    else:
        lengths = torch.tensor([[seq], [2], [1], [seq]])[:b]
        masks = {m: torch.arange(seq).expand(b, seq) < lengths for m in DIMS}
        feats = {m: torch.randn(b, seq, d, generator=g) for m, d in DIMS.items()}
    task = TASKS[kind]
    if kind == "multiclass":
        label = torch.randint(0, 3, (b,), generator=g)
    elif kind == "multilabel":
        label = (torch.rand(b, task.num_classes, generator=g) < 0.4).float()
    else:
        label = torch.randn(b, generator=g)
    return feats, masks, label


def loss_of(task: TaskSpec, out: dict, label: torch.Tensor) -> torch.Tensor:
    """The loop's own loss (task loss on logits, plus aux terms of decision-level heads)."""
    return model_loss(task, TrainConfig(), out, label)


def assert_every_parameter_has_a_gradient(model: torch.nn.Module) -> None:
    """Strict: EVERY trainable parameter got a finite gradient (not just some)."""
    missing = [n for n, p in model.named_parameters()
               if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    assert not missing, f"parameters without a finite gradient: {missing}"
