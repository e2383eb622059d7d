"""Tensor fusions: the outer product of the modalities' ``[h; 1]`` vectors (TFN), and its low-rank
factorisation (LMF).

Both model every interaction order at once: because each vector is extended by a constant 1, the
outer product holds the unimodal terms ``h_m``, every bimodal product ``h_a h_b`` and the trimodal
products ``h_a h_b h_c`` side by side. TFN projects that tensor with a full weight tensor, whose size
is the product of the widths; LMF constrains the weight to rank ``r`` and never builds the tensor.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ...registry import FUSIONS
from ...schema import PosInt, Prob
from . import FusionOutput
from ._shared import pooled, require_modalities


def with_one(x: Tensor) -> Tensor:
    """``[B, H]`` -> ``[B, H + 1]``: the vector with a constant 1 appended (``[h; 1]``)."""
    return torch.cat([x, x.new_ones(x.shape[0], 1)], -1)


def tfn_parameters(widths: list[int], output_dim: int, proj_dim: int | None = None) -> int:
    """Trainable parameters of ``tfn`` for state widths ``H_m``: ``sum_m (H_m p + p)`` for the optional
    projections to ``p = proj_dim``, plus ``prod_m (p_m + 1) * F + F`` for the tensor's projection."""
    dims = [proj_dim] * len(widths) if proj_dim else list(widths)
    proj = sum(h * proj_dim + proj_dim for h in widths) if proj_dim else 0
    return proj + math.prod(d + 1 for d in dims) * output_dim + output_dim


@FUSIONS.register("tfn", description="tensor fusion: outer product of the [h; 1] vectors, projected (every interaction order)",
                  citation="Zadeh et al. 2017, Tensor Fusion Network for Multimodal Sentiment Analysis (EMNLP)")
class TensorFusion(nn.Module):
    """Tensor Fusion Network's fusion layer.

    ``Z = [h_1; 1] (x) [h_2; 1] (x) ... (x) [h_M; 1]`` (outer product, modalities in sorted order,
    flattened row-major to ``prod_m (H_m + 1)`` values); ``h = drop(ReLU(W vec(Z) + b))`` ``[B, F]``.
    Token sequences are mean-pooled over their valid steps first.

    Parameters (``tfn_parameters``): ``prod_m (H_m + 1) * F + F``, plus ``sum_m (H_m p + p)`` with
    ``proj_dim = p`` (then ``H_m`` is ``p`` in the product). The tensor costs ``B * prod_m (H_m + 1)``
    activations.

    Args:
        output_dim: ``F``, the fused state's width.
        proj_dim: first project each state linearly to this width (``None``: use the
            states as they are). The product grows as ``(p + 1)^M``: this is the knob that keeps wide
            states affordable (TFN's own modality subnetworks reduce to 32-128 dims).
        dropout: on the fused state.
        max_parameters: refuse a configuration needing more trainable parameters than this (the
            weight tensor of three 256-d states alone is 1.7e7 * F).

    Raises:
        ValueError: fewer than two modalities, or more than ``max_parameters`` parameters (the
            message says how many and what to set).
    """

    def __init__(self, input_dims: dict[str, int], sequence: dict[str, bool] | None = None, output_dim: PosInt = 64,
                 proj_dim: PosInt | None = None, dropout: Prob = 0.1, max_parameters: PosInt = 50_000_000) -> None:
        super().__init__()
        self.order = require_modalities("tfn", input_dims)
        widths = [input_dims[m] for m in self.order]
        need = tfn_parameters(widths, output_dim, proj_dim)
        if need > max_parameters:
            dims = " x ".join(str((proj_dim or h) + 1) for h in widths)
            raise ValueError(f"tfn over {len(widths)} states of widths {widths} would need {need:,} parameters "
                             f"(tensor {dims} x output_dim {output_dim}), above max_parameters={max_parameters:,}; "
                             f"set proj_dim (e.g. 16), fewer modalities, or raise max_parameters")
        self.proj = nn.ModuleDict({m: nn.Linear(input_dims[m], proj_dim) for m in self.order}) if proj_dim else None
        self.out = nn.Linear(math.prod((proj_dim or h) + 1 for h in widths), output_dim)
        self.dropout = nn.Dropout(dropout)
        self.output_dim = output_dim
        self.parts = None

    def tensor(self, vectors: list[Tensor]) -> Tensor:
        """``vec(Z)`` ``[B, prod_m (H_m + 1)]`` of the (projected) vectors ``[B, H_m]``, in order."""
        z = with_one(vectors[0])
        for v in vectors[1:]:
            z = (z.unsqueeze(-1) * with_one(v).unsqueeze(1)).flatten(1)
        return z

    def forward(self, states: dict[str, Tensor], masks: dict[str, Tensor | None] | None = None) -> FusionOutput:
        vectors = pooled(self.order, states, masks)
        if self.proj is not None:
            vectors = [self.proj[m](v) for m, v in zip(self.order, vectors)]
        return FusionOutput(self.dropout(torch.relu(self.out(self.tensor(vectors)))))


