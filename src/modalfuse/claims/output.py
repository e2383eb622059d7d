"""What the claims write: ``claims.csv`` and the "Published claims" markdown (the ``claims`` command's
``claims.md`` and the report's section)."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from .evaluate import ClaimRow, evaluate
from .schema import load_claims

COLUMNS = [f.name for f in fields(ClaimRow)]  # claim, kind, dataset, metric, published, reproduced, ci_low, ...


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def csv_text(rows: list[ClaimRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([_num(v) for v in asdict(r).values()])
    return buf.getvalue()


def _cell(v: float | None, unit: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if unit == "count":
        return f"{v / 1e6:.1f}M" if abs(v) >= 1e6 else f"{v:,.0f}"
    return f"{v:.2f}" if unit == "percent" else f"{v:.4f}"


def markdown(rows: list[ClaimRow], paper: str, source: str) -> list[str]:
    """One table per comparison: claim, kind, models, published, reproduced with its interval, verdict;
    the reasons below it."""
    md: list[str] = []
    for comparison in dict.fromkeys(r.comparison for r in rows):
        these = [r for r in rows if r.comparison == comparison]
        md += [f"Claims of {paper} (`{source}`) against `{comparison}` (runs on {these[0].tested_on or 'unmatched data'}). "
               "Reproduced: a value claim's score, otherwise the difference of the two models (a − b), in the "
               "claim's units, with its interval (95 %; 90 % for the two one-sided tests of equivalence, "
               "difference and non-inferiority). p-values are Holm-adjusted together with the report's paired "
               "comparisons of the same metric.", "",
               "| claim | kind | models | metric | published | reproduced [interval] | margin (by) | verdict |",
               "|---|---|---|---|---:|---|---|---|"]
        for r in these:
            interval = "" if r.ci_low is None or r.ci_low == r.ci_high else f" [{_cell(r.ci_low, r.unit)}, {_cell(r.ci_high, r.unit)}]"
            margin = f"{r.margin:g} ({r.margin_by})" if r.margin is not None else "—"
            md.append(f"| `{r.claim}` | {r.kind} | {r.models} | {r.metric} → `{r.measured_as or '—'}` | "
                      f"{_cell(r.published, r.unit) if r.unit == 'count' else _num(r.published) or '—'} | "
                      f"{_cell(r.reproduced, r.unit)}{interval} | {margin} | **{r.verdict}** |")
        notes = list(dict.fromkeys(r.notes for r in these if r.notes))
        if len(notes) == 1:  # the same qualification for every tested claim: said once
            md += ["", f"Every tested claim: {notes[0]}."]
        md += ["", *[f"- `{r.claim}` ({r.source}): "
                     f"{r.reason.removeprefix(r.notes + '; ') if len(notes) == 1 and r.notes else r.reason}." for r in these], ""]
    return md


def run_claims(claims: str, compare_dirs: list[str], *, reference: str | None = None) -> tuple[list[ClaimRow], list[str]]:
    """Evaluate a claims file (name or path) against comparison folders: rows and markdown lines."""
    cf = load_claims(claims)
    rows = [row for d in compare_dirs for row in evaluate(cf, d, reference=reference)]
    return rows, markdown(rows, cf.paper, claims)


def default_out(claims: str, compare_dir: str) -> Path:
    """Where ``modalfuse claims`` writes without ``--out``: ``<COMPARE_DIR>/claims-<claims file name>``."""
    return Path(compare_dir) / f"claims-{Path(claims).stem}"


def write_claims(rows: list[ClaimRow], md: list[str], out: str | Path) -> Path:
    """``claims.csv`` and ``claims.md`` in ``out`` (each written atomically)."""
    from ..files import atomic_write

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "claims.csv", csv_text(rows).encode())
    atomic_write(out / "claims.md", ("# Published claims\n\n" + "\n".join(md) + "\n").encode())
    return out / "claims.csv"


def report_section(compare_dir: Path | None, info: dict[str, Any], folder: Path, *,
                   reference: str | None = None) -> list[str]:
    """The report's "Published claims" section for a comparison folder whose preset names claims
    files (``claims:`` in ``configs/compare/*.yaml``); writes ``claims.csv`` into the report
    ``folder``. Empty for loose run folders (``compare_dir`` None) and presets without claims."""
    names = preset_claims(info.get("configs") or []) if compare_dir is not None else []
    if not names:
        return []
    md = ["## Published claims", ""]
    rows: list[ClaimRow] = []
    for name in names:
        r, lines = run_claims(name, [str(compare_dir)], reference=reference)
        rows += r
        md += lines
    md += ["Format, verdicts and the tests: docs/claims.md. All rows: `claims.csv`.", ""]
    (folder / "claims.csv").write_text(csv_text(rows))
    return md


def preset_claims(configs: list[str]) -> list[str]:
    """The claims files the comparison presets of a ``compare.json`` name (``claims:``)."""
    from ..comparison.plan import COMPARE_DIR, DEFAULT_PRESET
    from ..config import load_yaml

    names: list[str] = []
    for item in configs or [DEFAULT_PRESET]:
        path = COMPARE_DIR / f"{item}.yaml"
        path = path if path.is_file() else Path(item)
        if path.is_file() and path.suffix in (".yaml", ".yml"):
            names += [str(n) for n in (load_yaml(path).get("claims") or [])]
    return list(dict.fromkeys(names))
