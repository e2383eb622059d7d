"""Fusions combine the per-modality states into one state for the head.

Every fusion is registered in ``FUSIONS`` and has the same contract:

- constructor ``(input_dims: dict[str, int], sequence: dict[str, bool], **keys)``: each modality's
  state width ``H_m`` and whether its state is a token sequence ``[B, T_m, H_m]`` (else ``[B, H_m]``);
  the keyword arguments are the config keys (``modalfuse list fusions``). A combination that cannot
  work raises ``ValueError`` with the reason, which the builder reports as a config error.
- attributes ``output_dim`` (``F``) and ``parts``: ``{m: H_m}`` when the fused state is the
  modalities' states side by side in sorted order (decision-level heads such as ``vote`` need
  that), else ``None``.
- ``forward(states, masks) -> FusionOutput``: ``states[m]`` as above, ``masks[m]`` ``[B, T_m]``
  (True = real step) or ``None``; modalities are always taken in sorted order.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class FusionOutput:
    """What every fusion returns.

    Attributes:
        state: the fused state ``[B, F]``.
        attention: optional weights for inspection, always ``[B, G, Q, K]``: ``G`` groups (one per
            modality, sorted, for attention inside each modality; 1 for attention across modalities),
            ``Q`` queries and ``K`` keys (modality weights of a pooling attention are ``[B, 1, 1, M]``).
    """

    state: Tensor
    attention: Tensor | None = None


# Registering modules (imported for their side effect by ``modalfuse.plugins``).
MODULES = ("modalfuse.models.fusions.basic", "modalfuse.models.fusions.tensor", "modalfuse.models.fusions.gated",
           "modalfuse.models.fusions.bilinear", "modalfuse.models.fusions.crossmodal")
