"""``name: ensemble``: the average of member models' predicted probabilities (``modalfuse ensemble``).

A member is any ``model`` section; each reads the modalities it was trained on. Averaged are the
probabilities the task scores with: sigmoids (multilabel), softmaxes (multiclass) or the predicted
values (regression). The ensemble returns them as logits again (log-odds, log-probabilities), so
everything downstream (``to_scores``, metrics, ``predict``, ``export``) treats it as one model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..datasets.base import ModalitySpec, TaskSpec
from ..errors import ConfigError
from ..registry import MODELS

_EPS = 1e-7  # keeps the log-odds of an averaged probability of exactly 0 or 1 finite


class Ensemble(nn.Module):
    """Members' probabilities averaged.

    Args:
        members: built models (``features, masks -> {"logits": [B, C]}``).
        kind: the task kind, which says what is averaged.
    """

    def __init__(self, members: list[nn.Module], kind: str) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.kind = kind
        mods = [getattr(m, "modalities", None) for m in members]
        self.modalities = sorted({x for ms in mods if ms for x in ms}) if all(mods) else None

    def forward(self, features: dict[str, Tensor], masks: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        logits = torch.stack([m(features, masks or {})["logits"].float() for m in self.members])  # [M, B, C]
        if self.kind == "multilabel":
            p = torch.sigmoid(logits).mean(0).clamp(_EPS, 1 - _EPS)
            return {"logits": torch.log(p) - torch.log1p(-p)}
        if self.kind == "multiclass":
            return {"logits": torch.log(torch.softmax(logits, -1).mean(0).clamp_min(_EPS))}
        return {"logits": logits.mean(0)}


def resolve_ensemble(section: dict[str, Any], path: str = "model") -> dict[str, Any]:
    """``{"name": "ensemble", "members": [model sections]}`` with every member resolved."""
    from . import resolve_model

    extra = sorted(set(section) - {"name", "members"})
    if extra:
        raise ConfigError(f"config key '{path}.{extra[0]}': unknown for an ensemble (valid keys: name, members)")
    members = section.get("members")
    if not isinstance(members, list) or len(members) < 2:
        raise ConfigError(f"config key '{path}.members': expected a list of at least 2 model sections, "
                          f"found {type(members).__name__ if not isinstance(members, list) else len(members)}")
    return {"name": "ensemble", "members": [resolve_model(m, f"{path}.members.{i}") for i, m in enumerate(members)]}


@MODELS.register("ensemble", task="any", resolve=resolve_ensemble,
                 description="the average of member models' probabilities (written by `modalfuse ensemble`)")
def build_ensemble(specs: dict[str, ModalitySpec], task: TaskSpec, *, members: list[dict[str, Any]]) -> Ensemble:
    from . import build_model

    return Ensemble([build_model(m, specs, task) for m in members], task.kind)
