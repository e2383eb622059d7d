"""The robustness section of a report, read from a robustness folder's files only
(``robustness.json``, ``robustness_auc.csv``; written by ``modalfuse robustness`` or ``compare
--robustness``). ``modalfuse robustness`` writes the same lines as ``robustness.md``."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from ..stats.verdicts import reading


def _num(v: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def section_lines(folder: str | Path, *, image_prefix: str = "", level: int = 2) -> list[str]:
    """Markdown for the robustness folder ``folder`` (``[]`` when it holds no results).

    Args:
        folder: a folder with ``robustness.json`` and ``robustness_auc.csv``.
        image_prefix: how the markdown file reaches the folder's plots (``../robustness/``).
        level: heading level of the section title.
    """
    folder = Path(folder)
    if not (folder / "robustness.json").is_file() or not (folder / "robustness_auc.csv").is_file():
        return []
    meta = json.loads((folder / "robustness.json").read_text())
    with open(folder / "robustness_auc.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    h = "#" * level
    ref = meta.get("reference")
    seeds = meta.get("seeds") or {}
    md = [f"{h} Robustness", "",
          f"Test split under graded corruptions (`{meta.get('command', '')}`), {meta.get('examples')} examples, "
          f"seeds per model: {', '.join(f'{k} {len(v)}' for k, v in seeds.items())}; corruption seed "
          f"{meta.get('seed', 0)}, the same corrupted inputs for every model. Every point in `robustness.csv` "
          f"carries a 95 % interval, and every Δ its interval and verdict, from the comparison report's "
          f"procedure (seed-level Student t with the paired test-set variance, {meta.get('resamples')} example "
          f"resamples; docs/statistics.md).",
          "",
          "**AUC** is the mean of the metric over the curve (trapezoid over equally spaced levels, clean to most "
          "severe); **degradation** is how much of the clean score it loses on average (lower = more graceful). "
          f"Δ and verdicts are against **{ref}** (Holm-adjusted over every curve and model of a metric, α = 0.05).",
          "",
          f"Time: the pass took {meta.get('seconds', 0):.1f} s (evaluation {meta.get('evaluation_seconds', 0):.1f} s, "
          f"bootstrap {meta.get('bootstrap_seconds', 0):.1f} s, on {meta.get('device')}); training these runs "
          f"took {meta.get('train_seconds', 0):.1f} s.", ""]
    for metric in dict.fromkeys(r["metric"] for r in rows):
        md += [f"{h}# {metric}", "",
               "| corruption | modality | model | clean | AUC [95 % CI] | degradation [95 % CI] | Δ degradation vs "
               f"{ref} [95 % CI] | verdict |",
               "|---|---|---|---:|---:|---:|---:|---|"]
        for r in (r for r in rows if r["metric"] == metric):
            delta = ("" if r["model"] == ref else
                     f"{_num(r['degradation_delta']):+.4f} [{_num(r['degradation_delta_ci_low']):+.4f}, "
                     f"{_num(r['degradation_delta_ci_high']):+.4f}]")
            verdict = r.get("degradation_verdict", "")
            if verdict == "better":
                verdict = "**more graceful**"
            elif verdict == "worse":
                verdict = "**less graceful**"
            else:
                verdict = reading(verdict, _num(r.get("degradation_mde", "")))
            md.append(f"| {r['corruption']} | {r['modality']} | {r['model']} | {_num(r['clean']):.4f} | "
                      f"{_num(r['auc']):.4f} [{_num(r['auc_ci_low']):.4f}, {_num(r['auc_ci_high']):.4f}] | "
                      f"{_num(r['degradation']):+.4f} [{_num(r['degradation_ci_low']):+.4f}, "
                      f"{_num(r['degradation_ci_high']):+.4f}] | {delta} | {verdict} |")
        md.append("")
    for name in meta.get("plots", []):
        md += [f"![{name}]({image_prefix}{name})", ""]
    return md


def report_section(report_dir: str | Path) -> list[str]:
    """The section for a comparison report in ``report_dir``: the comparison's robustness folder
    (``<comparison>/robustness``), when ``compare --robustness`` or ``modalfuse robustness`` wrote it."""
    folder = Path(report_dir).parent / "robustness"
    return section_lines(folder, image_prefix="../robustness/")
