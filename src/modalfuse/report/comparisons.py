"""The *Paired comparisons* section of ``report.md`` and the rows of ``comparisons.csv``
(the statistics are ``modalfuse.stats.verdicts``; ``evidence.paired`` computes them from run folders)."""

from __future__ import annotations

import math
from typing import Any

from .evidence import Paired


def csv_rows(p: Paired) -> list[dict[str, Any]]:
    """``comparisons.csv``: one row per comparison, columns ``stats.verdicts.COLUMNS``."""
    return [{k: ("" if v is None else v) for k, v in c.row().items()} for c in p.rows]


def summary_verdicts(p: Paired) -> dict[str, str]:
    """The summary's ``vs <reference>`` cell per model: its reading on the primary metric."""
    return {c.model: c.reading for c in p.rows if c.metric == p.primary and c.reference == p.reference}


def header_lines(p: Paired, info: dict[str, Any] | None = None) -> list[str]:
    """The lines at the top of the report that say which metric decides (and, after ``compare --seeds
    auto``, how many seeds each model got and why the rounds stopped)."""
    m = sum(c.metric == p.primary for c in p.rows)
    md = [f"**Primary metric: `{p.primary}`** — its {m} comparisons are one Holm family and carry the "
          f"verdicts (α = {p.alpha:.3g}); every other metric is secondary (Holm within that metric only, no "
          f"correction across metrics). Reference: **{p.reference}** ({p.reference_how}).", ""]
    auto = (info or {}).get("adaptive")
    if auto:
        md += [f"**Seeds in rounds** (`--seeds auto`): looks at {', '.join(map(str, auto['looks']))} seeds, each "
               f"at α = {auto['alpha']:.3g} (Bonferroni over the planned looks); stopped after look "
               f"{len(auto['history'])}: {auto['stopped']}. Seeds per model: "
               + ", ".join(f"{k} {v}" for k, v in auto["seeds"].items()) + ".", ""]
    return md


def _seeds_needed(n: Any) -> str:
    return "—" if n is None else str(n)


def section(p: Paired) -> list[str]:
    """Markdown of the *Paired comparisons* section."""
    md = ["## Paired comparisons", "",
          f"Difference = model − reference (for an adjacent pair in the ranking: the better − the worse), means "
          f"over seeds. 95 % interval and p-value: Student t with Welch–Satterthwaite degrees of freedom; the "
          f"variance is each model's between-seed variance over its seed count plus the paired test-set "
          f"variance from {p.resamples} resamples of the {p.examples} test examples (shared by all models; see "
          f"docs/statistics.md). p-values Holm-adjusted within each metric; verdict at α = {p.alpha:.3g} on the "
          f"adjusted p-value, in the metric's direction. **MDE**: the difference this comparison would find "
          f"with 80 % power (at α / the family's size); **seeds needed**: seeds per model that would find the "
          f"observed difference with 80 % power (— : more seeds cannot, the test set is too small, or one seed). "
          f"All rows, every metric: `comparisons.csv`.", ""]
    md += header_lines(p)
    md += [f"- {n}" for n in p.notes]
    if p.notes:
        md.append("")
    md += [f"### `{p.primary}` (primary)", "",
           "| model | vs | difference | 95 % interval | p | p (Holm) | df | MDE | seeds needed | verdict |",
           "|---|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for c in p.rows:
        if c.metric == p.primary:
            reading = f"**{c.reading}**" if c.verdict != "indistinguishable" else c.reading
            df = f"{c.df:.1f}" if math.isfinite(c.df) else "∞"
            md.append(f"| {c.model} | {c.reference} | {c.delta:+.4f} | [{c.ci_low:+.4f}, {c.ci_high:+.4f}] | "
                      f"{c.p_value:.2g} | {c.p_adjusted:.2g} | {df} | {c.mde:.4f} | {_seeds_needed(c.seeds_needed)} | "
                      f"{reading} |")
    others = [m for m in p.metrics if m != p.primary]
    if others:
        models = list(dict.fromkeys(c.model for c in p.rows if c.reference == p.reference))
        md += ["", f"### Every metric against {p.reference} (secondary: Holm within each metric)", "",
               "Verdicts (≈ indistinguishable); the difference and, for ≈, the MDE in brackets.", "",
               "| model | " + " | ".join(f"`{m}`" for m in p.metrics) + " |",
               "|---|" + "|".join(["---"] * len(p.metrics)) + "|"]
        cell = {(c.model, c.metric): c for c in p.rows if c.reference == p.reference}

        def text(c: Any) -> str:
            if c.verdict != "indistinguishable":
                return f"{c.verdict} ({c.delta:+.3f})"
            return f"≈ ({c.delta:+.3f}; MDE {c.mde:.3f})" if math.isfinite(c.mde) else f"≈ ({c.delta:+.3f})"
        for model in models:
            md.append(f"| {model} | " + " | ".join(text(cell[model, m]) if (model, m) in cell else "—"
                                                   for m in p.metrics) + " |")
    md.append("")
    return md
