"""The one classifier: per-modality encoders -> fusion -> head, each part chosen by name.

Every task uses it (sentiment sequences, YouTube-8M vectors, multiclass, multi-label, regression);
named models such as ``yt8m/attend-fusion`` are YAML presets of it::

    model:
      name: fusion
      modalities: [text, audio, video]      # a subset gives a unimodal/bimodal baseline
      encoder: {name: transformer, d_model: 64}
      encoders: {text: {layers: 2}}         # per-modality overrides (a new name replaces the encoder)
      fusion: {name: concat}
      head: {name: mlp, hidden_dims: [64]}  # late fusion: {name: vote, vote: majority}
      modality_dropout: 0.0

``forward(features, masks)`` returns ``{"logits": [B, C]}`` (``[B, 1]`` for regression), plus
``"aux_logits"`` (``{m: [B, C]}``, extra loss terms of decision-level heads) and ``"attention"``
(``[B, G, Q, K]``, see ``fusions.FusionOutput``) when the parts give them.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ..datasets.base import ModalitySpec, TaskSpec
from ..errors import ConfigError
from ..registry import ENCODERS, FUSIONS, HEADS, MODELS
from ..schema import Prob, Resolved
from .missing import drop_modalities


class FusionClassifier(nn.Module):
    """Encoders -> fusion -> head.

    Args:
        encoders: one encoder per modality used (keys = modality names).
        fusion: maps ``{m: state}`` to a ``FusionOutput``.
        head: maps the fused state ``[B, F]`` to ``{"logits": ...}``.
        modality_dropout: during training, the probability of zeroing each modality's state per
            sample (at least one modality is always kept), so that a missing modality at test time
            (the same zeroed state: ``models/missing.py``) degrades the prediction gracefully.
    """

    def __init__(self, encoders: nn.ModuleDict, fusion: nn.Module, head: nn.Module, modality_dropout: float = 0.0) -> None:
        super().__init__()
        self.encoders = encoders
        self.fusion = fusion
        self.head = head
        self.modality_dropout = modality_dropout

    @property
    def modalities(self) -> list[str]:
        return sorted(self.encoders.keys())

    def forward(self, features: dict[str, Tensor], masks: dict[str, Tensor] | None = None) -> dict[str, Any]:
        """Args: ``features[m]`` ``[B, D_m]`` or ``[B, T, D_m]``; ``masks[m]`` ``[B, T]`` (True = real)."""
        masks = masks or {}
        states = {m: enc(features[m], masks.get(m)) for m, enc in sorted(self.encoders.items())}
        if self.training and self.modality_dropout > 0:
            states = drop_modalities(states, self.modality_dropout)
        fused = self.fusion(states, {m: masks.get(m) for m in states})
        out = dict(self.head(fused.state))
        if fused.attention is not None:
            out["attention"] = fused.attention
        return out


def select_modalities(wanted: list[str] | None, modalities: dict[str, ModalitySpec]) -> list[str]:
    """The sorted modalities a model reads (``None``: all of the data's); a name the data lacks is a
    config error."""
    use = sorted(wanted) if wanted else sorted(modalities)
    missing = [m for m in use if m not in modalities]
    if missing:
        raise ConfigError(f"config key 'model.modalities': the data has no modality '{missing[0]}'; "
                          f"it has {', '.join(sorted(modalities))}")
    return use


def output_size(task: TaskSpec) -> int:
    """Logits per sample: one per class, or one for regression."""
    return 1 if task.kind == "regression" else task.num_classes


@MODELS.register("fusion", task="any", description="encoders -> fusion -> head, each part chosen by name",
                 resolve=lambda section, path: resolve_fusion_model(section, path))
def build_fusion_classifier(specs: dict[str, ModalitySpec], task: TaskSpec, *,
                            modalities: list[str] | None = None,
                            encoder: dict[str, Any] | None = None,
                            encoders: dict[str, dict[str, Any]] | None = None,
                            fusion: dict[str, Any] | None = None,
                            head: dict[str, Any] | None = None,
                            modality_dropout: Prob = 0.0) -> FusionClassifier:
    """Build the classifier for the data's modality ``specs`` and ``task`` (config keys as in the
    module docstring)."""
    use = select_modalities(modalities, specs)
    built = nn.ModuleDict()
    for m in use:
        spec = merged_encoder_spec(encoder or {"name": "mlp"}, (encoders or {}).get(m))
        built[m] = ENCODERS.build(spec, f"model.encoders.{m}" if (encoders or {}).get(m) else "model.encoder",
                                  input_dim=specs[m].dim, seq_len=specs[m].seq_len)
    fuse = FUSIONS.build(fusion or {"name": "concat"}, "model.fusion",
                         input_dims={m: built[m].output_dim for m in use},
                         sequence={m: built[m].returns_sequence for m in use})
    top = HEADS.build(head or {"name": "mlp"}, "model.head", input_dim=fuse.output_dim, num_outputs=output_size(task),
                      task=task, parts=fuse.parts)
    return FusionClassifier(built, fuse, top, modality_dropout)


def merged_encoder_spec(default: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """A modality's encoder: the shared spec with its override's keys on top, or, when the override
    names another encoder, the override alone."""
    if not override:
        return default
    if "name" in override and override["name"] != default.get("name"):
        return override
    merged = {**default, **override}
    # two validated specs of one encoder merge into a validated one (resolve_fusion_model checked it)
    return Resolved(merged) if isinstance(default, Resolved) and isinstance(override, Resolved) else merged


def resolve_fusion_model(section: dict[str, Any], path: str = "model") -> dict[str, Any]:
    """Validate a ``name: fusion`` model section all the way down; returns it with every default.

    Raises:
        ConfigError: naming the full key path (``model.encoders.text.hidden_dims``).
    """
    from ..schema import validate_params

    parts = ("encoder", "encoders", "fusion", "head")
    top = {k: v for k, v in section.items() if k not in ("name", *parts)}
    params = validate_params(MODELS.schema("fusion"), top, path)  # the model's own keys, typed
    resolved = {k: v for k, v in params.model_dump(mode="json").items() if k not in parts}
    encoder = ENCODERS.resolve(section.get("encoder", {"name": "mlp"}), f"{path}.encoder")
    overrides = section.get("encoders") or {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"config key '{path}.encoders': expected a mapping modality -> encoder keys, found {overrides!r}"[:200])
    per: dict[str, Any] = {}
    for m, o in overrides.items():
        if not isinstance(o, dict):
            raise ConfigError(f"config key '{path}.encoders.{m}': expected a mapping of encoder keys, found {o!r}"[:200])
        merged = ENCODERS.resolve(merged_encoder_spec(encoder, o), f"{path}.encoders.{m}")
        # keep only what differs from the shared encoder, so the saved config reads as written
        per[m] = (Resolved({k: v for k, v in merged.items() if k == "name" or encoder.get(k) != v})
                  if merged["name"] == encoder["name"] else merged)
    out = Resolved(name="fusion", **resolved, encoder=encoder, encoders=per,
                   fusion=FUSIONS.resolve(section.get("fusion", {"name": "concat"}), f"{path}.fusion"),
                   head=HEADS.resolve(section.get("head", {"name": "mlp"}), f"{path}.head"))
    out.params = params
    return out
