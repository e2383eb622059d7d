"""Low-rank bilinear pooling: every modality projected to a shared space, multiplied element-wise.

A full bilinear map ``z_o = h_1^T W_o h_2`` costs ``H_1 H_2`` weights per output; factorising each
``W_o`` to rank ``k`` (``W_o = U_o V_o^T``) gives ``z = SumPool_k(U^T h_1 * V^T h_2)``: MFB with
``k > 1``, MLB with ``k = 1`` and ``tanh`` on both projections. With ``M > 2`` modalities the
element-wise product runs over all of them (a rank-``k`` factorised multilinear map).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import FUSIONS
from ...schema import PosInt, Prob
from . import FusionOutput
from ._shared import pooled, require_modalities

# sqrt has an infinite slope at 0; shifting by eps keeps the power normalisation's gradient finite.
_EPS = 1e-6


def bilinear_parameters(widths: list[int], output_dim: int, factors: int) -> int:
    """Trainable parameters of ``mfb``/``mlb``: ``sum_m (H_m k o + k o)`` (the projections ``U_m``)."""
    return sum(h * factors * output_dim + factors * output_dim for h in widths)


@FUSIONS.register("mfb", description="low-rank bilinear pooling (MFB): projections multiplied element-wise, sum-pooled over k factors, normalised",
                  citation="Yu et al. 2017, Multi-modal Factorized Bilinear Pooling (ICCV)")
class LowRankBilinear(nn.Module):
    """Multi-modal factorised bilinear pooling.

    ``p_m = act(U_m^T h_m + b_m)`` ``[B, k o]``; ``j = drop(prod_m p_m)`` (element-wise);
    ``z_i = sum_{j=1..k} j_{(i-1) k + j}`` (sum pooling over ``k`` factors) ``[B, o]``; with
    ``normalize``: ``z <- sign(z) (sqrt(|z| + eps) - sqrt(eps))`` (power normalisation), then
    ``z <- z / ||z||_2``. Token sequences are mean-pooled over their valid steps first.

    Parameters (``bilinear_parameters``): ``sum_m (H_m k o + k o)``. MLB's output projection ``P``
    is the head's first layer here.

    Args:
        output_dim: ``o``, the fused state's width.
        factors: ``k``, the rank of each output's bilinear form (MFB: 5; MLB: 1).
        activation: on each projection (``tanh`` in MLB, ``none`` in MFB).
        normalize: MFB's power and L2 normalisation of the pooled vector.
        dropout: on the element-wise product (MFB's place for it).
    """

    def __init__(self, input_dims: dict[str, int], sequence: dict[str, bool] | None = None, output_dim: PosInt = 64,
                 factors: PosInt = 5, activation: Literal["none", "tanh"] = "none", normalize: bool = True,
                 dropout: Prob = 0.1) -> None:
        super().__init__()
        self.order = require_modalities("mfb/mlb", input_dims)
        self.proj = nn.ModuleDict({m: nn.Linear(input_dims[m], factors * output_dim) for m in self.order})
        self.factors = factors
        self.activation = activation
        self.normalize = normalize
        self.dropout = nn.Dropout(dropout)
        self.output_dim = output_dim
        self.parts = None

    def forward(self, states: dict[str, Tensor], masks: dict[str, Tensor | None] | None = None) -> FusionOutput:
        joint = None
        for m, v in zip(self.order, pooled(self.order, states, masks)):
            p = self.proj[m](v)
            if self.activation == "tanh":
                p = torch.tanh(p)
            joint = p if joint is None else joint * p
        z = self.dropout(joint).view(joint.shape[0], self.output_dim, self.factors).sum(-1)  # [B, o]
        if self.normalize:
            z = torch.sign(z) * (torch.sqrt(z.abs() + _EPS) - _EPS ** 0.5)
            z = F.normalize(z, dim=-1)
        return FusionOutput(z)


def _mlb(input_dims: dict[str, int], sequence: dict[str, bool] | None = None, output_dim: PosInt = 64,
         dropout: Prob = 0.1) -> LowRankBilinear:
    """MLB: ``z = tanh(U_1^T h_1 + b_1) * ... * tanh(U_M^T h_M + b_M)`` ``[B, o]`` (``mfb`` with
    ``factors: 1``, ``activation: tanh``, no normalisation)."""
    return LowRankBilinear(input_dims, sequence, output_dim=output_dim, factors=1, activation="tanh",
                           normalize=False, dropout=dropout)


FUSIONS.register("mlb", description="low-rank bilinear pooling (MLB): tanh projections multiplied element-wise (rank 1)",
                 citation="Kim et al. 2017, Hadamard Product for Low-rank Bilinear Pooling (ICLR)")(_mlb)
