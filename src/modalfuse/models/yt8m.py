"""YouTube-8M video-level models: unimodal and fused FC networks, FCRNs, Attend-Fusion, LR and MoE.

Every model reads one vector per modality (``rgb`` 1024-d mean or 2048-d mean+std, ``audio`` 128-d
or 256-d) and returns raw logits ``[B, C]`` for a multi-label task (the loop applies BCE-with-logits
and the sigmoid). Modalities are taken in sorted order (``audio`` before ``rgb``).

Attend-Fusion (Awan et al., 2024) is "FC + attention per modality, concatenate, FC head". A
video-level vector has no time axis, so the attention needs tokens to attend over. Here each
modality's FC projection ``[B, T * d]`` is cut into ``T`` tokens of ``d`` dims (plus a learned
position embedding) and a pre-norm multi-head self-attention block mixes them. Each token is a
learned group of features; attention lets the groups re-weight one another *per video* at a cost of
``4 d^2`` weights per layer, where a dense layer of the same width costs ``(T d)^2``: that is where
the parameter saving against the wide FC baselines comes from. The head-averaged attention weights of
the last layer are returned as ``"attention"`` ``[B, M, T, T]`` (``M`` modalities, sorted).

Paper sizes (MF+STD inputs, 3862 classes) are those of the presets in ``configs/yt8m/``;
``modalfuse list models --task yt8m`` prints each model's exact count from its preset.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from ..config import Params
from ..datasets.base import ModalitySpec, TaskSpec
from ..errors import ConfigError
from ..registry import MODELS
from . import output_size
from .encoders import mlp

# The paper setting in which `modalfuse list models --task yt8m` counts parameters.
PAPER_MODALITIES = {"audio": ModalitySpec(256), "rgb": ModalitySpec(2048)}
PAPER_TASK = TaskSpec("multilabel", 3862)
PRESET_DIR = Path(__file__).resolve().parents[1] / "configs" / "yt8m"


def _use(wanted: list[str] | None, modalities: dict[str, ModalitySpec]) -> list[str]:
    """The sorted modalities a model reads; a name the data lacks is a config error."""
    use = sorted(wanted) if wanted else sorted(modalities)
    missing = [m for m in use if m not in modalities]
    if missing:
        raise ConfigError(f"config key 'model.modalities': the data has no modality '{missing[0]}'; "
                          f"it has {', '.join(sorted(modalities))}")
    return use


def _last(dims: list[int], default: int) -> int:
    return dims[-1] if dims else default


def output_layer(input_dim: int, task: TaskSpec) -> nn.Linear:
    """The final linear layer ``[B, H] -> [B, C]``.

    For multi-label tasks its bias starts at ``logit(1 / C)``: with 3862 mostly-absent classes, a
    zero bias predicts 0.5 everywhere and the first hundreds of steps only learn the label prior
    (at lr 1e-4 that is most of a 20-epoch budget on a few thousand videos).
    """
    layer = nn.Linear(input_dim, output_size(task))
    if task.kind == "multilabel" and task.num_classes > 1:
        nn.init.constant_(layer.bias, -math.log(task.num_classes - 1))
    return layer


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------

class ContextGating(nn.Module):
    """Context gating (Miech et al., 2017): ``y = x * sigmoid(W x + b)``, ``[B, D] -> [B, D]``.

    A learned, input-dependent re-weighting of features: it lets the network suppress features that
    are irrelevant for the video at hand (the YouTube-8M 2017 winners' trick).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gate = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(self.gate(x))


class ResidualFC(nn.Module):
    """Pre-norm residual FC block: ``x + drop(W2 relu(W1 LN(x)))`` (optionally context-gated).

    Args:
        dim: width ``D`` of input and output ``[B, D]``.
        dropout: dropout on the hidden layer and on the residual branch.
        gated: apply ``ContextGating`` to the residual branch.
    """

    def __init__(self, dim: int, dropout: float, gated: bool = False) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim)
        self.fc2 = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)
        self.gate = ContextGating(dim) if gated else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc2(self.drop(F.relu(self.fc1(self.norm(x)))))
        if self.gate is not None:
            h = self.gate(h)
        return x + self.drop(h)


