"""Encoders map one modality ``[B, D]`` or ``[B, T, D]`` (+ mask ``[B, T]``) to a state ``[B, H]``.

Every encoder exposes ``output_dim``. Registered constructors take flat keyword arguments:
``input_dim`` and ``seq_len`` come from the data, the rest from the config's encoder section.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from ..config import Params
from ..registry import ENCODERS


def masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over the time axis of ``[B, T, D]`` counting only steps where ``mask`` ``[B, T]`` is True."""
    if mask is None:
        return x.mean(1)
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(1) / w.sum(1).clamp_min(1.0)


def gaussian_noise(x: Tensor, sigma: float, training: bool) -> Tensor:
    """``x + sigma * N(0, 1)`` while training (a regularizer on the raw features); ``x`` otherwise."""
    if training and sigma > 0:
        return x + sigma * torch.randn_like(x)
    return x


def mlp(dims: list[int], dropout: float, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers ``dims[0] -> ... -> dims[-1]``, each followed by activation and dropout."""
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), activation(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class MLPParams(Params):
    hidden_dims: list[int] = Field(default_factory=lambda: [64])
    dropout: float = Field(0.1, ge=0, lt=1)
    input_dropout: float = Field(0.0, ge=0, lt=1)  # on the raw features
    input_noise: float = Field(0.0, ge=0)  # std of Gaussian noise added to the raw features in training


@ENCODERS.register("mlp", params=MLPParams, description="(masked mean over time, then) an MLP")
class MLPEncoder(nn.Module):
    """A vector, or the masked mean of a sequence, through an MLP.

    Args:
        input_dim: feature size ``D``.
        hidden_dims: sizes of the hidden layers; the last is ``output_dim`` (empty: identity).
        dropout: dropout after each layer.
        input_dropout: dropout on the input features.
        input_noise: standard deviation of Gaussian noise added to the input features while
            training (features are z-scored by default, so this is in units of one feature's std).
    """

    def __init__(self, input_dim: int, hidden_dims: list[int], dropout: float = 0.1, seq_len: int | None = None,
                 input_dropout: float = 0.0, input_noise: float = 0.0) -> None:
        super().__init__()
        self.input_dropout = nn.Dropout(input_dropout)
        self.input_noise = input_noise
        self.net = mlp([input_dim, *hidden_dims], dropout)
        self.output_dim = hidden_dims[-1] if hidden_dims else input_dim

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``[B, D]`` or ``[B, T, D]`` -> ``[B, output_dim]``."""
        if x.dim() == 3:
            x = masked_mean(x, mask)
        return self.net(self.input_dropout(gaussian_noise(x, self.input_noise, self.training)))
