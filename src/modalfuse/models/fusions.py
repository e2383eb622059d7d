"""Fusions combine the per-modality states ``dict[str, Tensor[B, H_m]]``, iterated in sorted order.

A *feature-level* fusion returns ``[B, output_dim]`` for the head. A *decision-level* fusion
(``decision_level = True``) holds its own per-modality classifiers and returns a dict with
``logits`` (the fused decision) and ``aux_logits`` (per-modality logits that the loss trains).
Constructors take ``input_dims: dict[str, int]``, ``num_outputs`` and flat keyword arguments.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import Params
from ..registry import FUSIONS


class ConcatParams(Params):
    pass


@FUSIONS.register("concat", params=ConcatParams, description="early fusion: concatenate the states")
class ConcatFusion(nn.Module):
    """Early fusion: ``[B, sum(H_m)]``, modalities in sorted order."""

    decision_level = False

    def __init__(self, input_dims: dict[str, int], num_outputs: int | None = None) -> None:
        super().__init__()
        self.order = sorted(input_dims)
        self.output_dim = sum(input_dims.values())

    def forward(self, states: dict[str, Tensor]) -> Tensor:
        return torch.cat([states[m] for m in self.order], dim=-1)