def lmf_parameters(widths: list[int], output_dim: int, rank: int) -> int:
    """Trainable parameters of ``lmf``: ``r * sum_m (H_m + 1) * F + F``."""
    return rank * sum(h + 1 for h in widths) * output_dim + output_dim


@FUSIONS.register("lmf", description="low-rank multimodal fusion: TFN with its weight tensor factorised to rank r",
                  citation="Liu et al. 2018, Efficient Low-rank Multimodal Fusion with Modality-Specific Factors (ACL)")
class LowRankFusion(nn.Module):
    """Low-rank Multimodal Fusion.

    TFN's weight tensor constrained to ``W = sum_{i=1..r} w_1^(i) (x) ... (x) w_M^(i)`` (each
    ``w_m^(i)`` ``[H_m + 1, F]``, the outer product taken per output unit) lets the projection skip
    the tensor: ``h = drop(ReLU(sum_i prod_m (w_m^(i)^T [h_m; 1]) + b))`` ``[B, F]``. With two
    modalities, rank ``min_m (H_m + 1)`` represents every TFN weight (one SVD per output unit); the
    paper's extra per-rank weights are a scale each factor absorbs, so they are left out.

    Parameters (``lmf_parameters``): ``r * sum_m (H_m + 1) * F + F``: linear, not multiplicative, in
    the widths.

    Args:
        output_dim: ``F``.
        rank: ``r`` (the paper finds 4 enough on CMU-MOSI).
        dropout: on the fused state.
    """

    def __init__(self, input_dims: dict[str, int], sequence: dict[str, bool] | None = None, output_dim: PosInt = 64,
                 rank: PosInt = 4, dropout: Prob = 0.1) -> None:
        super().__init__()
        self.order = require_modalities("lmf", input_dims)
        # Each factor's output ~ unit scale, so the product of M of them neither vanishes nor explodes.
        self.factors = nn.ParameterDict({
            m: nn.Parameter(torch.randn(rank, input_dims[m] + 1, output_dim) / math.sqrt(input_dims[m] + 1))
            for m in self.order})
        self.bias = nn.Parameter(torch.zeros(output_dim))
        self.dropout = nn.Dropout(dropout)
        self.output_dim = output_dim
        self.parts = None

    def project(self, vectors: list[Tensor]) -> Tensor:
        """``sum_i prod_m (w_m^(i)^T [h_m; 1]) + b`` ``[B, F]`` (before the activation)."""
        prod = None
        for m, v in zip(self.order, vectors):
            f = torch.einsum("bh,rhf->brf", with_one(v), self.factors[m])  # [B, r, F]
            prod = f if prod is None else prod * f
        return prod.sum(1) + self.bias

    def forward(self, states: dict[str, Tensor], masks: dict[str, Tensor | None] | None = None) -> FusionOutput:
        return FusionOutput(self.dropout(torch.relu(self.project(pooled(self.order, states, masks)))))
