"""Building blocks shared by encoders, fusions, heads and models (no registration, no configs)."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Pooling = Literal["mean", "first", "last", "center"]


def mlp(dims: list[int] | tuple[int, ...], dropout: float, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers ``dims[0] -> ... -> dims[-1]``, each followed by activation and dropout."""
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), activation(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


def masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over the time axis of ``[B, T, D]`` counting only steps where ``mask`` ``[B, T]`` is True."""
    if mask is None:
        return x.mean(1)
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(1) / w.sum(1).clamp_min(1.0)


def as_vector(x: Tensor, mask: Tensor | None) -> Tensor:
    """A state ``[B, H]`` as it is, or a token sequence ``[B, T, H]`` mean-pooled over its valid steps."""
    return masked_mean(x, mask) if x.dim() == 3 else x


def as_sequence(x: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """``[B, H]`` as a length-1 sequence ``[B, 1, H]``; a sequence keeps its mask, with every fully
    padded row given one valid step (attention over no key at all would be NaN)."""
    if x.dim() == 2:
        return x.unsqueeze(1), None
    if mask is not None:
        mask = mask.clone()
        mask[~mask.any(1), 0] = True
    return x, mask


def gaussian_noise(x: Tensor, sigma: float, training: bool) -> Tensor:
    """``x + sigma * N(0, 1)`` while training (a regularizer on the raw features); ``x`` otherwise."""
    if training and sigma > 0:
        return x + sigma * torch.randn_like(x)
    return x


def sinusoidal_encoding(length: int, dim: int, device: torch.device | None = None) -> Tensor:
    """The fixed encoding of "Attention is all you need": ``[length, dim]``, sin on even, cos on odd."""
    pos = torch.arange(length, dtype=torch.float32, device=device).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return pe


def pool(x: Tensor, mask: Tensor | None, how: Pooling) -> Tensor:
    """One state per sequence: ``[B, T, H]`` (+ mask ``[B, T]``, True = real) -> ``[B, H]``.

    ``mean`` averages the valid steps; ``first``/``last`` take the first/last valid step (padding may
    sit anywhere); ``center`` takes step ``T // 2`` whatever the mask says: the target segment of a
    context window ``[2c + 1, D]`` built around it.
    """
    b, t, _ = x.shape
    if how == "mean":
        return masked_mean(x, mask)
    if how == "center":
        return x[:, t // 2]
    steps = torch.arange(t, device=x.device).expand(b, t)
    if mask is None:
        idx = torch.full((b,), 0 if how == "first" else t - 1, device=x.device, dtype=torch.long)
    elif how == "first":
        idx = torch.where(mask, steps, t).min(1).values.clamp_max(t - 1)
    else:
        idx = torch.where(mask, steps, -1).max(1).values.clamp_min(0)
    return x[torch.arange(b, device=x.device), idx]


def output_layer(input_dim: int, num_outputs: int, multilabel: bool) -> nn.Linear:
    """The final linear layer ``[B, H] -> [B, C]``.

    For multi-label tasks its bias starts at ``logit(1 / C)``: with 3862 mostly-absent classes, a
    zero bias predicts 0.5 everywhere and the first hundreds of steps only learn the label prior
    (at lr 1e-4 that is most of a 20-epoch budget on a few thousand videos).
    """
    layer = nn.Linear(input_dim, num_outputs)
    if multilabel and num_outputs > 1:
        nn.init.constant_(layer.bias, -math.log(num_outputs - 1))
    return layer


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
        self.gate = ContextGating(dim) if gated else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return x + self.drop(self.gate(self.fc2(self.drop(F.relu(self.fc1(self.norm(x)))))))


class TokenSelfAttention(nn.Module):
    """Self-attention over ``T`` tokens cut from one vector (Attend-Fusion's attention).

    Args:
        input_dim: the vector's size; must be ``tokens * token_dim``.
        tokens: number of tokens ``T``.
        heads: attention heads (``token_dim`` must divide by it).
        layers: stacked pre-norm attention (+ feed-forward) blocks.
        ffn_mult: token-wise feed-forward width as a multiple of ``token_dim`` (0: none).
        dropout: dropout on the attention weights and the residual branches.
        final_norm: LayerNorm on each output token, as pre-norm transformers end.
    """

    def __init__(self, input_dim: int, tokens: int, heads: int, layers: int, ffn_mult: int, dropout: float,
                 final_norm: bool = False) -> None:
        super().__init__()
        if input_dim % tokens or (input_dim // tokens) % heads:
            raise ValueError(f"a state of {input_dim} dims must split into tokens={tokens} tokens whose size "
                             f"divides by heads={heads}")
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


class ModalityTokenAttention(nn.Module):
    """One token per modality, mixed by self-attention across the modalities (every modality attends
    to every other: audio <-> rgb), added back to each modality's state.

    Each state ``[B, H_m]`` is projected to one token of ``token_dim`` dims; the ``M`` tokens go
    through ``TokenSelfAttention`` (whose position embedding is here a learned modality embedding);
    each mixed token is projected back to ``H_m`` and added to its state, so the output keeps the
    states' layout and widths ``[B, sum(H_m)]``.
    """

    def __init__(self, input_dims: list[int], token_dim: int, heads: int, layers: int, ffn_mult: int,
                 dropout: float, final_norm: bool = False) -> None:
        super().__init__()
        self.dims = list(input_dims)
        self.down = nn.ModuleList(nn.Linear(h, token_dim) for h in self.dims)
        self.mixer = TokenSelfAttention(len(self.dims) * token_dim, len(self.dims), heads, layers, ffn_mult, dropout,
                                        final_norm)
        self.up = nn.ModuleList(nn.Linear(token_dim, h) for h in self.dims)
        self.output_dim = sum(self.dims)

    def forward(self, vectors: list[Tensor]) -> tuple[Tensor, Tensor]:
        """``M`` vectors ``[B, H_m]`` -> (``[B, sum(H_m)]``, head-averaged weights ``[B, M, M]``)."""
        tokens = torch.cat([down(v) for down, v in zip(self.down, vectors)], -1)
        mixed, weights = self.mixer(tokens)
        parts = mixed.view(mixed.shape[0], len(self.dims), -1).unbind(1)
        return torch.cat([v + up(t) for v, up, t in zip(vectors, self.up, parts)], -1), weights


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
