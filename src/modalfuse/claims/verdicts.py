"""Verdicts on claims from an estimate (``estimate.Estimate``): the tests each kind of claim makes, and
the verdict once their p-values are Holm-adjusted with the rest of the report's family.

Every quantity is in the claim's units (``published``, ``margin``). ``gain`` is the difference
turned so that positive means ``a`` is better (``-(a - b)`` for a metric where lower is better).

- ``value``: the published number against the reproduced score; ``contradicted`` when the score
  is significantly outside ``published ± tolerance`` (two-sided), else ``supported``.
- ``ordering`` (``a`` better than ``b``): two-sided test of ``gain = 0``; ``supported`` /
  ``contradicted`` by its sign when significant, else ``inconclusive`` with the effect the test
  could find.
- ``equivalence`` (``|a - b| <= margin``) and ``difference`` (``a - b = published`` within
  ``margin``): two one-sided tests (TOST) around the centre ``c`` (0, or the published difference):
  ``supported`` when both ``H0: a - b <= c - margin`` and ``H0: a - b >= c + margin`` are rejected,
  that is when the ``1 - 2 alpha`` interval lies inside ``(c - margin, c + margin)``;
  ``contradicted`` when the difference lies significantly outside that range (two-sided);
  ``inconclusive`` otherwise, naming the margin the interval would support.
- ``non-inferiority`` (``a >= b - margin`` in the metric's direction): one-sided test of
  ``H0: gain <= -margin`` (``supported``) and of ``H0: gain >= -margin`` (``contradicted``).

A claim enters the report's Holm family once, with the smaller p-value of its tests: the nulls of its
two tests are complementary (the difference is within the margin, or it is not), so at most one of
them is true and the claim's chance of a wrong verdict stays at most ``alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .estimate import Estimate

@dataclass
class Test:
    name: str  # what the test rejects when significant: "supported" or "contradicted"
    p_value: float


@dataclass
class Outcome:
    verdict: str  # supported, contradicted, inconclusive, not comparable
    reason: str
    interval: tuple[float, float]  # the interval shown with the claim
    level: float  # its level


def _p(x: float) -> str:
    return f"{x:.2g}" if x < 0.01 else f"{x:.3f}"


def claim_tests(kind: str, gain: Estimate, *, centre: float = 0.0, margin: float | None = None,
          tolerance: float = 0.0) -> list[Test]:
    """The tests a claim makes (their p-values enter the report's Holm family).

    Args:
        kind: the claim's kind.
        gain: a value claim's score, or ``a - b`` turned so that positive is better for ``a``
            (equivalence and difference are symmetric: pass ``a - b`` itself).
        centre: the published number (value) or published difference (difference); 0 otherwise.
        margin: equivalence / difference / non-inferiority margin.
        tolerance: a value claim's rounding of the published number.
    """
    if kind == "value":
        p = min(1.0, 2 * min(gain.p_value(centre + tolerance, "greater"), gain.p_value(centre - tolerance, "less")))
        return [Test("contradicted", p)]
    if kind == "ordering":
        return [Test("two-sided", gain.p_value(0.0, "two-sided"))]
    if kind in ("equivalence", "difference"):
        assert margin is not None
        tost = max(gain.p_value(centre - margin, "greater"), gain.p_value(centre + margin, "less"))
        outside = min(1.0, 2 * min(gain.p_value(centre + margin, "greater"), gain.p_value(centre - margin, "less")))
        return [Test("supported", tost), Test("contradicted", outside)]
    if kind == "non-inferiority":
        assert margin is not None
        return [Test("supported", gain.p_value(-margin, "greater")), Test("contradicted", gain.p_value(-margin, "less"))]
    raise ValueError(f"unknown claim kind {kind!r}")


def decide(kind: str, gain: Estimate, adjusted: list[float], *, centre: float = 0.0, margin: float | None = None,
           tolerance: float = 0.0, alpha: float = 0.05, names: tuple[str, str] = ("a", "b")) -> Outcome:
    """The verdict from the Holm-adjusted p-values of ``claim_tests(...)`` (same order); ``names``: the two
    models, for the reason."""
    i95, i90 = gain.interval(1 - alpha), gain.interval(1 - 2 * alpha)
    adj = _p(min(adjusted))  # the claim's entry in the family (the smaller of its tests)
    if kind == "value":
        lo, hi = i95
        where = f"published {centre:g}" + (f" ± {tolerance:g}" if tolerance else "")
        if adjusted[0] < alpha:
            return Outcome("contradicted", f"{where} lies outside the reproduced 95 % interval [{lo:.4g}, {hi:.4g}] "
                                           f"(p Holm {adj})", i95, 1 - alpha)
        return Outcome("supported", f"{where} lies inside the reproduced 95 % interval [{lo:.4g}, {hi:.4g}]",
                       i95, 1 - alpha)
    if kind == "ordering":
        lo, hi = i95
        if adjusted[0] < alpha:
            better = gain.value > 0
            return Outcome("supported" if better else "contradicted",
                           f"{names[0]} is {'better' if better else 'worse'} than {names[1]}: 95 % interval of the gain [{lo:+.4g}, {hi:+.4g}] "
                           f"(p Holm {adj})", i95, 1 - alpha)
        mde = gain.mde(alpha)
        return Outcome("inconclusive", f"the 95 % interval of the gain [{lo:+.4g}, {hi:+.4g}] "
                                       f"{'includes 0' if lo <= 0 <= hi else 'excludes 0 but not after Holm'} (p Holm {adj}); "
                                       f"a true gain of {mde:.3g} would be found with 80 % power (before Holm)",
                       i95, 1 - alpha)
    assert margin is not None
    lo, hi = i90
    if kind in ("equivalence", "difference"):
        what = (f"({centre - margin:+.4g}, {centre + margin:+.4g})"
                + (f" (published {centre:+g} ± margin {margin:g})" if centre else f" (± margin {margin:g})"))
        if adjusted[0] < alpha:
            return Outcome("supported", f"TOST: the 90 % interval [{lo:+.4g}, {hi:+.4g}] lies inside {what} "
                                        f"(p Holm {adj})", i90, 1 - 2 * alpha)
        if adjusted[1] < alpha:
            return Outcome("contradicted", f"the difference lies outside {what}: 95 % interval "
                                           f"[{i95[0]:+.4g}, {i95[1]:+.4g}] (p Holm {adj})", i90, 1 - 2 * alpha)
        needed = max(centre - lo, hi - centre)
        return Outcome("inconclusive", f"TOST: the 90 % interval [{lo:+.4g}, {hi:+.4g}] is not inside {what} (p Holm {adj}); "
                                       f"it would be at a margin of {needed:.3g}", i90, 1 - 2 * alpha)
    if kind == "non-inferiority":
        if adjusted[0] < alpha:
            return Outcome("supported", f"the 90 % interval of the gain [{lo:+.4g}, {hi:+.4g}] lies above -{margin:g} "
                                        f"(p Holm {adj})", i90, 1 - 2 * alpha)
        if adjusted[1] < alpha:
            return Outcome("contradicted", f"the gain lies below -{margin:g}: 90 % interval [{lo:+.4g}, {hi:+.4g}] "
                                           f"(p Holm {adj})", i90, 1 - 2 * alpha)
        return Outcome("inconclusive", f"the 90 % interval of the gain [{lo:+.4g}, {hi:+.4g}] reaches below -{margin:g} "
                                       f"(p Holm {adj}); non-inferior at a margin of {max(-lo, 0):.3g}", i90, 1 - 2 * alpha)
    raise ValueError(f"unknown claim kind {kind!r}")


def decide_exact(value: float, published: float, tolerance: float) -> Outcome:
    """A value claim on an exact quantity (a parameter count): no interval, no test."""
    ok = abs(value - published) <= tolerance
    return Outcome("supported" if ok else "contradicted",
                   f"exact: {value:,.0f} against published {published:,.0f} ± {tolerance:,.0f} (the published rounding)",
                   (value, value), 1.0)
