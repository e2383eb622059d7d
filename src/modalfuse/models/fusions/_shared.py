"""Checks and small helpers shared by the fusion-zoo modules (no registration)."""

from __future__ import annotations

from torch import Tensor

from ..blocks import as_vector


def require_modalities(fusion: str, input_dims: dict[str, int], at_least: int = 2) -> list[str]:
    """The sorted modality names; fewer than ``at_least`` is a ``ValueError`` naming the fusion.

    A product, gate or cross-attention over one modality is no fusion at all: a unimodal baseline
    uses ``concat``.
    """
    order = sorted(input_dims)
    if len(order) < at_least:
        raise ValueError(f"{fusion} fuses {at_least} or more modalities, got {len(order)} "
                         f"({', '.join(order) or 'none'}); a unimodal model uses fusion 'concat'")
    return order


def pooled(order: list[str], states: dict[str, Tensor], masks: dict[str, Tensor | None] | None) -> list[Tensor]:
    """Each modality's state as a vector ``[B, H_m]`` in ``order`` (token sequences mean-pooled over
    their valid steps), for the fusions that combine one vector per modality."""
    masks = masks or {}
    return [as_vector(states[m], masks.get(m)) for m in order]
