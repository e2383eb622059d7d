"""The difference of two models' seed-averaged metrics, with an interval that holds at 3 seeds.

The model (docs/statistics.md has the justification and the calibration): seed ``s`` of a model,
scored on the test set ``T``, gives ``x_s = theta + a_s + g(T) + h_s(T)``: its skill ``theta``, the
seed's training effect ``a_s``, the test set's effect ``g`` shared by every seed of the model (and
correlated across models: they see the same hard examples) and the seed-by-example part ``h_s``. The
estimate is ``delta = mean_s x_s(model) - mean_s x_s(reference)``; its variance is

- the **seed part**, ``var_s(x_s) / S`` per model: the between-seed sample variance (which holds
  ``a_s`` and ``h_s``) over the seed count, estimated from the per-seed metrics themselves, no seed
  resampling (resampling 3 seeds with replacement scales it by 2/3 and never reaches past them);
- plus the **shared test-set part**, ``var(g_model - g_reference)``, from the paired example
  bootstrap: the covariance between *different* seeds' resampled metrics is ``var(g)`` (their ``h``
  parts are independent), so the seed-by-example part is not counted twice. A model with one seed
  has no seed part; its whole bootstrap variance is used (the interval then covers test-set sampling
  only).

The interval is Student-t with Welch-Satterthwaite degrees of freedom (each seed part has ``S - 1``
df, the bootstrap part ``B - 1``), so the p-value has no floor from the resample count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import stats as sst

from .weighted import Metric

CHUNK = 250  # resamples evaluated per matrix product (bounds memory for YouTube-8M)
POWER = 0.8
UNSUPPORTED_DF = 3.0  # below this many degrees of freedom an interval is too wide to support a verdict


@dataclass(frozen=True)
class Scores:
    """One model on one metric.

    ``per_seed`` ``[S]``: each seed's metric on the whole split; ``replicates`` ``[B, S]``: each
    seed's metric on the shared example resamples (the same resamples for every model).
    """

    per_seed: np.ndarray
    replicates: np.ndarray

    @property
    def seeds(self) -> int:
        return len(self.per_seed)

    @property
    def mean(self) -> float:
        return float(np.mean(self.per_seed))


@dataclass(frozen=True)
class Difference:
    """``model - reference`` on one metric: the estimate, its standard error and degrees of freedom.

    ``se**2 = seed_variance + example_variance``; ``df`` is Welch-Satterthwaite's (``inf`` when the
    variance is all test-set part with infinitely many resamples).
    """

    estimate: float
    se: float
    df: float
    seed_variance: float
    example_variance: float
    seeds: tuple[int, int]
    resamples: int
    seed_variances: tuple[float, float] = (0.0, 0.0)  # between-seed variance of each model (not / S)

    def _t(self, q: float) -> float:
        return float(sst.t.ppf(q, self.df)) if math.isfinite(self.df) else float(sst.norm.ppf(q))

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Two-sided ``level`` interval ``estimate ± t_{(1+level)/2, df} · se``."""
        if not self.se > 0:
            return (self.estimate, self.estimate) if self.se == 0 else (math.nan, math.nan)
        half = self._t((1 + level) / 2) * self.se
        return self.estimate - half, self.estimate + half

    def p_value(self, null: float = 0.0, alternative: str = "two-sided") -> float:
        """p-value of ``H0: difference = null`` against ``alternative`` (``two-sided``, ``greater``:
        the difference exceeds ``null``, ``less``), from the t distribution with ``df``."""
        if not math.isfinite(self.estimate) or not self.se >= 0:
            return math.nan
        if self.se == 0:  # no noise at all (the same runs under two names): only exact equality is kept
            above = {"two-sided": self.estimate != null, "greater": self.estimate > null, "less": self.estimate < null}
            return 0.0 if above[alternative] else 1.0
        t = (self.estimate - null) / self.se
        dist = sst.t(self.df) if math.isfinite(self.df) else sst.norm()
        if alternative == "greater":
            return float(dist.sf(t))
        if alternative == "less":
            return float(dist.cdf(t))
        if alternative != "two-sided":
            raise ValueError(f"alternative: expected two-sided, greater or less, got {alternative!r}")
        return float(min(1.0, 2 * dist.sf(abs(t))))

    def mde(self, alpha: float = 0.05, power: float = POWER) -> float:
        """Minimum detectable effect: the true difference a two-sided test at ``alpha`` finds with
        probability ``power`` at this standard error, ``(t_{1-alpha/2} + t_{power}) · se``."""
        return (self._t(1 - alpha / 2) + self._t(power)) * self.se if self.se > 0 else math.nan

    def seeds_needed(self, effect: float | None = None, alpha: float = 0.05, power: float = POWER,
                     limit: int = 1000) -> int | None:
        """Seeds per model (the same for both) at which ``effect`` (default: the observed difference)
        is found with probability ``power``, keeping this test set and these per-seed variances;
        ``None`` when it is 0, when a model has one seed (no seed variance known), or when more seeds
        cannot reach it within ``limit`` (the test-set part alone is too large)."""
        effect = abs(self.estimate if effect is None else effect)
        if min(self.seeds) < 2 or not effect > 0:
            return None
        va, vb = self.seed_variances
        for n in range(2, limit + 1):
            parts = (va / n, vb / n, self.example_variance)
            dfs = (n - 1, n - 1, max(self.resamples - 1, 1))
            var = sum(parts)
            den = sum(p * p / d for p, d in zip(parts, dfs))
            if var <= 0:
                return None
            df = var * var / den if den > 0 else math.inf
            t = sst.t(df) if math.isfinite(df) else sst.norm()
            if (t.ppf(1 - alpha / 2) + t.ppf(power)) * math.sqrt(var) <= effect:
                return n
        return None

    @property
    def supported(self) -> bool:
        """Whether the seeds can support a verdict: enough degrees of freedom for an informative t."""
        return self.df >= UNSUPPORTED_DF


