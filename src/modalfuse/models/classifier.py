"""The classifier is just encoders -> fusion -> head, composed from registered parts.

The registered model ``fusion`` builds one from a config::

    model:
      name: fusion
      modalities: [text, audio, video]   # a subset gives a unimodal/bimodal baseline
      encoder: {name: mlp, hidden_dims: [64]}
      fusion: {name: concat}
      head_hidden: [64]

Every model returns ``{"logits": Tensor[B, C]}`` (``[B, 1]`` for regression), optionally with
``aux_logits`` (extra terms for the loss) and ``attention`` (weights for inspection).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field, field_validator
from torch import Tensor, nn

from ..config import Params
from ..datasets.base import ModalitySpec, TaskSpec
from ..errors import ConfigError, closest
from ..registry import ENCODERS, FUSIONS, MODELS
from . import output_size
from .encoders import mlp


def validate_component(spec: dict[str, Any], registry: Any, where: str) -> dict[str, Any]:
    """Check a ``{name: ..., **params}`` component spec against its registry; return it resolved."""
    if "name" not in spec:
        raise ValueError(f"{where} needs a 'name' (one of: {', '.join(registry.names())})")
    if spec["name"] not in registry:
        raise ValueError(
            f"unknown {registry.kind} '{spec['name']}'{closest(spec['name'], registry.names())}; "
            f"known: {', '.join(registry.names())}"
        )
    cls = registry.info(spec["name"])["params"]
    extra = [k for k in spec if k != "name" and k not in cls.model_fields]
    if extra:
        valid = ", ".join(["name", *sorted(cls.model_fields)])
        raise ValueError(f"unknown key '{where}.{extra[0]}'{closest(extra[0], cls.model_fields)}; valid keys: {valid}")
    params = cls.model_validate({k: v for k, v in spec.items() if k != "name"})
    return {"name": spec["name"], **params.model_dump()}


def build_component(spec: dict[str, Any], registry: Any, **data_kwargs: Any) -> nn.Module:
    resolved = validate_component(spec, registry, registry.kind)
    ctor = registry.get(resolved.pop("name"))
    return ctor(**data_kwargs, **resolved)


class Head(nn.Module):
    """MLP head: ``[B, F] -> [B, num_outputs]``."""

    def __init__(self, input_dim: int, num_outputs: int, hidden_dims: list[int], dropout: float) -> None:
        super().__init__()
        self.body = mlp([input_dim, *hidden_dims], dropout)
        self.out = nn.Linear(hidden_dims[-1] if hidden_dims else input_dim, num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body(x))


class FusionClassifier(nn.Module):
    """Encoders -> fusion -> head.

    Args:
        encoders: one encoder per modality used (keys = modality names).
        fusion: a feature-level fusion (then ``head`` is required) or a decision-level one.
        head: maps the fused state to logits; ``None`` for decision-level fusion.
        modality_dropout: during training, the probability of zeroing each modality's state per
            sample (at least one modality is always kept), so that a missing modality at test time
            degrades the prediction gracefully.
    """

    def __init__(self, encoders: nn.ModuleDict, fusion: nn.Module, head: nn.Module | None,
                 modality_dropout: float = 0.0) -> None:
        super().__init__()
        self.encoders = encoders
        self.fusion = fusion
        self.head = head
        self.modality_dropout = modality_dropout

    @property
    def modalities(self) -> list[str]:
        return sorted(self.encoders.keys())

    def _drop_modalities(self, states: dict[str, Tensor]) -> dict[str, Tensor]:
        names = sorted(states)
        b = states[names[0]].shape[0]
        device = states[names[0]].device
        keep = torch.rand(b, len(names), device=device) >= self.modality_dropout
        # Guarantee one kept modality per sample: pick one at random where all were dropped.
        none = ~keep.any(1)
        if none.any():
            pick = torch.randint(len(names), (b,), device=device)
            keep[none, pick[none]] = True
        return {m: states[m] * keep[:, i : i + 1].to(states[m].dtype) for i, m in enumerate(names)}

    def forward(self, features: dict[str, Tensor], masks: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Args: ``features[m]`` ``[B, D_m]`` or ``[B, T, D_m]``; ``masks[m]`` ``[B, T]`` (True = real).

        Returns: ``{"logits": [B, C]}`` plus what the fusion adds (``aux_logits``, ``attention``).
        """
        masks = masks or {}
        states = {m: enc(features[m], masks.get(m)) for m, enc in sorted(self.encoders.items())}
        if self.training and self.modality_dropout > 0:
            states = self._drop_modalities(states)
        fused = self.fusion(states)
        if isinstance(fused, dict):  # decision-level fusion, or a fusion returning attention weights
            out = dict(fused)
            if "logits" not in out:
                out["logits"] = self.head(out.pop("state"))
            return out
        return {"logits": self.head(fused)}


class FusionModelParams(Params):
    modalities: list[str] | None = None  # None: every modality of the data
    encoder: dict[str, Any] = Field(default_factory=lambda: {"name": "mlp"})
    encoders: dict[str, dict[str, Any]] = Field(default_factory=dict)  # per-modality overrides
    fusion: dict[str, Any] = Field(default_factory=lambda: {"name": "concat"})
    head_hidden: list[int] = Field(default_factory=list)
    dropout: float = Field(0.1, ge=0, lt=1)
    modality_dropout: float = Field(0.0, ge=0, lt=1)

    @field_validator("encoder")
    @classmethod
    def _check_encoder(cls, v: dict[str, Any]) -> dict[str, Any]:
        return validate_component(v, ENCODERS, "encoder")

    @field_validator("fusion")
    @classmethod
    def _check_fusion(cls, v: dict[str, Any]) -> dict[str, Any]:
        return validate_component(v, FUSIONS, "fusion")


def build_fusion_classifier(
    p: FusionModelParams, modalities: dict[str, ModalitySpec], task: TaskSpec
) -> FusionClassifier:
    use = sorted(p.modalities) if p.modalities else sorted(modalities)
    unknown = [m for m in use if m not in modalities]
    if unknown:
        raise ConfigError(
            f"config key 'model.modalities': the data has no modality '{unknown[0]}'; it has {', '.join(sorted(modalities))}"
        )
    encoders = nn.ModuleDict()
    for m in use:
        spec = {**p.encoder, **p.encoders.get(m, {})}
        if p.encoders.get(m, {}).get("name", spec["name"]) != p.encoder["name"]:
            spec = {"name": p.encoders[m]["name"], **{k: v for k, v in p.encoders[m].items() if k != "name"}}
        encoders[m] = build_component(spec, ENCODERS, input_dim=modalities[m].dim, seq_len=modalities[m].seq_len)
    n_out = output_size(task)
    fusion = build_component(p.fusion, FUSIONS, input_dims={m: encoders[m].output_dim for m in use}, num_outputs=n_out)
    head = None
    if not getattr(fusion, "decision_level", False):
        head = Head(fusion.output_dim, n_out, p.head_hidden, p.dropout)
    return FusionClassifier(encoders, fusion, head, p.modality_dropout)


MODELS.register("fusion", params=FusionModelParams, task="any",
                description="encoders -> fusion -> head, each part chosen by name")(build_fusion_classifier)
