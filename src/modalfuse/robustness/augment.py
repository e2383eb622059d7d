"""Training with the robustness corruptions as augmentation (``train.augment``), and the training
split's per-feature standard deviation that ``noise`` is measured against.

``train.augment: [{name: noise, level: 10, modality: all, p: 0.5}, {name: shift, level: 2, modality: audio}]``
corrupts, in every training batch, a random fraction ``p`` of the samples with each listed corruption
at its level, on the device, just before the forward pass. Draws are seeded by (train.seed, epoch,
step), so a resumed run sees the same corruptions. ``missing`` is ``model.modality_dropout``.
"""

from __future__ import annotations

import zlib
from typing import Any

import torch
from torch import Tensor

from .corruptions import ALL, CORRUPTIONS, Draws


@torch.no_grad()
def feature_std(ds: Any, device: torch.device, batch_size: int = 1024) -> dict[str, Tensor]:
    """Per-feature standard deviation of a split over its samples (and real steps of sequences).

    Args:
        ds: a split (in-memory or streamed); read once, in order.
        device: where the sums are kept and the result lives.

    Returns:
        ``{modality: std [D]}`` (float32; a constant feature has std 0, so noise leaves it alone).
    """
    from ..datasets.loader import eval_batches, move_batch

    sums: dict[str, list[Tensor]] = {}
    for batch in eval_batches(ds, batch_size):
        batch = move_batch(batch, device)
        for m, x in batch["features"].items():
            x = x.double()
            mask = batch["masks"].get(m)
            if x.dim() == 3:
                w = mask.unsqueeze(-1).double() if mask is not None else torch.ones_like(x[..., :1])
                x, n = (x * w).flatten(0, 1), w.sum()
                x2 = (x * x).sum(0)
            else:
                n, x2 = torch.tensor(float(x.shape[0]), device=device, dtype=torch.float64), (x * x).sum(0)
            s = sums.setdefault(m, [torch.zeros((), dtype=torch.float64, device=device), 0.0, 0.0])
            s[0] = s[0] + n
            s[1] = s[1] + x.sum(0)
            s[2] = s[2] + x2
    out = {}
    for m, (n, s1, s2) in sums.items():
        mean = s1 / n.clamp_min(1)
        out[m] = (s2 / n.clamp_min(1) - mean * mean).clamp_min(0).sqrt().float()
    return out


class Augment:
    """Applies ``train.augment`` to a batch (``loop.fit`` calls it before each forward pass).

    Args:
        specs: the validated ``train.augment`` items (``corruptions.validate_augment``).
        modalities: the data's modalities with whether each is a sequence (``{m: bool}``).
        std: ``feature_std`` of the training split (only read by ``noise``).
        seed: ``train.seed``.
    """

    def __init__(self, specs: list[dict[str, Any]], modalities: dict[str, bool], std: dict[str, Tensor], seed: int) -> None:
        from ..errors import ConfigError

        self.items = []
        for i, spec in enumerate(specs):
            c = CORRUPTIONS[spec["name"]]
            targets = sorted(modalities) if spec["modality"] == ALL else [spec["modality"]]
            for m in targets:
                if m not in modalities:
                    raise ConfigError(f"config key 'train.augment[{i}].modality': the data has no modality '{m}'; "
                                      f"it has {', '.join(sorted(modalities))} (or 'all')")
                if c.needs == "sequence" and not modalities[m]:
                    if spec["modality"] == ALL:
                        continue  # 'all' means every modality the corruption applies to
                    raise ConfigError(f"config key 'train.augment[{i}]': '{c.name}' needs a sequence modality; "
                                      f"'{m}' is one vector per sample")
                self.items.append((i, c, m, spec["level"], spec["p"]))
        self.std, self.seed = std, seed

    def __call__(self, batch: dict[str, Any], epoch: int, step: int) -> dict[str, Any]:
        feats, masks = dict(batch["features"]), dict(batch["masks"])
        for i, c, m, level, p in self.items:
            x, mask = feats[m], masks.get(m)
            draws = Draws(zlib.crc32(f"{self.seed}|{epoch}".encode()), f"augment{i}", m, step, x.device)
            y, new_mask = c.apply(x, mask, level, draws, self.std.get(m, torch.ones(x.shape[-1], device=x.device)))
            if p < 1:  # only a fraction p of the samples
                hit = draws("uniform", (x.shape[0],)) < p
                y = torch.where(hit.view(-1, *([1] * (x.dim() - 1))), y, x)
                if new_mask is not None:
                    old = mask if mask is not None else torch.ones_like(new_mask)
                    new_mask = torch.where(hit.view(-1, 1), new_mask, old)
            feats[m] = y
            if new_mask is not None:
                masks[m] = new_mask
        return {**batch, "features": feats, "masks": masks}


def build_augment(specs: list[dict[str, Any]], data: Any, device: torch.device, seed: int) -> Augment | None:
    """The batch augmentation of ``train.augment`` for ``data`` (a ``DataBundle``), or ``None``."""
    if not specs:
        return None
    needs_std = any(s["name"] == "noise" for s in specs)
    std = feature_std(data.train, device) if needs_std else {}
    return Augment(specs, {m: s.seq_len is not None for m, s in data.modalities.items()}, std, seed)