def _shared_variance(x: np.ndarray) -> tuple[float, float]:
    """From ``[B, S]`` replicates: (variance of the seed mean, its shared part ``var(g)``).

    With one seed the shared part cannot be told from the seed-by-example part: the whole variance.
    """
    s = x.shape[1]
    c = np.cov(x, rowvar=False).reshape(s, s)
    total = float(c.sum()) / s**2
    if s == 1:
        return total, total
    off = (float(c.sum()) - float(np.trace(c))) / (s * (s - 1))
    return total, off


def difference(model: Scores, reference: Scores | None = None) -> Difference:
    """``model - reference``: seed-level studentized difference with the paired test-set variance.

    Args:
        model, reference: the two models' scores on one metric, replicates on the SAME resamples.
            Without ``reference``: the model's own score (a difference from a noiseless 0), whose
            interval has the same two parts (its seed part and its test-set part ``var(g)``).

    Returns:
        A ``Difference`` (``interval()``, ``p_value()``, ``mde()``, ``se``, ``df``).
    """
    if reference is None:
        reference = Scores(np.zeros(1), np.zeros((len(model.replicates), 1)))
    ok = np.isfinite(model.replicates).all(1) & np.isfinite(reference.replicates).all(1)
    a, b = model.replicates[ok], reference.replicates[ok]
    n_res = int(ok.sum())
    estimate = model.mean - reference.mean
    if n_res < 2 or not math.isfinite(estimate):
        return Difference(estimate, math.nan, math.nan, math.nan, math.nan, (model.seeds, reference.seeds), n_res)
    _, shared_a = _shared_variance(a)
    _, shared_b = _shared_variance(b)
    cross = float(np.cov(a.mean(1), b.mean(1))[0, 1])
    example_var = max(0.0, shared_a + shared_b - 2 * cross)
    parts, dfs, seed_vars = [], [], []
    for sc in (model, reference):
        v = float(np.var(sc.per_seed, ddof=1)) if sc.seeds >= 2 else 0.0
        seed_vars.append(v)
        if sc.seeds >= 2:
            parts.append(v / sc.seeds)
            dfs.append(sc.seeds - 1)
    parts.append(example_var)
    dfs.append(n_res - 1)
    var = sum(parts)
    den = sum(p * p / d for p, d in zip(parts, dfs))
    df = var * var / den if den > 0 else math.inf
    return Difference(float(estimate), math.sqrt(var), float(df), float(var - example_var), example_var,
                      (model.seeds, reference.seeds), n_res, (seed_vars[0], seed_vars[1]))


