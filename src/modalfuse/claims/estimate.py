"""The one place the claims ask the statistics layer for numbers: an estimate of a model's score or of
a difference of two models, its interval at any level, its p-value against any null value and the
effect its test could find.

It is the report's procedure (``modalfuse.stats.difference``, docs/statistics.md): the seed-level
Student-t difference with the paired test-set variance from the shared example resamples, on the
same resamples the report draws. A single model's score is its difference from a constant 0 (no seed
variance, no test-set variance on that side), so its interval holds the same two sources of noise.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Protocol

import numpy as np

from ..stats.difference import Difference, Scores, difference as stats_difference

Alternative = Literal["greater", "less", "two-sided"]


class Estimate(Protocol):
    """What the verdicts need of a quantity."""

    value: float

    def interval(self, level: float) -> tuple[float, float]: ...

    def p_value(self, null: float, alternative: Alternative) -> float: ...

    def mde(self, alpha: float) -> float: ...


@dataclasses.dataclass(frozen=True)
class StudentEstimate:
    """A quantity with the stats layer's ``Difference`` behind it (estimate, standard error, df)."""

    d: Difference

    @property
    def value(self) -> float:
        return self.d.estimate

    def interval(self, level: float) -> tuple[float, float]:
        return self.d.interval(level)

    def p_value(self, null: float, alternative: Alternative) -> float:
        return self.d.p_value(null, alternative)

    def mde(self, alpha: float) -> float:
        return self.d.mde(alpha)

    def scaled(self, factor: float) -> "StudentEstimate":
        """The same quantity times ``factor`` (a unit change, or -1 to turn "lower is better" around)."""
        d = self.d
        return StudentEstimate(dataclasses.replace(d, estimate=d.estimate * factor, se=d.se * abs(factor),
                                                   seed_variance=d.seed_variance * factor**2,
                                                   example_variance=d.example_variance * factor**2))


def score(models: dict[str, dict[str, Scores]], a: str, metric: str) -> StudentEstimate:
    """Model ``a``'s score on ``metric``: the mean over its seeds, against a constant 0."""
    s = models[a][metric]
    zero = Scores(np.zeros(1), np.zeros((s.replicates.shape[0], 1)))
    return StudentEstimate(stats_difference(s, zero))


def difference(models: dict[str, dict[str, Scores]], a: str, b: str, metric: str) -> StudentEstimate:
    """``a - b`` on ``metric`` (paired: the same example resamples for both)."""
    return StudentEstimate(stats_difference(models[a][metric], models[b][metric]))
