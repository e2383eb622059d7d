"""Seeds in rounds (``compare --seeds auto``): the looks, their alpha, and when a comparison is done.

The looks are planned before the first one: 3 seeds, then 5, then doubling, up to ``max_seeds``
(always a look). Each look tests at ``alpha / looks`` (Bonferroni over the planned looks): whatever
the data do, the chance of a false ``better``/``worse`` at any look is at most ``alpha`` for a
comparison (and, with Holm inside each look, for the family), so stopping early cannot inflate it.
Simpler and more conservative than a Lan-DeMets O'Brien-Fleming spending function; with 3 looks
the per-look level is 0.0167. Stopping for futility (the minimum detectable effect fell below
``min_effect``) never raises a false positive rate. ``bench/stats_calibration.py`` measures it.
"""

from __future__ import annotations

import math

FIRST_LOOK = 3


def looks(max_seeds: int) -> list[int]:
    """Seed counts at which the comparison is looked at: 3, 5, 10, 20, ... capped at ``max_seeds``."""
    if max_seeds < 1:
        raise ValueError(f"max_seeds: expected at least 1, got {max_seeds}")
    out, n = [], FIRST_LOOK
    while n < max_seeds:
        out.append(n)
        n = 5 if n == FIRST_LOOK else 2 * n
    return out + [max_seeds]


def look_alpha(alpha: float, n_looks: int) -> float:
    """The level each look tests at (Bonferroni over the planned looks)."""
    return alpha / max(n_looks, 1)


def state(verdict: str, mde: float, min_effect: float | None) -> str:
    """``decided`` (better/worse at this look's level), ``small`` (nothing found, but any difference
    of at least ``min_effect`` would have been found: stop) or ``open`` (more seeds may tell)."""
    if verdict in ("better", "worse"):
        return "decided"
    if min_effect is not None and math.isfinite(mde) and mde < min_effect:
        return "small"
    return "open"
