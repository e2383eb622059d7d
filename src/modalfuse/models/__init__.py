"""Models: per-modality encoders -> fusion -> head, and the named models built from them.

``build_model(section, modalities, task)`` builds a registered model from a resolved config section.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..datasets.base import ModalitySpec, TaskSpec


def build_model(section: dict[str, Any], modalities: dict[str, ModalitySpec], task: TaskSpec) -> nn.Module:
    from .. import plugins
    from ..config import entry_params
    from ..registry import MODELS

    plugins.load()
    params = entry_params(section, MODELS)
    return MODELS.get(section["name"])(params, modalities=modalities, task=task)


def count_parameters(model: nn.Module) -> int:
    """Exact number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def output_size(task: TaskSpec) -> int:
    """Logits per sample: one per class, or one for regression."""
    return 1 if task.kind == "regression" else task.num_classes
