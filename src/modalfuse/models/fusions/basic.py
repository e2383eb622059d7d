"""The two seed papers' fusions: early concatenation, attention over modality states (sentiment paper),
and per-modality token attention followed by concatenation (Attend-Fusion). Late voting is the
``vote`` head over ``concat``'s per-modality parts (``models/heads.py``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from ...registry import FUSIONS
from ...schema import NonNegInt, PosInt, Prob
from ..blocks import ModalityTokenAttention, TokenSelfAttention, as_vector
from . import FusionOutput


@FUSIONS.register("concat", description="early fusion: concatenate the states",
                  citation="the sentiment paper's early fusion (A1)")
class ConcatFusion(nn.Module):
    """Early fusion ``h = [h_1; ...; h_M]``: ``[B, sum(H_m)]``, modalities in sorted order (token
    sequences are mean-pooled over their valid steps first). No parameters.

    ``parts`` are the modalities' slices, so decision-level heads (``vote``) can sit on it.
    """

    def __init__(self, input_dims: dict[str, int], sequence: dict[str, bool] | None = None) -> None:
        super().__init__()
        self.order = sorted(input_dims)
        self.parts = {m: input_dims[m] for m in self.order}
        self.output_dim = sum(input_dims.values())

    def forward(self, states: dict[str, Tensor], masks: dict[str, Tensor | None] | None = None) -> FusionOutput:
        masks = masks or {}
        return FusionOutput(torch.cat([as_vector(states[m], masks.get(m)) for m in self.order], dim=-1))


@FUSIONS.register("attention", description="modality states as tokens -> multi-head self-attention -> learned weighting",
                  citation="the sentiment paper's attention fusion (A2); Vaswani et al. 2017")
class AttentionFusion(nn.Module):
    """The modality states as a sequence of ``M`` tokens, fused by attention.

    ``x_m = W_m h_m + e_m`` (projection to ``d_model`` and a learned modality embedding);
    ``Z = LN(X + MHA(X, X, X))``, ``Z = LN(Z + FF(Z))``; ``a = softmax_m(w^T tanh(W z_m))``;
    ``h = sum_m a_m z_m`` ``[B, d_model]``.

    Args:
        d_model: token width and ``output_dim`` (divisible by ``heads``).
        heads: attention heads.
        dropout: on the attention and residual branches.
        uniform: replace the learned weighting ``a`` by ``1 / M`` (the sentiment paper's ablation
            "replace learned weights with uniform weights"; the registered ``attention-uniform``).

    Returns ``attention`` ``[B, 1, 1, M]``: the weights ``a`` over the sorted modalities.
    """

    def __init__(self, input_dims: dict[str, int], sequence: dict[str, bool] | None = None, d_model: PosInt = 64,
                 heads: PosInt = 4, dropout: Prob = 0.1, uniform: bool = False) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        self.order = sorted(input_dims)
        self.uniform = uniform
        self.proj = nn.ModuleDict({m: nn.Linear(input_dims[m], d_model) for m in self.order})
        self.modality_embedding = nn.Parameter(torch.zeros(len(self.order), d_model))
        self.attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.ReLU(), nn.Dropout(dropout),
                                nn.Linear(2 * d_model, d_model))
        self.norm2 = nn.LayerNorm(d_model)
        self.score = None if uniform else nn.Sequential(nn.Linear(d_model, d_model), nn.Tanh(),
                                                        nn.Linear(d_model, 1, bias=False))
        self.dropout = nn.Dropout(dropout)
        self.output_dim = d_model
        self.parts = None

    def forward(self, states: dict[str, Tensor], masks: dict[str, Tensor | None] | None = None) -> FusionOutput:
        masks = masks or {}
        tokens = torch.stack([self.proj[m](as_vector(states[m], masks.get(m))) for m in self.order], 1)
        tokens = tokens + self.modality_embedding
        mixed, _ = self.attn(tokens, tokens, tokens, need_weights=False)
        h = self.norm1(tokens + self.dropout(mixed))
        h = self.norm2(h + self.dropout(self.ff(h)))  # [B, M, d]
        if self.score is None:
            weights = h.new_full(h.shape[:2], 1.0 / h.shape[1])
        else:
            weights = self.score(h).squeeze(-1).softmax(-1)  # [B, M]
        state = (weights.unsqueeze(-1) * h).sum(1)
        return FusionOutput(state, weights[:, None, None, :])


def _uniform_attention(input_dims: dict[str, int], sequence: dict[str, bool] | None = None, d_model: PosInt = 64,
                       heads: PosInt = 4, dropout: Prob = 0.1) -> AttentionFusion:
    """``attention`` with the learned weighting replaced by uniform weights ``1 / M``."""
    return AttentionFusion(input_dims, sequence, d_model=d_model, heads=heads, dropout=dropout, uniform=True)


FUSIONS.register("attention-uniform", description="ablation: attention fusion with uniform weights 1/M instead of learned ones",
                 citation="the sentiment paper's uniform-weights ablation")(_uniform_attention)


@FUSIONS.register("attend", description="Attend-Fusion: self-attention over tokens cut from each modality's state, then concatenation",
                  citation="Awan et al. 2024, Attend-Fusion")
class AttendFusion(nn.Module):
    """What the attention attends over is ``tokens_from``:

    - ``projection`` (the ``yt8m/attend-fusion`` preset): per modality, the state ``[B, H_m]`` is cut
      into ``tokens`` tokens of ``H_m / tokens`` dims (plus a learned position embedding) and mixed
      by pre-norm self-attention (``blocks.TokenSelfAttention``). A video-level vector has no time
      axis, so each token is a learned group of the branch's features; attention re-weights the
      groups per video at ``4 d^2`` weights per layer where a dense layer of the same width costs
      ``(T d)^2``.
    - ``modality``: one token of ``token_dim`` dims per modality, projected from its state, and
      attention across the modalities (audio <-> rgb); each mixed token is projected back and added
      to its state (``blocks.ModalityTokenAttention``).

    Either way the attended states are concatenated: ``[B, sum(H_m)]``.

    Args:
        tokens_from: ``projection`` or ``modality`` (above).
        tokens: tokens per modality with ``projection`` (each ``H_m`` must divide by it, and the
            token size by ``heads``).
        token_dim: the token size with ``modality`` (must divide by ``heads``).
        heads, layers, ffn_mult: attention heads, stacked blocks, feed-forward width multiple (0: none).
        dropout: inside the attention blocks.
        final_norm: LayerNorm on each output token.
        attention: ``False`` removes the attention at matched widths (the Attend-Fusion paper's
            first ablation; registered as ``attend-none``): the states are concatenated as they are.

    Returns ``attention``, the last layer's weights averaged over heads: ``[B, M, T, T]`` (each
    modality's tokens) with ``projection``, ``[B, 1, M, M]`` (across modalities) with ``modality``.
    """

    def __init__(self, input_dims: dict[str, int], sequence: dict[str, bool] | None = None, tokens: PosInt = 8,
                 heads: PosInt = 4, layers: PosInt = 1, ffn_mult: NonNegInt = 2, dropout: Prob = 0.1,
                 final_norm: bool = False, attention: bool = True,
                 tokens_from: Literal["projection", "modality"] = "projection", token_dim: PosInt = 256) -> None:
        super().__init__()
        self.order = sorted(input_dims)
        self.blocks = self.across = None
        if attention and tokens_from == "modality":
            if len(self.order) < 2:
                raise ValueError(f"tokens_from=modality attends across modalities and needs 2 or more, got "
                                 f"{len(self.order)}; use tokens_from=projection for one modality")
            if token_dim % heads:
                raise ValueError(f"token_dim={token_dim} must divide by heads={heads}")
            self.across = ModalityTokenAttention([input_dims[m] for m in self.order], token_dim, heads, layers,
                                                 ffn_mult, dropout, final_norm)
        elif attention:
            self.blocks = nn.ModuleDict({
                m: TokenSelfAttention(input_dims[m], tokens, heads, layers, ffn_mult, dropout, final_norm)
                for m in self.order})
        self.output_dim = sum(input_dims.values())
        # Same layout as concat: the attended states side by side, one slice per modality.
        self.parts = {m: input_dims[m] for m in self.order}

    def forward(self, states: dict[str, Tensor], masks: dict[str, Tensor | None] | None = None) -> FusionOutput:
        masks = masks or {}
        vectors = [as_vector(states[m], masks.get(m)) for m in self.order]
        if self.across is not None:
            state, weights = self.across(vectors)
            return FusionOutput(state, weights.unsqueeze(1))
        if self.blocks is None:
            return FusionOutput(torch.cat(vectors, -1))
        outs, weights = zip(*(self.blocks[m](v) for m, v in zip(self.order, vectors)))
        return FusionOutput(torch.cat(outs, -1), torch.stack(weights, 1))


def _attend_none(input_dims: dict[str, int], sequence: dict[str, bool] | None = None) -> AttendFusion:
    """``attend`` with its attention removed: the branches' states concatenated at the same widths."""
    return AttendFusion(input_dims, sequence, attention=False)


FUSIONS.register("attend-none", description="ablation: Attend-Fusion with its attention removed at matched widths",
                 citation="Attend-Fusion's first ablation (Awan et al. 2024)")(_attend_none)