def fcrn_stack(input_dim: int, hidden_dim: int, blocks: int, dropout: float, gated: bool) -> nn.Sequential:
    """``[B, input_dim] -> [B, hidden_dim]``: a projection, then ``blocks`` residual blocks."""
    layers: list[nn.Module] = [nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout)]
    layers += [ResidualFC(hidden_dim, dropout, gated) for _ in range(blocks)]
    return nn.Sequential(*layers)


class TokenSelfAttention(nn.Module):
    """Self-attention over tokens cut from one modality's projected vector.

    Args:
        input_dim: the projected vector's size; must be ``tokens * token_dim``.
        tokens: number of tokens ``T``.
        heads: attention heads (``token_dim`` must divide by it).
        layers: stacked pre-norm attention (+ feed-forward) blocks.
        ffn_mult: token-wise feed-forward width as a multiple of ``token_dim`` (0: none).
        dropout: dropout on the attention weights and the residual branches.
        final_norm: LayerNorm on each output token, as pre-norm transformers end (the residual
            stream is otherwise never normalized before the head reads it).
    """

    def __init__(self, input_dim: int, tokens: int, heads: int, layers: int, ffn_mult: int, dropout: float,
                 final_norm: bool = False) -> None:
        super().__init__()
        self.tokens, self.token_dim = tokens, input_dim // tokens
        d = self.token_dim
        # Tokens are slices of a learned projection, so their order carries meaning: a position
        # embedding lets attention tell them apart.
        self.pos = nn.Parameter(torch.zeros(tokens, d))
        nn.init.normal_(self.pos, std=0.02)
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(layers))
        self.attn = nn.ModuleList(nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True) for _ in range(layers))
        self.ffn_norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(layers)) if ffn_mult else None
        self.ffns = nn.ModuleList(
            nn.Sequential(nn.Linear(d, d * ffn_mult), nn.GELU(), nn.Linear(d * ffn_mult, d)) for _ in range(layers)
        ) if ffn_mult else None
        self.drop = nn.Dropout(dropout)
        self.final_norm = nn.LayerNorm(d) if final_norm else nn.Identity()
        self.output_dim = input_dim

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, T * d]`` -> (``[B, T * d]``, head-averaged weights of the last layer ``[B, T, T]``)."""
        h = x.view(x.shape[0], self.tokens, self.token_dim) + self.pos
        weights = x.new_zeros(0)
        for i, attn in enumerate(self.attn):
            q = self.norms[i](h)
            a, weights = attn(q, q, q, need_weights=True, average_attn_weights=True)
            h = h + self.drop(a)
            if self.ffns is not None:
                h = h + self.drop(self.ffns[i](self.ffn_norms[i](h)))
        return self.final_norm(h).reshape(x.shape[0], -1), weights


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

class FCClassifier(nn.Module):
    """Early fusion (or one modality): concatenate the inputs, then an FC body and a linear output.

    Args:
        modalities: the sorted modalities read and concatenated.
        body: ``[B, sum(D_m)] -> [B, H]``.
        out: ``[B, H] -> [B, C]``.
        gate: optional context gating of the body's output ``[B, H]``.
    """

    def __init__(self, modalities: list[str], body: nn.Module, out: nn.Module, gate: nn.Module | None = None) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.body = body
        self.gate = gate
        self.out = out

    def forward(self, features: dict[str, Tensor], masks: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Args: ``features[m]`` ``[B, D_m]``. Returns: ``{"logits": [B, C]}``."""
        h = self.body(torch.cat([features[m] for m in self.modalities], dim=-1))
        if self.gate is not None:
            h = self.gate(h)
        return {"logits": self.out(h)}


