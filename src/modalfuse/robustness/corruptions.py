"""Graded input corruptions, applied batch-wise on the device, seeded per (modality, batch).

One corruption is one ``Corruption``: a name, the range of its level, the level that leaves the input
intact (``clean``) and a default grid of levels (clean first, then more and more severe). Every
random draw is independent of the level: a corruption draws once per (seed, corruption, modality,
batch) and the level only scales or thresholds the draw (``u < p``, ``sigma(level) * z``). So

- the curves of all models are paired (the same examples are hit in the same way),
- levels are nested (the samples missing at 25 % are among those missing at 50 %),
- corrupting ``all`` modalities applies exactly each single modality's corruption at once.

The corruptions (``level`` in brackets):

- ``noise`` [SNR in dB]: ``x + sigma_d z``, ``z ~ N(0, 1)``, ``sigma_d = std_d * 10^(-SNR/20)`` with
  ``std_d`` the training split's standard deviation of feature ``d`` (signal-to-noise ratio
  ``var_d / sigma_d^2``); only real steps of a sequence get noise.
- ``missing`` [fraction of samples]: the modality is absent for a random fraction of samples, by
  the mechanism of ``model.modality_dropout``: its encoder's state is zeroed (``evaluate.py``).
- ``shift`` [steps]: temporal misalignment of a sequence: the content at step ``t`` is what was at
  ``t - k`` (the modality lags by ``k`` steps); the first ``k`` steps hold zeros, the mask is kept
  (the steps still exist: their content is late).
- ``drop`` [fraction of steps]: randomly dropped frames/words: each real step is removed (mask off,
  features zeroed) with probability ``p``.
- ``quantize`` [bits]: the official YouTube-8M 8-bit scheme generalised to ``b`` bits: clip to
  ``[-2, 2]``, ``q = round((x + 2) (2^b - 1) / 4)``, dequantize ``q 4 / (2^b - 1) - 2 + 4 / 2^(b+1)``
  (for ``b = 8`` exactly the starter code's ``quantize``/``Dequantize``); 32 means float32, intact.
- ``dims`` [fraction of dimensions]: each feature dimension of each sample zeroed with probability
  ``p`` (for a sequence the same dimensions at every step).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Literal

import torch
from torch import Tensor

from ..errors import ConfigError, UserError, closest

ALL = "all"  # the modality name that means every modality at once
Where = Literal["input", "state"]
Needs = Literal["any", "sequence"]

QUANT_MIN, QUANT_MAX = -2.0, 2.0  # the official YouTube-8M quantization range


@dataclass(frozen=True)
class Corruption:
    """One kind of corruption and its levels.

    Attributes:
        name: the name used on the command line and in ``robustness.csv``.
        clean: the level that leaves the input intact (the first point of every curve).
        levels: the default grid, clean first, in increasing severity.
        low, high: the allowed range of a level (``clean`` is always allowed).
        integer: levels must be whole numbers.
        needs: ``sequence``: only for modalities with a time axis.
        where: ``input``: edits features/masks; ``state``: zeroes the encoder's state (``missing``).
        axis: the x-axis label of its plots.
    """

    name: str
    clean: float
    levels: tuple[float, ...]
    low: float
    high: float
    integer: bool
    needs: Needs
    where: Where
    axis: str
    apply: Callable[..., tuple[Tensor, Tensor | None]] | None = None

    def check_level(self, level: float, where: str) -> float:
        """``level`` as a float, or a ``UserError`` naming ``where`` it came from and the range."""
        if level == self.clean:
            return float(level)
        ok = math.isfinite(level) and self.low <= level <= self.high and (not self.integer or float(level).is_integer())
        if not ok:
            kind = "a whole number" if self.integer else "a number"
            raise UserError(f"{where}: level {level:g} of '{self.name}' is out of range; expected {kind} in "
                            f"[{self.low:g}, {self.high:g}] (or {self.clean:g}: intact)")
        return float(level)

    def severity_order(self, levels: list[float]) -> list[float]:
        """Levels sorted from clean to most severe (``noise``/``quantize``: falling values)."""
        falling = self.clean > self.high  # the clean level sits above the range (inf dB, 32 bits)
        return sorted(set(levels) | {self.clean}, reverse=falling)


# ---------------------------------------------------------------------------------------------
# The corruptions: (x, mask, level, draw, std) -> (x, mask)
#   x [B, D] or [B, T, D]; mask [B, T] (True = real step) or None; draw(kind, shape) -> a seeded
#   tensor on x's device (kind "uniform" or "normal"); std [D] the training split's feature std.
# ---------------------------------------------------------------------------------------------

def _real(x: Tensor, mask: Tensor | None) -> Tensor:
    """``[B, T, 1]`` (or ``[B, 1]``) 1.0 at real steps: what a corruption may touch."""
    if x.dim() == 3 and mask is not None:
        return mask.unsqueeze(-1).to(x.dtype)
    return torch.ones_like(x[..., :1])


def _noise(x: Tensor, mask: Tensor | None, level: float, draw: Any, std: Tensor) -> tuple[Tensor, Tensor | None]:
    sigma = std.to(x.dtype) * 10.0 ** (-level / 20.0)
    return x + sigma * draw("normal", x.shape) * _real(x, mask), mask


def _shift(x: Tensor, mask: Tensor | None, level: float, draw: Any, std: Tensor) -> tuple[Tensor, Tensor | None]:
    k = int(level)
    out = torch.zeros_like(x)
    if k < x.shape[1]:
        out[:, k:] = x[:, : x.shape[1] - k]
    return out * _real(x, mask), mask


def _drop(x: Tensor, mask: Tensor | None, level: float, draw: Any, std: Tensor) -> tuple[Tensor, Tensor | None]:
    keep = draw("uniform", x.shape[:2]) >= level  # [B, T]
    if mask is None:
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    mask = mask & keep
    return x * mask.unsqueeze(-1).to(x.dtype), mask


def _quantize(x: Tensor, mask: Tensor | None, level: float, draw: Any, std: Tensor) -> tuple[Tensor, Tensor | None]:
    steps = 2.0 ** int(level) - 1.0
    span = QUANT_MAX - QUANT_MIN
    q = torch.round((x.clamp(QUANT_MIN, QUANT_MAX) - QUANT_MIN) * (steps / span))
    # the starter code's Dequantize: scalar = range / 255, bias = range / 512 + min (b = 8)
    deq = q * (span / steps) + (span / 2.0 ** (int(level) + 1) + QUANT_MIN)
    return deq * _real(x, mask), mask


def _dims(x: Tensor, mask: Tensor | None, level: float, draw: Any, std: Tensor) -> tuple[Tensor, Tensor | None]:
    shape = (x.shape[0], x.shape[-1]) if x.dim() == 2 else (x.shape[0], 1, x.shape[-1])
    return x * (draw("uniform", shape) >= level).to(x.dtype), mask


CORRUPTIONS: dict[str, Corruption] = {c.name: c for c in (
    Corruption("noise", math.inf, (math.inf, 20, 10, 5, 0, -5), -30, 60, False, "any", "input",
               "signal-to-noise ratio (dB)", _noise),
    Corruption("missing", 0.0, (0, 0.25, 0.5, 0.75, 1.0), 0, 1, False, "any", "state",
               "fraction of samples with the modality missing"),
    Corruption("shift", 0.0, (0, 1, 2, 4, 8), 0, 10_000, True, "sequence", "input",
               "misalignment (steps the modality lags)", _shift),
    Corruption("drop", 0.0, (0, 0.2, 0.4, 0.6, 0.8), 0, 1, False, "sequence", "input",
               "fraction of frames/words dropped", _drop),
    Corruption("quantize", 32.0, (32, 8, 6, 4, 2), 1, 16, True, "any", "input",
               "bits per value (32: float, intact)", _quantize),
    Corruption("dims", 0.0, (0, 0.25, 0.5, 0.75, 0.9), 0, 1, False, "any", "input",
               "fraction of feature dimensions dropped", _dims),
)}


def get(name: str, where: str = "--corruption") -> Corruption:
    """The corruption called ``name``; an unknown name is a ``UserError`` listing the known ones."""
    if name not in CORRUPTIONS:
        raise UserError(f"{where}: unknown corruption '{name}'{closest(name, CORRUPTIONS)}; "
                        f"known: {', '.join(CORRUPTIONS)}")
    return CORRUPTIONS[name]


def parse_spec(text: str) -> tuple[Corruption, list[float]]:
    """``NAME`` or ``NAME=L1,L2,...`` (the command line's ``--corruption``) -> the corruption and its
    levels from clean to most severe (clean always included)."""
    name, sep, rest = text.partition("=")
    c = get(name.strip(), f"--corruption {text}")
    if not sep:
        return c, list(c.levels)
    levels = []
    for item in rest.split(","):
        try:
            value = float(item)
        except ValueError:
            raise UserError(f"--corruption {text}: level {item.strip()!r} is not a number") from None
        levels.append(c.check_level(value, f"--corruption {text}"))
    return c, c.severity_order(levels)


def default_corruptions(sequence: bool, dataset: str) -> list[str]:
    """What ``modalfuse robustness`` draws without ``--corruption``: noise and missingness always,
    shifts and dropped steps for sequence data, quantization and dropped dimensions for YouTube-8M."""
    names = ["noise", "missing"]
    if sequence:
        names += ["shift", "drop"]
    if dataset == "yt8m":
        names += ["quantize", "dims"]
    return names


class Draws:
    """Seeded random tensors for one (corruption, modality, batch), made on the batch's device.

    The seed depends on ``(seed, corruption, modality, batch index)`` only: not on the level, the
    model or the other modalities. Batches are fixed by the evaluation pass (one batch size for
    every model), so every model sees the same draws.
    """

    def __init__(self, seed: int, corruption: str, modality: str, batch: int, device: torch.device) -> None:
        key = zlib.crc32(f"{seed}|{corruption}|{modality}|{batch}".encode())
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(key)
        self.device = device

    def __call__(self, kind: str, shape: Any) -> Tensor:
        if kind == "normal":
            return torch.randn(tuple(shape), generator=self.gen, device=self.device)
        return torch.rand(tuple(shape), generator=self.gen, device=self.device)


# ---------------------------------------------------------------------------------------------
# Training-side augmentation specs (train.augment)
# ---------------------------------------------------------------------------------------------

AUGMENT_KEYS = ("name", "level", "modality", "p")


def validate_augment(items: Any, path: str = "train.augment") -> list[dict[str, Any]]:
    """Check ``train.augment``: a list of ``{name, level, modality: M|all, p}`` (``p``: the fraction
    of batches' samples corrupted, default 1). ``missing`` is refused: ``model.modality_dropout`` is
    that augmentation (the same mechanism, inside the model).

    Raises:
        ConfigError: naming the item and key.
    """
    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigError(f"config key '{path}': expected a list of {{name, level, modality}}, found {items!r}"[:200])
    out = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        if not isinstance(item, dict) or "name" not in item:
            raise ConfigError(f"config key '{where}': expected a mapping with 'name' (one of {', '.join(CORRUPTIONS)}), "
                              f"found {item!r}"[:200])
        unknown = [k for k in item if k not in AUGMENT_KEYS]
        if unknown:
            raise ConfigError(f"config key '{where}.{unknown[0]}': unknown{closest(str(unknown[0]), AUGMENT_KEYS)}; "
                              f"valid keys: {', '.join(AUGMENT_KEYS)}")
        try:
            c = get(str(item["name"]), f"config key '{where}.name'")
        except UserError as e:
            raise ConfigError(str(e)) from None
        if c.where == "state":
            raise ConfigError(f"config key '{where}.name': 'missing' is what model.modality_dropout does during "
                              f"training (the same mechanism); set that instead")
        level = item.get("level", c.levels[len(c.levels) // 2])
        try:
            level = c.check_level(float(level), f"config key '{where}.level'")
        except (TypeError, ValueError):
            raise ConfigError(f"config key '{where}.level': expected a number, found {item.get('level')!r}") from None
        except UserError as e:
            raise ConfigError(str(e)) from None
        p = item.get("p", 1.0)
        if not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ConfigError(f"config key '{where}.p': expected a probability in [0, 1], found {p!r}")
        modality = item.get("modality", ALL)
        if not isinstance(modality, str):
            raise ConfigError(f"config key '{where}.modality': expected a modality name or 'all', found {modality!r}")
        out.append({"name": c.name, "level": level, "modality": modality, "p": float(p)})
    return out
