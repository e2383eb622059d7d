"""Models: per-modality encoders -> fusion -> head (``classifier.py``), the one family every task uses
(MulT too: the ``mosi/mult`` preset, identity encoders + the ``crossmodal`` fusion + an MLP head).

``resolve_model(section)`` validates a ``model`` config section all the way down;
``build_model(section, specs, task)`` builds it for the data's modality specs and task.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..datasets.base import ModalitySpec, TaskSpec
from ..schema import Resolved

# The paper setting of the YouTube-8M presets: MF+STD inputs, 3862 classes.
PAPER_SPECS = {"audio": ModalitySpec(256), "rgb": ModalitySpec(2048)}
PAPER_TASK = TaskSpec("multilabel", 3862)


def resolve_model(section: Any, path: str = "model") -> dict[str, Any]:
    """A ``model`` section with every default filled in; errors name the full key path."""
    from .. import plugins
    from ..registry import MODELS

    plugins.load()
    if isinstance(section, dict) and section.get("name") in MODELS:
        hook = MODELS.info(section["name"]).get("resolve")
        if hook is not None:
            out = hook(section, path)
            return out if isinstance(out, Resolved) else Resolved(out)
    return MODELS.resolve(section, path)


def build_model(section: dict[str, Any], specs: dict[str, ModalitySpec], task: TaskSpec) -> nn.Module:
    """The model a ``model`` config section describes, for the data's ``specs`` and ``task``."""
    from ..registry import MODELS

    resolved = dict(section if isinstance(section, Resolved) else resolve_model(section))  # validated once
    name = resolved.pop("name")
    return MODELS.get(name)(specs=specs, task=task, **resolved)


def count_parameters(model: nn.Module) -> int:
    """Exact number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