BLOCK_ENTRIES = 1 << 25  # weights per block (128 MB of float32): bounds a report's memory at any test-set size


def block_rows(n: int, resamples: int = CHUNK) -> int:
    """Replicates per block of ``n``-example weights: ``CHUNK``, fewer where ``CHUNK x n`` would pass
    ``BLOCK_ENTRIES`` (at the 1.1M videos of the full YouTube-8M validation set, 30)."""
    return max(1, min(CHUNK, resamples, BLOCK_ENTRIES // max(n, 1)))


def weight_blocks(n: int, resamples: int, rng: np.random.Generator, rows: int | None = None) -> Iterator[np.ndarray]:
    """The ``[B, n]`` multiplicities of ``B = resamples`` draws of ``n`` examples with replacement,
    as consecutive float32 blocks of at most ``rows`` replicates (default ``block_rows(n)``): memory
    ``O(rows x n)``, never ``O(B x n)``.

    Each row is drawn on its own (``rng.integers`` of ``n`` examples, then counted), so the blocks
    concatenated are the same draws for every ``rows``: the same stream as one ``[B, n]`` draw.
    Counts are exact in float32 up to ``2**24`` draws, half the memory of float64.
    """
    rows = rows or block_rows(n, resamples)
    for start in range(0, resamples, rows):
        W = np.empty((min(rows, resamples - start), n), np.float32)
        for b in range(len(W)):
            W[b] = np.bincount(rng.integers(0, n, size=n), minlength=n)
        yield W


def example_weights(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``[B, n]`` multiplicities of ``n`` examples drawn with replacement, ``B`` times, all at once
    (small splits: tests, benches, the robustness curves); reports consume ``weight_blocks``."""
    return np.concatenate([np.empty((0, n), np.float32), *weight_blocks(n, resamples, rng)])


def block_scores(per_model: dict[str, list[dict[str, Metric]]], blocks: Iterable[np.ndarray],
                 n: int) -> dict[str, dict[str, Scores]]:
    """Every model's seeds (``weighted.metric_functions`` of each) on shared weights fed block by block.

    Args:
        per_model: ``{model: [per-seed {metric: fn}]}``, examples in the order of the weights' columns.
        blocks: consecutive ``[b, n]`` blocks of the shared example multiplicities (``weight_blocks``);
            each is scored by every model, seed and metric, then dropped.
        n: the examples every function scores.

    Returns:
        ``{model: {metric: Scores}}`` for the metrics every seed of a model has.
    """
    names = {model: [m for m in fns[0] if all(m in f for f in fns)] for model, fns in per_model.items()}
    parts: dict[str, dict[str, list[np.ndarray]]] = {model: {m: [] for m in ms} for model, ms in names.items()}
    for W in blocks:
        for model, fns in per_model.items():
            for m in names[model]:
                parts[model][m].append(np.stack([f[m](W) for f in fns], axis=1))  # [b, S]
    ones = np.ones((1, n))
    return {model: {m: Scores(np.array([f[m](ones)[0] for f in fns], dtype=np.float64),
                              np.concatenate(parts[model][m]) if parts[model][m] else np.empty((0, len(fns))))
                    for m in names[model]}
            for model, fns in per_model.items()}


def scores(per_seed: list[dict[str, Metric]], W: np.ndarray) -> dict[str, Scores]:
    """One model's seeds on the shared weights ``W`` ``[B, N]`` held whole (``block_scores`` in
    blocks of ``CHUNK`` replicates).

    Returns:
        ``{metric: Scores}`` for the metrics every seed has.
    """
    return block_scores({"": per_seed}, (W[i : i + CHUNK] for i in range(0, len(W), CHUNK)), W.shape[1])[""]
