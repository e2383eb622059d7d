"""The per-modality transformer encoder of the sentiment paper.

``[B, T, D]`` (or ``[B, D]``, a length-1 sequence) -> linear projection -> sinusoidal positional
encoding -> ``nn.TransformerEncoder`` -> masked pooling -> ``[B, d_model]``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from ..config import Params
from ..registry import ENCODERS
from .encoders import gaussian_noise, masked_mean

Pooling = Literal["mean", "first", "last", "center"]


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


class TransformerParams(Params):
    d_model: int = Field(64, ge=2)
    layers: int = Field(2, ge=0)  # 0: projection + positional encoding + pooling only
    heads: int = Field(4, ge=1)
    ff_dim: int = Field(128, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    pooling: Pooling = "mean"
    input_dropout: float = Field(0.0, ge=0, lt=1)  # on the raw features, before the projection
    input_noise: float = Field(0.0, ge=0)  # std of Gaussian noise added to the raw features in training


@ENCODERS.register("transformer", params=TransformerParams,
                   description="projection -> sinusoidal positions -> transformer encoder -> masked pooling")
class ModalityTransformer(nn.Module):
    """A transformer over one modality's sequence, pooled to one state.

    Args:
        input_dim: feature size ``D``.
        seq_len: padded length ``T`` (``None`` for one vector per sample); any length works.
        d_model: model width, also ``output_dim``; must be divisible by ``heads``.
        layers, heads, ff_dim, dropout: the ``nn.TransformerEncoder``'s depth, attention heads,
            feed-forward size and dropout.
        pooling: ``mean`` over valid steps, ``first``, ``last`` or ``center`` (see ``pool``).
        input_dropout: dropout on the input features.
        input_noise: standard deviation of Gaussian noise added to the input features while
            training (features are z-scored by default, so this is in units of one feature's std).
    """

    def __init__(self, input_dim: int, seq_len: int | None = None, d_model: int = 64, layers: int = 2,
                 heads: int = 4, ff_dim: int = 128, dropout: float = 0.1, pooling: Pooling = "mean",
                 input_dropout: float = 0.0, input_noise: float = 0.0) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"encoder d_model ({d_model}) must be divisible by heads ({heads})")
        self.input_dropout = nn.Dropout(input_dropout)
        self.input_noise = input_noise
        self.proj = nn.Linear(input_dim, d_model)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, heads, ff_dim, dropout, batch_first=True)
        # enable_nested_tensor=False: the nested fast path drops fully padded steps and changes shapes.
        self.encoder = (nn.TransformerEncoder(layer, layers, enable_nested_tensor=False) if layers
                        else nn.Identity())
        self.pooling = pooling
        self.output_dim = d_model

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[B, T, D]`` or ``[B, D]``; ``mask`` ``[B, T]`` bool (True = real) -> ``[B, d_model]``."""
        if x.dim() == 2:
            x, mask = x.unsqueeze(1), None
        h = self.proj(self.input_dropout(gaussian_noise(x, self.input_noise, self.training)))
        h = self.dropout(h + sinusoidal_encoding(h.shape[1], h.shape[2], h.device))
        if mask is not None:
            # A sequence with no valid step would make attention all -inf (NaN); let it see step 0.
            mask = mask.clone()
            mask[~mask.any(1), 0] = True
        if isinstance(self.encoder, nn.TransformerEncoder):
            h = self.encoder(h, src_key_padding_mask=None if mask is None else ~mask)
        return pool(h, mask, self.pooling)
