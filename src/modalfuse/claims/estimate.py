"""The one place the claims ask the statistics layer for numbers: an estimate of a model's score or of
a difference of two models, its interval at any level and its p-value against any null value.

Today this reads the replicates of ``modalfuse.stats.paired`` (the hierarchical paired bootstrap of
the report, same draws): the interval at level ``L`` is the percentile interval of the replicates
and the one-sided p-value of ``H0: theta <= null`` is ``(#{theta* <= null} + 1) / (B + 1)``, the
inversion of that interval (as ``stats.paired.compare_pair`` does for ``null = 0``). Swapping the
statistics procedure means changing ``score`` and ``difference`` here, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from ..stats.paired import Replicates

Alternative = Literal["greater", "less", "two-sided"]


class Estimate(Protocol):
    """What the verdicts need of a quantity: its value, intervals and p-values."""

    value: float

    def interval(self, level: float) -> tuple[float, float]: ...

    def p_value(self, null: float, alternative: Alternative) -> float: ...


@dataclass
class BootstrapEstimate:
    """A quantity and its bootstrap replicates ``draws`` ``[B]`` (non-finite replicates dropped)."""

    value: float
    draws: np.ndarray

    def interval(self, level: float) -> tuple[float, float]:
        if not len(self.draws):
            return float("nan"), float("nan")
        lo, hi = np.percentile(self.draws, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
        return float(lo), float(hi)

    def p_value(self, null: float, alternative: Alternative) -> float:
        b = len(self.draws)
        if not b:
            return float("nan")
        greater = (np.sum(self.draws <= null) + 1) / (b + 1)  # evidence for theta > null
        less = (np.sum(self.draws >= null) + 1) / (b + 1)
        p = {"greater": greater, "less": less, "two-sided": 2 * min(greater, less)}[alternative]
        return float(min(1.0, p))

    def scaled(self, factor: float) -> "BootstrapEstimate":
        """The same quantity times ``factor`` (a unit change, or -1 to turn "lower is better" around)."""
        return BootstrapEstimate(self.value * factor, self.draws * factor)


def _finite(x: np.ndarray) -> np.ndarray:
    return x[np.isfinite(x)]


def score(models: dict[str, Replicates], a: str, metric: str) -> BootstrapEstimate:
    """Model ``a``'s score on ``metric``: the mean over its seeds, replicates over seeds and examples."""
    return BootstrapEstimate(models[a].observed[metric], _finite(models[a].values[metric]))


def difference(models: dict[str, Replicates], a: str, b: str, metric: str) -> BootstrapEstimate:
    """``a - b`` on ``metric`` (paired: the same example draws for both)."""
    return BootstrapEstimate(models[a].observed[metric] - models[b].observed[metric],
                             _finite(models[a].values[metric] - models[b].values[metric]))
