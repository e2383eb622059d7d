"""Gated fusions: a learned, per-sample weighting of the modalities, per feature (GMU) or per
modality (a mixture of modality experts).

Unlike ``attention`` (which mixes the modality tokens by self-attention before weighting them), the
gate here sees all the states at once and only decides how much each modality contributes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...registry import FUSIONS
from ...schema import PosInt, Prob
from . import FusionOutput
from ._shared import pooled, require_modalities


def gmu_parameters(widths: list[int], hidden_dim: int) -> int:
    """Trainable parameters of ``gmu``: ``sum_m (H_m d + d)`` for the modality transforms plus
    ``G (sum_m H_m d + d)`` for the gates, ``G = 1`` for two modalities, else ``M``."""
    gates = 1 if len(widths) == 2 else len(widths)
    return sum(h * hidden_dim + hidden_dim for h in widths) + gates * (sum(widths) * hidden_dim + hidden_dim)


@FUSIONS.register("gmu", description="gated multimodal unit: tanh per modality, sigmoid gates from all states, gated sum",
                  citation="Arevalo et al. 2017, Gated Multimodal Units for Information Fusion (ICLR workshop)")
class GatedMultimodalUnit(nn.Module):
    """Gated Multimodal Unit.

    ``h'_m = tanh(W_m h_m + b_m)`` ``[B, d]`` and, from the concatenated states
    ``x = [h_1; ...; h_M]``:

    - two modalities (the paper's bimodal unit): ``z = sigmoid(W_z x + b_z)``,
      ``h = z * h'_1 + (1 - z) * h'_2`` (``*`` element-wise, modalities in sorted order);
    - ``M > 2`` (the paper's generalisation): ``z_m = sigmoid(W_{z_m} x + b_{z_m})``,
      ``h = sum_m z_m * h'_m``.

    Token sequences are mean-pooled over their valid steps first. Parameters: ``gmu_parameters``.

    Args:
        hidden_dim: ``d``, the fused state's width.
        dropout: on the fused state.
    """

    def __init__(self, input_dims: dict[str, int], sequence: dict[str, bool] | None = None, hidden_dim: PosInt = 64,
                 dropout: Prob = 0.1) -> None:
        super().__init__()
        self.order = require_modalities("gmu", input_dims)
        self.transform = nn.ModuleDict({m: nn.Linear(input_dims[m], hidden_dim) for m in self.order})
        total = sum(input_dims.values())
        n_gates = 1 if len(self.order) == 2 else len(self.order)
        self.gate = nn.Linear(total, n_gates * hidden_dim)
        self.n_gates = n_gates
        self.dropout = nn.Dropout(dropout)
        self.output_dim = hidden_dim
        self.parts = None

    def gates(self, vectors: list[Tensor]) -> Tensor:
        """The gate values ``[B, M, d]`` in ``[0, 1]``, modality ``m``'s row multiplying ``h'_m``
        (two modalities: ``z`` and ``1 - z``)."""
        z = torch.sigmoid(self.gate(torch.cat(vectors, -1))).view(vectors[0].shape[0], self.n_gates, -1)
        return torch.cat([z, 1 - z], 1) if self.n_gates == 1 else z

    def forward(self, states: dict[str, Tensor], masks: dict[str, Tensor | None] | None = None) -> FusionOutput:
        vectors = pooled(self.order, states, masks)
        h = torch.stack([torch.tanh(self.transform[m](v)) for m, v in zip(self.order, vectors)], 1)  # [B, M, d]
        return FusionOutput(self.dropout((self.gates(vectors) * h).sum(1)))


def moe_parameters(widths: list[int], hidden_dim: int) -> int:
    """Trainable parameters of ``modality-moe``: ``sum_m (H_m d + d)`` for the experts plus
    ``(sum_m H_m) M + M`` for the gate."""
    return sum(h * hidden_dim + hidden_dim for h in widths) + sum(widths) * len(widths) + len(widths)


@FUSIONS.register("modality-moe", description="mixture of modality experts: one expert per modality, a softmax gate per sample",
                  citation="Jacobs et al. 1991, Adaptive Mixtures of Local Experts (Neural Computation), one expert per modality")
class ModalityMixtureOfExperts(nn.Module):
    """A modality-level mixture of experts with a learned per-sample gate.

    Expert ``e_m = ReLU(W_m h_m + b_m)`` ``[B, d]`` sees only its modality; the gate sees all of them:
    ``g = softmax(W_g [h_1; ...; h_M] + b_g)`` ``[B, M]``, ``h = sum_m g_m e_m`` ``[B, d]``. Where a
    modality is uninformative for a sample the gate can switch it off, which a fixed concatenation
    cannot. Token sequences are mean-pooled over their valid steps first.

    Parameters: ``moe_parameters``. Returns ``attention`` ``[B, 1, 1, M]``: the gate ``g`` over the
    sorted modalities (sums to 1).

    Args:
        hidden_dim: ``d``, each expert's and the fused state's width.
        dropout: on the fused state.
    """

    def __init__(self, input_dims: dict[str, int], sequence: dict[str, bool] | None = None, hidden_dim: PosInt = 64,
                 dropout: Prob = 0.1) -> None:
        super().__init__()
        self.order = require_modalities("modality-moe", input_dims)
        self.experts = nn.ModuleDict({m: nn.Linear(input_dims[m], hidden_dim) for m in self.order})
        self.gate = nn.Linear(sum(input_dims.values()), len(self.order))
        self.dropout = nn.Dropout(dropout)
        self.output_dim = hidden_dim
        self.parts = None

    def forward(self, states: dict[str, Tensor], masks: dict[str, Tensor | None] | None = None) -> FusionOutput:
        vectors = pooled(self.order, states, masks)
        g = self.gate(torch.cat(vectors, -1)).softmax(-1)  # [B, M]
        experts = torch.stack([torch.relu(self.experts[m](v)) for m, v in zip(self.order, vectors)], 1)  # [B, M, d]
        return FusionOutput(self.dropout((g.unsqueeze(-1) * experts).sum(1)), g[:, None, None, :])
