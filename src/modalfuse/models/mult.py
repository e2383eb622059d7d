"""Temporal fusion by cross-modal attention over whole sequences (MulT-style, Tsai et al. 2019).

Fusing only the pooled final states (``concat``/``attention``) lets modalities meet once; here every
target modality's sequence attends to every other modality's sequence, step by step:

    for each target t:   x_t  [B, T_t, d]
        for each source s != t:   h_{s->t} = CrossTransformer(query=x_t, key/value=x_s)   [B, T_t, d]
        h_t = SelfTransformer(concat_s h_{s->t})                                         [B, T_t, (M-1) d]
        z_t = pool(h_t, mask_t)                                                          [B, (M-1) d]
    logits = Head(concat_t z_t)

Sequences may have different lengths (no word alignment needed); masks hide padding. Utterance-level
vectors ``[B, D]`` are length-1 sequences; with the dataset's ``context`` they become the window of
neighbouring segments, and ``pooling: center`` reads the target segment.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from ..config import Params
from ..datasets.base import ModalitySpec, TaskSpec
from ..errors import ConfigError
from ..registry import MODELS
from . import output_size
from .classifier import Head
from .transformer import Pooling, pool, sinusoidal_encoding


class CrossModalBlock(nn.Module):
    """Pre-norm block: ``q + CrossAttn(LN(q), LN(kv))``, then ``+ FF(LN(.))``."""

    def __init__(self, d_model: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(d_model)
        self.norm_kv = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, ff_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ff_dim, d_model))
        self.dropout = nn.Dropout(dropout)

    def forward(self, q: Tensor, kv: Tensor, kv_pad: Tensor | None) -> Tensor:
        """``q`` ``[B, Tq, d]``, ``kv`` ``[B, Tk, d]``, ``kv_pad`` ``[B, Tk]`` (True = padding)."""
        kv = self.norm_kv(kv)
        a, _ = self.attn(self.norm_q(q), kv, kv, key_padding_mask=kv_pad, need_weights=False)
        q = q + self.dropout(a)
        return q + self.dropout(self.ff(self.norm_ff(q)))


class MulT(nn.Module):
    """Cross-modal transformers for every ordered modality pair, a self-attention transformer per
    target, pooled and concatenated into a head.

    Args:
        input_dims: feature size per modality.
        num_outputs: classes ``C`` (1 for regression).
        d_model, heads, ff_dim, dropout: width and attention of every block.
        cross_layers: cross-modal blocks per (source, target) pair.
        self_layers: self-attention layers over each target's concatenated cross-modal outputs.
        pooling: how a target's sequence becomes one state (``mean``/``first``/``last``/``center``).
        head_hidden: hidden sizes of the output head.
        modality_dropout: during training, the probability of zeroing a modality's whole input per
            sample (at least one modality kept).
    """

    def __init__(self, input_dims: dict[str, int], num_outputs: int, d_model: int = 32, heads: int = 4,
                 ff_dim: int = 64, dropout: float = 0.1, cross_layers: int = 1, self_layers: int = 1,
                 pooling: Pooling = "mean", head_hidden: list[int] | None = None,
                 modality_dropout: float = 0.0) -> None:
        super().__init__()
        self.order = sorted(input_dims)
        if len(self.order) < 2:
            raise ConfigError("config key 'model.modalities': mult needs at least two modalities")
        if d_model % heads:
            raise ConfigError(f"config key 'model.d_model': {d_model} is not divisible by model.heads ({heads})")
        self.proj = nn.ModuleDict({m: nn.Linear(input_dims[m], d_model) for m in self.order})
        self.cross = nn.ModuleDict({
            f"{s}->{t}": nn.ModuleList(CrossModalBlock(d_model, heads, ff_dim, dropout) for _ in range(cross_layers))
            for t in self.order for s in self.order if s != t
        })
        width = (len(self.order) - 1) * d_model
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout, batch_first=True, norm_first=True)
        self.self_attn = nn.ModuleDict({
            t: nn.TransformerEncoder(layer, self_layers, enable_nested_tensor=False) for t in self.order
        }) if self_layers else None
        self.dropout = nn.Dropout(dropout)
        self.pooling = pooling
        self.modality_dropout = modality_dropout
        self.head = Head(len(self.order) * width, num_outputs, list(head_hidden or []), dropout)

    def _keep(self, b: int, device: torch.device) -> Tensor:
        keep = torch.rand(b, len(self.order), device=device) >= self.modality_dropout
        none = ~keep.any(1)
        if none.any():
            pick = torch.randint(len(self.order), (b,), device=device)
            keep[none, pick[none]] = True
        return keep

    def forward(self, features: dict[str, Tensor], masks: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """``features[m]`` ``[B, T_m, D_m]`` or ``[B, D_m]``; ``masks[m]`` ``[B, T_m]`` -> ``{"logits": [B, C]}``."""
        masks = masks or {}
        seqs: dict[str, Tensor] = {}
        valid: dict[str, Tensor | None] = {}
        keep = None
        if self.training and self.modality_dropout > 0:
            keep = self._keep(next(iter(features.values())).shape[0], next(iter(features.values())).device)
        for i, m in enumerate(self.order):
            x = features[m]
            mask = masks.get(m)
            if x.dim() == 2:
                x, mask = x.unsqueeze(1), None
            if keep is not None:
                x = x * keep[:, i, None, None].to(x.dtype)
            if mask is not None:  # a sequence with no valid step would give NaN attention
                mask = mask.clone()
                mask[~mask.any(1), 0] = True
            h = self.proj[m](x)
            seqs[m] = self.dropout(h + sinusoidal_encoding(h.shape[1], h.shape[2], h.device))
            valid[m] = mask
        pooled = []
        for t in self.order:
            parts = []
            for s in self.order:
                if s == t:
                    continue
                h = seqs[t]
                pad = None if valid[s] is None else ~valid[s]
                for block in self.cross[f"{s}->{t}"]:
                    h = block(h, seqs[s], pad)
                parts.append(h)
            h = torch.cat(parts, -1)  # [B, T_t, (M-1) d]
            if self.self_attn is not None:
                h = self.self_attn[t](h, src_key_padding_mask=None if valid[t] is None else ~valid[t])
            pooled.append(pool(h, valid[t], self.pooling))
        return {"logits": self.head(torch.cat(pooled, -1))}


class MulTParams(Params):
    modalities: list[str] | None = None  # None: every modality of the data
    d_model: int = Field(32, ge=2)
    heads: int = Field(4, ge=1)
    ff_dim: int = Field(64, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    cross_layers: int = Field(1, ge=1)
    self_layers: int = Field(1, ge=0)
    pooling: Pooling = "mean"
    head_hidden: list[int] = Field(default_factory=lambda: [64])
    modality_dropout: float = Field(0.0, ge=0, lt=1)


def build_mult(p: MulTParams, modalities: dict[str, ModalitySpec], task: TaskSpec) -> MulT:
    use = sorted(p.modalities) if p.modalities else sorted(modalities)
    unknown = [m for m in use if m not in modalities]
    if unknown:
        raise ConfigError(
            f"config key 'model.modalities': the data has no modality '{unknown[0]}'; it has {', '.join(sorted(modalities))}"
        )
    kwargs: dict[str, Any] = p.model_dump(exclude={"modalities"})
    return MulT({m: modalities[m].dim for m in use}, output_size(task), **kwargs)


MODELS.register("mult", params=MulTParams, task="sentiment",
                description="temporal fusion: cross-modal attention between whole sequences (MulT-style)")(build_mult)
