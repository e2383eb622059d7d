"""What "a modality is missing" means in modalfuse, in one place (docs/missing_modality.md).

A missing modality is its **encoder state zeroed** for that sample: the encoders of the other
modalities, the fusion and the head run as always. Everything that removes a modality uses this:

- training-time modality dropout (``model.modality_dropout``: ``drop_modalities``);
- the modality ablation of ``modalfuse analyze`` (``analysis.ablation``: a modality missing for every
  sample, through ``missing_modalities``);
- the ``missing`` corruption of ``modalfuse robustness`` (a fraction of samples, the same way);
- MulT (the ``mosi/mult`` preset): its encoders are ``identity``, so its state is its input sequence.

A model without per-modality encoders (a plugin's) gets the modality's input features zeroed instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn


def zero_states(states: dict[str, Tensor], keep: dict[str, Tensor | bool]) -> dict[str, Tensor]:
    """The states with modality ``m`` zeroed where ``keep[m]`` is False.

    Args:
        states: ``{m: [B, ...]}`` encoder states (or inputs).
        keep: ``{m: [B] bool}`` per sample, or ``False`` for every sample; modalities not named are kept.
    """
    out = dict(states)
    for m, k in keep.items():
        x = states[m]
        factor = k.to(x.dtype).view(x.shape[0], *([1] * (x.dim() - 1))) if isinstance(k, Tensor) else float(k)
        out[m] = x * factor
    return out


def drop_modalities(states: dict[str, Tensor], p: float) -> dict[str, Tensor]:
    """Zero each modality's state per sample with probability ``p``, keeping at least one per sample.

    Args:
        states: ``{m: [B, ...]}``, iterated in sorted order.
        p: drop probability (training-time modality dropout).
    """
    names = sorted(states)
    first = states[names[0]]
    b = first.shape[0]
    keep = torch.rand(b, len(names), device=first.device) >= p
    # Guarantee one kept modality per sample: pick one at random where all were dropped.
    none = ~keep.any(1)
    if none.any():
        pick = torch.randint(len(names), (b,), device=first.device)
        keep[none, pick[none]] = True
    return zero_states(states, {m: keep[:, i] for i, m in enumerate(names)})


@contextmanager
def missing_modalities(model: nn.Module, keep: dict[str, Tensor | bool]) -> Iterator[Callable[[dict[str, Tensor]], dict[str, Tensor]]]:
    """While active, every per-modality encoder of ``model`` (``<module>.encoders[m]``, members of an
    ensemble included) has its output zeroed where ``keep[m]`` is False.

    Yields:
        ``on_inputs(features) -> features``, to apply to the model's inputs: it zeroes the inputs of
        the modalities ``model`` has no encoder for (a plugin's model), and passes the rest through.
    """
    handles = []
    hooked: set[str] = set()
    for module in model.modules():
        encoders = getattr(module, "encoders", None)
        if not isinstance(encoders, nn.ModuleDict):
            continue
        for m, k in keep.items():
            if m in encoders:
                def hook(_mod: nn.Module, _inp: Any, out: Tensor, m: str = m, k: Any = k) -> Tensor:
                    return zero_states({m: out}, {m: k})[m]

                handles.append(encoders[m].register_forward_hook(hook))
                hooked.add(m)
    rest = {m: k for m, k in keep.items() if m not in hooked}

    def on_inputs(features: dict[str, Tensor]) -> dict[str, Tensor]:
        return zero_states(features, {m: k for m, k in rest.items() if m in features}) if rest else features

    try:
        yield on_inputs
    finally:
        for h in handles:
            h.remove()
