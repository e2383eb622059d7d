"""The hierarchical paired bootstrap (seeds and examples resampled): robustness curves and the
YouTube-8M benches still use it. Comparison reports use ``difference`` and ``verdicts`` instead:
resampling 3 seeds with replacement under-covers (docs/statistics.md, *Calibration*).

The method (also in docs/statistics.md):

1. A model's score is the mean of a metric over its seeds; a difference ``delta = score(model) -
   score(reference)``. Both sources of noise matter: which seeds were drawn (training noise) and
   which test examples were drawn (test-set noise). Runs of every model share the test examples.
2. Hierarchical paired bootstrap, ``B`` times: draw the test examples with replacement (one draw,
   **shared by every model**: the pairing), then, per model, draw its seeds with replacement
   (each model's seeds independently: runs of different models are independent trainings); the
   replicate ``delta*`` is the mean over the drawn seeds of each drawn seed's metric on the drawn
   examples, model minus reference. The same draws serve every comparison of a report (common
   random numbers), seeded, so a report is reproducible.
3. 95 % interval: the 2.5 and 97.5 percentiles of ``delta*``.
   p-value (two-sided, the inverted percentile interval): ``2 * min(P(delta* <= 0), P(delta* >= 0))``
   with the ``(count + 1) / (B + 1)`` correction, capped at 1: ``p < alpha`` exactly when 0 lies
   outside the ``1 - alpha`` percentile interval.
4. Holm's step-down correction over all comparisons of one metric (model vs reference and adjacent
   pairs of the ranking, each pair once); the verdict ``better``/``worse``/``indistinguishable`` uses
   the adjusted p-value at ``alpha`` and the metric's direction (``mae``: lower is better).

scipy has neither a hierarchical nor a paired multi-level bootstrap (``scipy.stats.bootstrap``
resamples one level) nor Holm's correction (statsmodels has ``multipletests``; not worth a
dependency for six lines), so resampling and Holm are written with numpy; the tests check Holm
against a worked example and the interval's coverage by simulation.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
import numpy as np

from .difference import example_weights
from .verdicts import ALPHA, holm, verdict  # noqa: F401  (robustness curves use them from here)
from .weighted import Metric

DEFAULT_RESAMPLES = 2000
CHUNK = 250  # bootstrap replicates evaluated per matrix product (bounds memory for YouTube-8M)


@dataclass
class Replicates:
    """A model's score per bootstrap replicate for every bootstrapped metric.

    ``values[metric]`` is ``[B]``: the mean over the replicate's drawn seeds of each drawn seed's
    metric on the replicate's drawn examples. ``observed[metric]`` is the plain mean over seeds.
    """

    values: dict[str, np.ndarray]
    observed: dict[str, float]
    seeds: int


def replicates(per_seed: list[dict[str, Metric]], W: np.ndarray, rng: np.random.Generator) -> Replicates:
    """Evaluate one model's seeds on the shared example weights ``W`` ``[B, N]``.

    Args:
        per_seed: one ``{metric: fn}`` per seed (``weighted.metric_functions``), same examples in the
            same order as ``W``'s columns.
        W: the shared example multiplicities.
        rng: draws this model's seeds (independently of the other models).
    """
    s, b, n = len(per_seed), W.shape[0], W.shape[1]
    seed_counts = np.stack([np.bincount(rng.integers(0, s, size=s), minlength=s) for _ in range(b)]).astype(float)  # [B, S]
    names = [m for m in per_seed[0] if all(m in fns for fns in per_seed)]
    values, observed = {}, {}
    ones = np.ones((1, n))
    for m in names:
        per = np.empty((b, s))
        for j, fns in enumerate(per_seed):
            per[:, j] = np.concatenate([fns[m](W[a : a + CHUNK]) for a in range(0, b, CHUNK)])
        values[m] = (per * seed_counts).sum(1) / s
        observed[m] = float(np.mean([fns[m](ones)[0] for fns in per_seed]))
    return Replicates(values, observed, s)


def compare_pair(a: Replicates, b: Replicates, metric: str, level: float = 0.95) -> tuple[float, float, float, float]:
    """``(delta, ci_low, ci_high, p_value)`` for ``a - b`` on ``metric``."""
    delta = a.observed[metric] - b.observed[metric]
    d = a.values[metric] - b.values[metric]
    d = d[np.isfinite(d)]
    if not len(d):
        return delta, float("nan"), float("nan"), float("nan")
    lo, hi = np.percentile(d, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    bsz = len(d)
    p = 2 * min((np.sum(d <= 0) + 1) / (bsz + 1), (np.sum(d >= 0) + 1) / (bsz + 1))
    return float(delta), float(lo), float(hi), float(min(1.0, p))


def bootstrap_models(per_model: dict[str, list[dict[str, Metric]]], n_examples: int, *,
                     resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict[str, Replicates]:
    """Shared example draws, then each model's seed draws: ``{model: Replicates}``.

    Each model's seed stream is derived from ``seed`` and the model's name, so adding a model to a
    report does not change the others' draws.
    """
    W = example_weights(n_examples, resamples, np.random.default_rng([seed, 0]))
    return {name: replicates(fns, W, np.random.default_rng([seed, 1, zlib.crc32(name.encode())]))
            for name, fns in per_model.items()}