class LateFusionClassifier(nn.Module):
    """Late fusion: one branch per modality, concatenate the branch outputs, then an FC head.

    Args:
        branches: ``{m: [B, D_m] -> [B, H_m]}``, applied in sorted order.
        head: ``[B, sum(H_m)] -> [B, C]``.
        attention: whether branches return ``(state, weights)`` (Attend-Fusion's attention branches);
            the weights are stacked into ``"attention"`` ``[B, M, T, T]``.
    """

    def __init__(self, branches: nn.ModuleDict, head: nn.Module, attention: bool = False) -> None:
        super().__init__()
        self.branches = branches
        self.head = head
        self.attention = attention

    def forward(self, features: dict[str, Tensor], masks: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Args: ``features[m]`` ``[B, D_m]``. Returns: ``{"logits": [B, C]}`` (+ ``"attention"``)."""
        states, weights = [], []
        for m in sorted(self.branches):
            s = self.branches[m](features[m])
            if self.attention:
                s, w = s
                weights.append(w)
            states.append(s)
        out = {"logits": self.head(torch.cat(states, dim=-1))}
        if self.attention:
            out["attention"] = torch.stack(weights, dim=1)
        return out


class AttendBranch(nn.Module):
    """One Attend-Fusion branch: FC layers, then token self-attention.

    Args:
        fc: ``[B, D_m] -> [B, T * d]``.
        attention: ``TokenSelfAttention`` over ``T`` tokens of ``d`` dims.
    """

    def __init__(self, fc: nn.Module, attention: TokenSelfAttention) -> None:
        super().__init__()
        self.fc = fc
        self.attention = attention

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, D_m]`` -> (``[B, T * d]``, weights ``[B, T, T]``)."""
        return self.attention(self.fc(x))


class MixtureOfExperts(nn.Module):
    """The YouTube-8M starter code's MoE: per class, a softmax gate over ``K`` sigmoid experts and a
    "dummy" expert that always says 0.

    ``p = sum_k g_k sigmoid(e_k)``. The loop expects logits, so this returns ``log p - log(1 - p)``
    computed in log space (``1 - p = g_0 + sum_k g_k sigmoid(-e_k)``), which stays finite for
    probabilities that would round to 0 or 1 in float32.

    Args:
        input_dim: concatenated input size ``D``.
        num_classes: ``C``.
        num_mixtures: experts per class ``K``.
        expert_bias: initial bias of every expert; ``logit(1 / C)`` for multi-label tasks, for the
            reason given in ``output_layer`` (``None``: PyTorch's default init).
    """

    def __init__(self, modalities: list[str], input_dim: int, num_classes: int, num_mixtures: int,
                 expert_bias: float | None = None) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.num_classes, self.k = num_classes, num_mixtures
        self.gates = nn.Linear(input_dim, num_classes * (num_mixtures + 1))
        self.experts = nn.Linear(input_dim, num_classes * num_mixtures)
        if expert_bias is not None:
            nn.init.constant_(self.experts.bias, expert_bias)

    def forward(self, features: dict[str, Tensor], masks: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Args: ``features[m]`` ``[B, D_m]``. Returns: ``{"logits": [B, C]}``."""
        x = torch.cat([features[m] for m in self.modalities], dim=-1)
        b = x.shape[0]
        log_g = F.log_softmax(self.gates(x).view(b, self.num_classes, self.k + 1), dim=-1)  # [B, C, K+1]
        e = self.experts(x).view(b, self.num_classes, self.k)  # [B, C, K]
        log_p = torch.logsumexp(log_g[..., 1:] + F.logsigmoid(e), dim=-1)
        log_q = torch.logsumexp(torch.cat([log_g[..., :1], log_g[..., 1:] + F.logsigmoid(-e)], dim=-1), dim=-1)
        return {"logits": log_p - log_q}


# ---------------------------------------------------------------------------------------------
# Params and builders (the only code that reads configs)
# ---------------------------------------------------------------------------------------------

class UnimodalParams(Params):
    hidden_dims: list[int] = Field(default_factory=lambda: [1024, 1024])
    dropout: float = Field(0.4, ge=0, lt=1)


class EarlyFCParams(Params):
    modalities: list[str] | None = None  # None: every modality of the data
    hidden_dims: list[int] = Field(default_factory=lambda: [1024, 1024])
    dropout: float = Field(0.4, ge=0, lt=1)


class LateFCParams(Params):
    modalities: list[str] | None = None
    branch_dims: list[int] = Field(default_factory=lambda: [512])  # FC layers of each modality's branch
    head_dims: list[int] = Field(default_factory=lambda: [1024])  # FC layers after the concatenation
    dropout: float = Field(0.4, ge=0, lt=1)


class FCRNParams(Params):
    modalities: list[str] | None = None
    hidden_dim: int = Field(512, ge=1)
    blocks: int = Field(2, ge=0)  # residual blocks (per branch for late fusion)
    head_blocks: int = Field(1, ge=0)  # late fusion only: residual blocks after the concatenation
    dropout: float = Field(0.4, ge=0, lt=1)


class AttendFusionParams(Params):
    modalities: list[str] | None = None
    branch_dims: list[int] = Field(default_factory=lambda: [256])  # last = tokens * token size
    tokens: int = Field(8, ge=1)
    heads: int = Field(4, ge=1)
    attention_layers: int = Field(1, ge=1)
    ffn_mult: int = Field(2, ge=0)
    head_dims: list[int] = Field(default_factory=lambda: [512])
    dropout: float = Field(0.4, ge=0, lt=1)
    final_norm: bool = False  # LayerNorm on each branch's output tokens
    attention_dropout: float | None = Field(None, ge=0, lt=1)  # inside the attention blocks; None: dropout

    @model_validator(mode="after")
    def _check_tokens(self) -> AttendFusionParams:
        if not self.branch_dims:
            raise ValueError("branch_dims needs at least one layer (its last size is cut into tokens)")
        width = self.branch_dims[-1]
        if width % self.tokens or (width // self.tokens) % self.heads:
            raise ValueError(f"branch_dims[-1]={width} must split into tokens={self.tokens} tokens whose size "
                             f"divides by heads={self.heads}")
        return self


class LogisticParams(Params):
    modalities: list[str] | None = None


class MoEParams(Params):
    modalities: list[str] | None = None
    num_mixtures: int = Field(2, ge=1)


def build_unimodal(modality: str, p: UnimodalParams, modalities: dict[str, ModalitySpec], task: TaskSpec) -> FCClassifier:
    (m,) = _use([modality], modalities)
    body = mlp([modalities[m].dim, *p.hidden_dims], p.dropout)
    return FCClassifier([m], body, output_layer(_last(p.hidden_dims, modalities[m].dim), task))


def build_fc_early(p: EarlyFCParams, modalities: dict[str, ModalitySpec], task: TaskSpec) -> FCClassifier:
    use = _use(p.modalities, modalities)
    d = sum(modalities[m].dim for m in use)
    body = mlp([d, *p.hidden_dims], p.dropout)
    return FCClassifier(use, body, output_layer(_last(p.hidden_dims, d), task))


def build_fc_late(p: LateFCParams, modalities: dict[str, ModalitySpec], task: TaskSpec) -> LateFusionClassifier:
    use = _use(p.modalities, modalities)
    branches = nn.ModuleDict({m: mlp([modalities[m].dim, *p.branch_dims], p.dropout) for m in use})
    fused = sum(_last(p.branch_dims, modalities[m].dim) for m in use)
    head = nn.Sequential(mlp([fused, *p.head_dims], p.dropout), output_layer(_last(p.head_dims, fused), task))
    return LateFusionClassifier(branches, head)


def build_fcrn_early(p: FCRNParams, modalities: dict[str, ModalitySpec], task: TaskSpec) -> FCClassifier:
    use = _use(p.modalities, modalities)
    body = fcrn_stack(sum(modalities[m].dim for m in use), p.hidden_dim, p.blocks, p.dropout, gated=False)
    return FCClassifier(use, body, output_layer(p.hidden_dim, task))


def _fcrn_late(p: FCRNParams, modalities: dict[str, ModalitySpec], task: TaskSpec, gated: bool) -> LateFusionClassifier:
    use = _use(p.modalities, modalities)
    branches = nn.ModuleDict({m: fcrn_stack(modalities[m].dim, p.hidden_dim, p.blocks, p.dropout, gated) for m in use})
    fused = p.hidden_dim * len(use)
    head: list[nn.Module] = [ResidualFC(fused, p.dropout, gated) for _ in range(p.head_blocks)]
    if gated:  # gate the fused representation once more before the classifier (Miech et al.)
        head.append(ContextGating(fused))
    head.append(output_layer(fused, task))
    return LateFusionClassifier(branches, nn.Sequential(*head))


def build_attend_fusion(p: AttendFusionParams, modalities: dict[str, ModalitySpec], task: TaskSpec) -> LateFusionClassifier:
    use = _use(p.modalities, modalities)
    branches = nn.ModuleDict()
    for m in use:
        fc = mlp([modalities[m].dim, *p.branch_dims], p.dropout)
        attn_drop = p.dropout if p.attention_dropout is None else p.attention_dropout
        attn = TokenSelfAttention(p.branch_dims[-1], p.tokens, p.heads, p.attention_layers, p.ffn_mult, attn_drop,
                                  p.final_norm)
        branches[m] = AttendBranch(fc, attn)
    fused = p.branch_dims[-1] * len(use)
    head = nn.Sequential(mlp([fused, *p.head_dims], p.dropout), output_layer(_last(p.head_dims, fused), task))
    return LateFusionClassifier(branches, head, attention=True)


def build_logistic(p: LogisticParams, modalities: dict[str, ModalitySpec], task: TaskSpec) -> FCClassifier:
    use = _use(p.modalities, modalities)
    d = sum(modalities[m].dim for m in use)
    return FCClassifier(use, nn.Identity(), output_layer(d, task))


def build_moe(p: MoEParams, modalities: dict[str, ModalitySpec], task: TaskSpec) -> MixtureOfExperts:
    use = _use(p.modalities, modalities)
    prior = -math.log(task.num_classes - 1) if task.kind == "multilabel" and task.num_classes > 1 else None
    return MixtureOfExperts(use, sum(modalities[m].dim for m in use), output_size(task), p.num_mixtures, prior)


# ---------------------------------------------------------------------------------------------
# Registration, with the exact parameter count of each model's preset in the paper setting
# ---------------------------------------------------------------------------------------------

def paper_parameter_count(name: str) -> int:
    """Exact trainable parameters of ``configs/yt8m/<name>.yaml``'s model for MF+STD inputs
    (rgb 2048-d, audio 256-d) and 3862 classes. Built on the ``meta`` device: no memory, no init."""
    from ..config import load_yaml, validate_entry

    section = validate_entry("model", load_yaml(PRESET_DIR / f"{name}.yaml")["model"], MODELS)
    builder = MODELS.get(section["name"])
    params = MODELS.info(section["name"])["params"].model_validate({k: v for k, v in section.items() if k != "name"})
    with torch.device("meta"):
        model = builder(params, modalities=PAPER_MODALITIES, task=PAPER_TASK)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _register(name: str, params: type[Params], description: str, tiny: dict[str, Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    # tiny_params: a few-hundred-parameter version for the registry-wide forward/backward checks.
    return MODELS.register(name, params=params, task="yt8m", description=description, tiny_params=tiny,
                           count_parameters=partial(paper_parameter_count, name))


_FC_TINY = {"hidden_dims": [16]}
_FCRN_TINY = {"hidden_dim": 8, "blocks": 1, "head_blocks": 1}
_register("rgb-only", UnimodalParams, "FC network on the rgb features alone", _FC_TINY)(partial(build_unimodal, "rgb"))
_register("audio-only", UnimodalParams, "FC network on the audio features alone", _FC_TINY)(
    partial(build_unimodal, "audio"))
_register("fc-early", EarlyFCParams, "early fusion: concatenated inputs -> FC stack", _FC_TINY)(build_fc_early)
_register("fc-late", LateFCParams, "late fusion: FC stack per modality -> concatenate -> FC head",
          {"branch_dims": [8], "head_dims": [16]})(build_fc_late)
_register("fcrn-early", FCRNParams, "early fusion with residual FC blocks", _FCRN_TINY)(build_fcrn_early)
_register("fcrn-late", FCRNParams, "late fusion with residual FC blocks per modality and after fusion", _FCRN_TINY)(
    partial(_fcrn_late, gated=False))
_register("fcrn-gated", FCRNParams, "fcrn-late with context gating in every block and before the head", _FCRN_TINY)(
    partial(_fcrn_late, gated=True))
_register("attend-fusion", AttendFusionParams,
          "per-modality FC + token self-attention -> concatenate -> FC head (returns attention)",
          {"branch_dims": [16], "tokens": 4, "heads": 2, "head_dims": [16]})(build_attend_fusion)
_register("logistic", LogisticParams, "logistic regression on the concatenated inputs", {})(build_logistic)
_register("moe", MoEParams, "starter-code mixture of experts on the concatenated inputs", {})(build_moe)
