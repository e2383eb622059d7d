"""An example modalfuse plugin: the ``gated-sum`` fusion.

Importing this module registers the fusion in ``modalfuse.registry.FUSIONS``; modalfuse imports it
through the ``modalfuse.plugins`` entry point once the package is installed, or ad hoc with
``modalfuse --import modalfuse_gated_sum ...`` / ``MODALFUSE_PLUGINS=modalfuse_gated_sum``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from modalfuse.models.fusions import FusionOutput
from modalfuse.registry import FUSIONS


def _pool(x: Tensor, mask: Tensor | None) -> Tensor:
    """``[B, H]`` as it is; a token sequence ``[B, T, H]`` averaged over its real steps (mask True)."""
    if x.dim() == 2:
        return x
    if mask is None:
        return x.mean(1)
    w = mask.unsqueeze(-1).to(x.dtype)
    return (x * w).sum(1) / w.sum(1).clamp_min(1.0)


@FUSIONS.register("gated-sum", description="per-modality projection, weighted by a learned softmax gate, summed "
                                           "(example plugin)")
class GatedSumFusion(nn.Module):
    """``z_m = W_m h_m`` (``[B, d_model]``), gate logits ``s_m = v_m^T h_m``, ``a = softmax_m(s)``,
    fused state ``h = sum_m a_m z_m`` ``[B, d_model]``; modalities in sorted order.

    Args:
        input_dims: each modality's state width ``H_m`` (given by modalfuse from the encoders).
        sequence: whether each modality's state is a token sequence (given by modalfuse).
        d_model: the fused width (the config key ``fusion.d_model``).

    Returns ``FusionOutput(state [B, d_model], attention [B, 1, 1, M])``: the gate weights ``a``.
    """

    def __init__(self, input_dims: dict[str, int], sequence: dict[str, bool] | None = None, d_model: int = 32) -> None:
        super().__init__()
        self.order = sorted(input_dims)
        self.proj = nn.ModuleDict({m: nn.Linear(input_dims[m], d_model) for m in self.order})
        self.gate = nn.ModuleDict({m: nn.Linear(input_dims[m], 1) for m in self.order})
        self.output_dim = d_model
        self.parts = None  # the fused state is not the modalities side by side

    def forward(self, states: dict[str, Tensor], masks: dict[str, Tensor | None] | None = None) -> FusionOutput:
        masks = masks or {}
        h = {m: _pool(states[m], masks.get(m)) for m in self.order}
        z = torch.stack([self.proj[m](h[m]) for m in self.order], 1)  # [B, M, d_model]
        a = torch.softmax(torch.cat([self.gate[m](h[m]) for m in self.order], 1), dim=1)  # [B, M]
        return FusionOutput((a.unsqueeze(-1) * z).sum(1), attention=a[:, None, None, :])
