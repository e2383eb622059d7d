"""Cross-modal transformer fusion over token sequences (MulT-style, as a fusion).

Fusing pooled states lets modalities meet once, after each has been summarised; here every target
modality's tokens attend to every other modality's tokens before anything is pooled. Over the
encoders' token states, so it combines with any sequence encoder and any head; with ``identity``
encoders it is MulT (the ``mosi/mult`` and ``mosei/mult`` presets).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...registry import FUSIONS
from ...schema import NonNegInt, PosInt, Prob
from ..blocks import CrossModalBlock, Pooling, as_sequence, pool, sinusoidal_encoding
from . import FusionOutput
from ._shared import require_modalities


def crossmodal_parameters(widths: list[int], d_model: int, ff_dim: int, cross_layers: int, self_layers: int) -> int:
    """Trainable parameters of ``crossmodal``: projections ``sum_m (H_m d + d)``; ``M (M - 1) L_c``
    cross-modal blocks of ``4 d^2 + 2 d f + 11 d + f``; ``M L_s`` self-attention layers at width
    ``w = (M - 1) d`` (feed-forward ``2 w``) of ``8 w^2 + 11 w``."""
    m = len(widths)
    w = (m - 1) * d_model
    proj = sum(h * d_model + d_model for h in widths)
    cross = m * (m - 1) * cross_layers * (4 * d_model ** 2 + 2 * d_model * ff_dim + 11 * d_model + ff_dim)
    return proj + cross + m * self_layers * (8 * w ** 2 + 11 * w)


@FUSIONS.register("crossmodal", states="sequences",
                  description="cross-modal transformer: each modality's tokens attend to every other's, pooled, concatenated (MulT-style)",
                  citation="Tsai et al. 2019, Multimodal Transformer for Unaligned Multimodal Language Sequences (ACL)")
class CrossModalFusion(nn.Module):
    """Cross-modal transformers for every ordered modality pair over the encoders' token sequences.

    Each modality's tokens ``[B, T_m, H_m]`` are projected to ``d`` and get sinusoidal positions:
    ``x_m = drop(W_m s_m + PE)``. For every target ``t`` and source ``s != t``,
    ``h_{s->t} = CrossBlock^{L_c}(query = x_t, key/value = x_s)`` ``[B, T_t, d]`` (pre-norm blocks,
    ``blocks.CrossModalBlock``; padded source steps are masked out of the keys);
    ``h_t = SelfTransformer^{L_s}([h_{s->t}]_s)`` ``[B, T_t, (M - 1) d]``;
    ``z_t = pool(h_t, mask_t)``; ``h = [z_t]_t`` ``[B, M (M - 1) d]``, targets in sorted order.
    Sequences may have different lengths (no alignment needed). Parameters: ``crossmodal_parameters``.

    Args:
        d_model: ``d`` (divisible by ``heads``).
        heads, ff_dim, dropout: of every block.
        cross_layers: ``L_c``, cross-modal blocks per (source, target) pair.
        self_layers: ``L_s``, self-attention layers over each target's concatenated outputs (0: none).
        pooling: how a target's sequence becomes one vector (``mean`` over valid steps, ``first``,
            ``last``, ``center`` for context windows; ``blocks.pool``).

    Raises:
        ValueError: fewer than two modalities, or states that are vectors (the encoder pooled them:
            ``encoder.pooling: none`` keeps the tokens).
    """

    def __init__(self, input_dims: dict[str, int], sequence: dict[str, bool] | None = None, d_model: PosInt = 32,
                 heads: PosInt = 4, ff_dim: PosInt = 64, dropout: Prob = 0.1, cross_layers: PosInt = 1,
                 self_layers: NonNegInt = 1, pooling: Pooling = "mean") -> None:
        super().__init__()
        self.order = require_modalities("crossmodal", input_dims)
        vectors = [m for m in self.order if not (sequence or {}).get(m, False)]
        if vectors:
            raise ValueError(f"crossmodal fuses token sequences, but the encoders give one vector for "
                             f"{', '.join(vectors)}; set model.encoder.pooling: none (transformer encoder) or "
                             f"model.encoder.name: identity on sequence data, or choose a fusion over vectors")
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        self.proj = nn.ModuleDict({m: nn.Linear(input_dims[m], d_model) for m in self.order})
        self.cross = nn.ModuleDict({
            f"{s}->{t}": nn.ModuleList(CrossModalBlock(d_model, heads, ff_dim, dropout) for _ in range(cross_layers))
            for t in self.order for s in self.order if s != t})
        width = (len(self.order) - 1) * d_model
        self.self_attn = nn.ModuleDict({
            t: nn.TransformerEncoder(nn.TransformerEncoderLayer(width, heads, 2 * width, dropout, batch_first=True,
                                                                norm_first=True),
                                     self_layers, enable_nested_tensor=False)
            for t in self.order}) if self_layers else None
        self.dropout = nn.Dropout(dropout)
        self.pooling = pooling
        self.output_dim = len(self.order) * width
        self.parts = None

    def forward(self, states: dict[str, Tensor], masks: dict[str, Tensor | None] | None = None) -> FusionOutput:
        """``states[m]`` ``[B, T_m, H_m]``, ``masks[m]`` ``[B, T_m]`` (True = real) -> ``[B, M (M - 1) d]``."""
        masks = masks or {}
        seqs: dict[str, Tensor] = {}
        valid: dict[str, Tensor | None] = {}
        for m in self.order:
            x, mask = as_sequence(states[m], masks.get(m))  # a fully padded row keeps one key (else NaN)
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
            h = torch.cat(parts, -1)  # [B, T_t, (M - 1) d]
            if self.self_attn is not None:
                h = self.self_attn[t](h, src_key_padding_mask=None if valid[t] is None else ~valid[t])
            pooled.append(pool(h, valid[t], self.pooling))
        return FusionOutput(torch.cat(pooled, -1))
