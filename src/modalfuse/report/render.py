"""Render a comparison report from run folders (files only: never live objects, never training,
never writing into the run folders).

``render_report`` writes into the report folder:

- ``results.csv``: one row per run (label, seed, every valid/test metric, efficiency, timing);
- ``summary.csv``: one row per model: ``model``, ``<metric>_mean``/``<metric>_std`` for each metric
  of the reported split, ``parameters``, ``train_seconds``, ``inference_samples_per_s``,
  ``flops_per_sample``, ``peak_memory_mb``, ``seeds``, ``reference``, ``verdict`` (against the
  reference on the monitored metric);
- ``comparisons.csv``: the columns of ``stats.verdicts.COLUMNS`` (``report.comparisons``), and
  ``baselines.csv``;
- ``report.md`` and PNG plots (``plots.py``);
- ``report.html``: the same report as one self-contained page (plots embedded, each run's config on
  demand; ``html_report.py``).

Metrics that the runs' ``predictions.npz`` can recompute are recomputed from it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..metrics import direction
from ..stats.verdicts import COLUMNS, RESAMPLES as DEFAULT_RESAMPLES
from ..stats.weighted import NEUTRAL_BAND
from ..training.runfolder import ComparisonFolder
from . import comparisons, evidence, html_report, plots, robustness
from .runs import Run, by_label, collect, metric_names, monitor_of, report_split, seeds_text
from .scheduler import scheduler_lines

EFFICIENCY = ("parameters", "train_seconds", "inference_samples_per_s", "flops_per_sample", "peak_memory_mb")
EFFICIENCY_DIRECTION = {"parameters": "min", "train_seconds": "min", "inference_samples_per_s": "max",
                        "flops_per_sample": "min", "peak_memory_mb": "min"}
EFFICIENCY_TITLE = {"parameters": "parameters", "train_seconds": "train s", "inference_samples_per_s": "samples/s",
                    "flops_per_sample": "FLOPs/sample", "peak_memory_mb": "peak MiB"}
TUNING_FILE = "tuning.json"  # written by `compare --tune` beside compare.json


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

def _efficiency(r: Run) -> dict[str, float]:
    e = (r.analysis or {}).get("efficiency") or {}
    nan = float("nan")
    return {"parameters": e.get("parameters", r.data.get("parameters", nan)), "train_seconds": r.run["train_seconds"],
            "inference_samples_per_s": e.get("inference_samples_per_s", nan),
            "flops_per_sample": e.get("flops_per_sample", nan), "peak_memory_mb": e.get("peak_memory_mb", nan)}


def results_rows(runs: list[Run]) -> list[dict[str, Any]]:
    rows = []
    for r in runs:
        row: dict[str, Any] = {"model": r.label, "seed": r.seed, "run_dir": r.folder.name}
        for split in ("valid", "test"):
            if split in r.metrics:
                row.update({f"{split}_{k}": v for k, v in evidence.run_values(r, split).items()})
        row.update(_efficiency(r))
        row.update(best_epoch=r.run.get("best_epoch"), epochs_run=r.run.get("epochs_run"))
        rows.append(row)
    return rows


def _std(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def summary_rows(runs: list[Run], labels: list[str], split: str, names: list[str],
                 verdicts: dict[str, str] | None = None, reference: str | None = None) -> list[dict[str, Any]]:
    rows = []
    for label, group in by_label(runs, labels).items():
        row: dict[str, Any] = {"model": label}
        per = [evidence.run_values(r, split) for r in group]
        for k in names:
            values = [v[k] for v in per if k in v and not math.isnan(v[k])]
            row[f"{k}_mean"] = float(np.mean(values)) if values else float("nan")
            row[f"{k}_std"] = _std(values)
        for k in EFFICIENCY:
            row[k] = float(np.mean([_efficiency(r)[k] for r in group]))
        if not math.isnan(row["parameters"]):
            row["parameters"] = int(row["parameters"])
        row["seeds"] = len(group)
        if verdicts is not None:
            row["reference"] = reference
            row["verdict"] = verdicts.get(label, "reference")
        rows.append(row)
    return rows


def _csv_text(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    cols: dict[str, None] = dict.fromkeys(columns or [])
    for row in rows:
        cols.update(dict.fromkeys(row))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(cols), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for row in rows:
        w.writerow({k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()})
    return buf.getvalue()


def _fmt(name: str, v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if name == "parameters":
        return f"{int(v):,}"
    if name == "flops_per_sample":
        for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if abs(v) >= scale:
                return f"{v / scale:.2f}{unit}"
        return f"{v:.0f}"
    if name == "inference_samples_per_s":
        return f"{v:,.0f}"
    if name in ("train_seconds", "peak_memory_mb"):
        return f"{v:.1f}" if name == "train_seconds" else f"{v:.2f}"
    return f"{v:.4f}"


def _best(values: list[float], how: str) -> float | None:
    finite = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not finite:
        return None
    return max(finite) if how == "max" else min(finite)


def table_cells(summary: list[dict[str, Any]], names: list[str], baselines: list[dict[str, Any]] | None = None
                ) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Header and rows of ``(text, is_best)`` cells: each metric as ``mean ± std`` (a single value for
    one seed), the verdict against the reference when known, then efficiency; baseline rows last
    (italic model name, never best)."""
    has_verdict = any("verdict" in row for row in summary)
    ref = next((row.get("reference") for row in summary if row.get("reference")), None)
    header = ["model", *names, *([f"vs {ref}"] if has_verdict else []), *(EFFICIENCY_TITLE[k] for k in EFFICIENCY)]
    best = {k: _best([row[f"{k}_mean"] for row in summary], direction(k)) for k in names}
    best.update({k: _best([row[k] for row in summary], EFFICIENCY_DIRECTION[k]) for k in EFFICIENCY})
    rows = []
    for row in summary:
        cells = [(str(row["model"]), False)]
        for k in names:
            mean, std = row[f"{k}_mean"], row[f"{k}_std"]
            text = _fmt(k, mean) + ("" if isinstance(std, float) and math.isnan(std) else f" ± {std:.4f}")
            cells.append((text, best[k] is not None and mean == best[k] and len(summary) > 1))
        if has_verdict:
            cells.append((str(row.get("verdict", "")), False))
        for k in EFFICIENCY:
            cells.append((_fmt(k, row[k]), best[k] is not None and row[k] == best[k] and len(summary) > 1))
        rows.append(cells)
    for b in baselines or []:
        cells = [(f"*{b['model']}*", False), *[(_fmt(k, b.get(k, float("nan"))), False) for k in names]]
        cells += [("", False)] * (int(has_verdict) + len(EFFICIENCY))
        rows.append(cells)
    return header, rows


def _markdown_table(header: list[str], rows: list[list[tuple[str, bool]]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for cells in rows:
        lines.append("| " + " | ".join(f"**{t}**" if best else t for t, best in cells) + " |")
    return "\n".join(lines)


def _read_csv(path: Path) -> list[dict[str, Any]]:
    def value(k: str, v: str) -> Any:
        if k in ("model", "reference", "verdict"):
            return v
        return float(v) if v != "" else float("nan")

    with open(path, newline="") as f:
        return [{k: value(k, v) for k, v in row.items()} for row in csv.DictReader(f)]


TERMINAL_WIDTH = 100


def _aligned(texts: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in texts) for i in range(len(texts[0]))]
    lines = ["  ".join(t.ljust(w) if i == 0 else t.rjust(w) for i, (t, w) in enumerate(zip(r, widths))) for r in texts]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _primary_metric(summary_csv: Path) -> str | None:
    """The primary metric, from ``comparisons.csv`` beside ``summary.csv`` (its ``role`` column)."""
    path = summary_csv.with_name("comparisons.csv")
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        return next((row["metric"] for row in csv.DictReader(f) if row.get("role") == "primary"), None)


def summary_table(summary_csv: str | Path, width: int = TERMINAL_WIDTH) -> str:
    """The summary as aligned plain text (best per column marked ``*``), read from ``summary.csv``,
    at most ``width`` columns wide: the model, the primary metric, the verdict (its first words; the
    reasons are in ``report.md``) and as many other columns as fit, in the file's order; the note
    under it names the columns left out (all are in the file)."""
    summary = _read_csv(Path(summary_csv))
    names = [k[: -len("_mean")] for k in summary[0] if k.endswith("_mean")]
    header, rows = table_cells(summary, names)
    texts = [header] + [[t + ("*" if best else "") for t, best in cells] for cells in rows]
    verdict = [i for i, h in enumerate(header) if h.startswith("vs ")]
    for r in texts[1:]:
        r[0] = r[0] if len(r[0]) <= 28 else r[0][:27] + "…"  # a long model name is cut, never the table
        for i in verdict:
            r[i] = r[i].split(" (")[0]
    primary = _primary_metric(Path(summary_csv))
    keep = [0, *([header.index(primary)] if primary in header else []), *verdict]
    for i in range(1, len(header)):
        if i not in keep and max(len(line) for line in _aligned([[r[j] for j in sorted(keep + [i])] for r in texts])) <= width:
            keep.append(i)
    keep.sort()
    lines = _aligned([[r[j] for j in keep] for r in texts])
    n = {int(row["seeds"]) for row in summary}
    how = "one seed" if n == {1} else "mean ± std over seeds"
    notes = [f"(* best per column; metrics: {how}" + (f"; verdicts on {primary}, with their reasons in report.md)"
                                                      if verdict and primary else ")")]
    left = [header[i] for i in range(len(header)) if i not in keep]
    if left:
        notes.append(f"(not shown, to fit {width} columns: {', '.join(left)}; every column: {Path(summary_csv)})")
    return "\n".join(lines + [textwrap.fill(t, width) for t in notes])


# ---------------------------------------------------------------------------------------------
# report.md
# ---------------------------------------------------------------------------------------------

def _selection_text(runs: list[Run], monitor: str) -> str:
    """Which checkpoint the metrics come from, per model: ``train.select`` can differ between models."""
    last = list(dict.fromkeys(r.label for r in runs if r.config["train"].get("select", "best") == "last"))
    best = list(dict.fromkeys(r.label for r in runs if r.label not in last))
    fixed = "the last epoch's checkpoint (`train.select: last`: a fixed schedule, no selection on validation)"
    if not best:
        return f"from {fixed}."
    chosen = f"from the checkpoint with the best validation `{monitor}`"
    if not last:
        return chosen + "."
    return f"{chosen} ({', '.join(best)}); {', '.join(last)}: from {fixed}."


def _setup_lines(runs: list[Run], info: dict[str, Any], split: str, monitor: str) -> list[str]:
    d = runs[0].data
    task = d["task"]
    mods = ", ".join(f"{m} ({s['dim']}" + ("" if s["seq_len"] is None else f" × {s['seq_len']} steps") + ")"
                     for m, s in d["modalities"].items())
    info_ = d.get("info", {})
    samples = next((info_[k] for k in ("samples", "segments", "videos", "records") if isinstance(info_.get(k), dict)), None)
    sizes = ", ".join(f"{k} {v}" for k, v in samples.items()) if isinstance(samples, dict) else "see data.json"
    scheme = f", label scheme `{info_['label_scheme']}`" if info_.get("label_scheme") else ""
    lines = [
        f"- **Data**: `{runs[0].config['data']['name']}`, {task['kind']} task"
        + (f" with {task['num_classes']} classes" if task["kind"] != "regression" else "")
        + f"{scheme}; modalities {mods}; samples {sizes}. Every run uses the same data and splits.",
        f"- **Seeds**: {', '.join(map(str, sorted({r.seed for r in runs})))} (`train.seed`); "
        f"{len(runs)} runs. Metrics are on the **{split}** split, {_selection_text(runs, monitor)}",
    ]
    train_keys = ("epochs", "batch_size", "optimizer", "learning_rate", "weight_decay", "schedule", "patience", "select")
    common, varies = [], []
    for k in train_keys:
        values = {json.dumps(r.config["train"].get(k)) for r in runs}
        (common if len(values) == 1 else varies).append(k)
    text = ", ".join(f"{k} {runs[0].config['train'].get(k)}" for k in common)
    lines.append(f"- **Training**: {text}" + (f"; set per model: {', '.join(varies)}" if varies else "") + ".")
    if info.get("overrides"):
        lines.append(f"- **Overrides** for every run: `{' '.join(info['overrides'])}`.")
    analysed = [r for r in runs if r.analysis]
    if analysed:
        e = analysed[0].analysis["efficiency"]
        lines.append(
            f"- **Efficiency**: parameters (trainable); FLOPs per sample from `torch.utils.flop_counter` "
            f"(2 per multiply-add, matmuls and convolutions); inference samples/s at batch "
            f"{e['inference_batch_size']} on {e['device']} (median of timed rounds, each round's fastest batch); "
            f"peak memory of one forward pass at that batch (measured as {e['peak_memory_method']}); "
            f"train s = wall-clock training time of the run.")
    missing = [r.folder.name for r in runs if not r.analysis]
    if missing:
        lines.append(f"- **Not analysed** (no efficiency, ablation or attention): {', '.join(missing)}; "
                     f"`modalfuse analyze RUN_DIR` writes their `analysis.json`.")
    if info.get("unfinished"):
        lines.append(f"- **Not finished** (left out): {', '.join(info['unfinished'])}.")
    return lines + scheduler_lines([r.folder for r in runs])


def _ablation_table(runs: list[Run], labels: list[str], monitor: str) -> str | None:
    drops = plots.ablation_drops(runs, labels, monitor)
    if not drops:
        return None
    modalities = sorted({m for per in drops.values() for m in per})
    lines = ["| model | " + " | ".join(f"zero {m}" for m in modalities) + " |",
             "|---|" + "|".join(["---:"] * len(modalities)) + "|"]
    notes = False
    for label, per in drops.items():
        cells = [_ablation_cell(per.get(m)) for m in modalities]
        notes = notes or any(c in (plots.ABLATION_UNUSED, plots.ABLATION_UNDEFINED) for c in cells)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if notes:
        lines += ["", plots.ABLATION_NOTE[:1].upper() + plots.ABLATION_NOTE[1:] + "."]
    return "\n".join(lines)


def _ablation_cell(drops: list[float] | None) -> str:
    if drops is None:
        return plots.ABLATION_UNUSED
    finite = [v for v in drops if math.isfinite(v)]
    if not finite:
        return plots.ABLATION_UNDEFINED
    text = f"{np.mean(finite):+.4f}"
    return text if len(finite) == len(drops) else f"{text} ({len(drops) - len(finite)} of {len(drops)} seeds {plots.ABLATION_UNDEFINED})"


def _directions_line(names: list[str]) -> str:
    parts = [f"{word} is better for {', '.join(f'`{k}`' for k in names if direction(k) == how)}"
             for how, word in (("max", "higher"), ("min", "lower")) if any(direction(k) == how for k in names)]
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def _class_count_lines(runs: list[Run]) -> list[str]:
    counts = evidence.class_counts(runs)
    if not counts:
        return []
    names = evidence.class_names(runs[0])
    md = ["## Class counts", ""]
    if runs[0].kind == "regression":
        md += [f"Sentiment scores binned into 3 classes with a neutral band |score| <= {NEUTRAL_BAND} "
               "(the scores Acc-7 rounds to 0), the classes of `acc3_band`:", ""]
    md += ["| split | " + " | ".join(names) + " | total |", "|---|" + "|".join(["---:"] * (len(names) + 1)) + "|"]
    for split, c in counts.items():
        md.append(f"| {split} | " + " | ".join(f"{x} ({100 * x / max(sum(c), 1):.1f} %)" for x in c) + f" | {sum(c)} |")
    return md + [""]


def _tuning_lines(info_dir: Path | None) -> list[str]:
    if info_dir is None or not (info_dir / TUNING_FILE).is_file():
        return []
    t = json.loads((info_dir / TUNING_FILE).read_text())
    md = ["## Tuning", "",
          f"Each model got the same {t['trials']}-trial Optuna search (TPE sampler, seed {t['seed']}) on the "
          f"validation `{t['monitor']}` ({t['direction']}imised), training seed {t['train_seed']}; the seeds above "
          f"were then trained with each model's best trial. Search space: "
          + ", ".join(f"`{k}` {v}" for k, v in t["space"].items()) + ". Trial history: `tuning.csv`.", ""]
    md += [f"- {w}" for w in t.get("warnings", [])]
    md += ["| model | best valid | chosen values |", "|---|---:|---|"]
    for label, best in t["best"].items():
        md.append(f"| {label} | {best['value']:.4f} | " + ", ".join(f"`{k}={v}`" for k, v in best["params"].items()) + " |")
    return md + [""]


@dataclass
class _Contents:
    """Everything a report shows, computed from the runs before anything is written."""

    records: list[Run]
    info: dict[str, Any]
    labels: list[str]
    split: str
    names: list[str]
    monitor: str
    n_seeds: set[int]
    paired: evidence.Paired | None
    summary: list[dict[str, Any]]
    baselines: list[dict[str, Any]]
    warnings: list[str]
    tuning_dir: Path | None


def _contents(runs: list[str], records: list[Run], info: dict[str, Any], reference: str | None,
              resamples: int) -> _Contents:
    labels = [lab for lab in info.get("labels", []) if any(r.label == lab for r in records)]
    labels += [r.label for r in records if r.label not in labels]
    labels = list(dict.fromkeys(labels))
    split = report_split(records)
    names = metric_names(records, split)
    if evidence.has_predictions(records, split):
        names += [k for k in evidence.run_values(records[0], split) if k not in names]
    monitor = monitor_of(records, split)
    p = evidence.paired(records, labels, split, monitor, reference, primary=info.get("primary"), resamples=resamples,
                        declared_reference=info.get("reference") or None,
                        **({"alpha": info["alpha"]} if "alpha" in info else {}))  # compare --seeds auto: per look
    verdicts = comparisons.summary_verdicts(p) if p else None
    one = len(runs) == 1 and ComparisonFolder.holds(runs[0])
    return _Contents(records, info, labels, split, names, monitor, {len(g) for g in by_label(records, labels).values()},
                     p, summary_rows(records, labels, split, names, verdicts, p.reference if p else None),
                     evidence.baselines(records, split, names), evidence.warnings(records, labels, split, monitor),
                     Path(runs[0]) if one else None)


def _check_out(folder: Path) -> None:
    """The report replaces its folder: refuse anything that is not a report folder (or new)."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out {folder}: exists and is a file, expected a report folder (the report writes "
                        f"report.md, CSV files and plots into it); name a new folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / "report.md").is_file():
        raise UserError(f"--out {folder}: exists and is not a report folder (no report.md); the report replaces "
                        f"its folder, so name a new or an earlier report folder")


def _summary_md(c: _Contents) -> list[str]:
    p, base, names = c.paired, c.baselines, c.names
    header, rows = table_cells(c.summary, names, base)
    how = seeds_text(min(c.n_seeds)) if len(c.n_seeds) == 1 else "mean ± std over each model's seeds"
    md = [f"## Summary ({c.split} split, {how}; best per column in bold)", "",
          _directions_line(names)
          + (f" `vs {p.reference}`: the verdict on `{p.primary}` (see *Paired comparisons*)." if p else "")
          + (" Italic rows are baselines (`baselines.csv`): " + "; ".join(f"*{b['model']}*: {b['note']}" for b in base) + "."
             if base else ""), ""]
    if "acc3_band" in names:
        md += [f"`acc3_band`: 3 classes (negative / neutral / positive) from the predicted and the true score, "
               f"neutral |score| <= {NEUTRAL_BAND}.", ""]
    md += [_markdown_table(header, rows), ""]
    if p is None:
        md += ["No intervals: some runs have no `predictions.npz` (trained before it was saved); "
               "retrain them to compare with intervals.", ""]
    return md


def _report_md(c: _Contents, figures: list[tuple[str, str]], folder: Path) -> list[str]:
    md = [f"# Comparison: {c.info.get('name', 'runs')}", ""]
    if c.info.get("description"):
        md += [c.info["description"], ""]
    md += comparisons.header_lines(c.paired, c.info) if c.paired else []
    md += ["Reproduce with:", "", "```", c.info["command"], "```", "", *_summary_md(c)]
    if c.warnings:
        md += ["## Warnings", "", *[f"- **Warning**: {w}" for w in c.warnings], ""]
    if c.paired is not None:
        md += comparisons.section(c.paired)
    md += _class_count_lines(c.records)
    md += _tuning_lines(c.tuning_dir)
    md += ["## Setup", "", *_setup_lines(c.records, c.info, c.split, c.monitor), ""]
    ablation = _ablation_table(c.records, c.labels, c.monitor)
    if ablation:
        md += ["## Modality ablation", "",
               f"Drop in {c.split} `{c.monitor}` when one modality is missing at test time (its encoder state "
               f"zeroed, as modality dropout and the robustness curves do) "
               f"(positive = the model relies on it; {'one seed' if c.n_seeds == {1} else 'mean over seeds'}):",
               "", ablation, ""]
    md += robustness.report_section(folder)  # <comparison>/robustness, when compare --robustness wrote it
    md += ["## Plots", ""]
    for name, caption in figures:
        md += [f"### {caption}", "", f"![{caption}]({name})", ""]
    md += ["Per-run numbers: `results.csv`; per-model: `summary.csv`"
           + ("; comparisons: `comparisons.csv`" if c.paired else "") + ".", ""]
    return md


def _write_files(c: _Contents, tmp: Path, folder: Path) -> None:
    (tmp / "results.csv").write_text(_csv_text(results_rows(c.records)))
    (tmp / "summary.csv").write_text(_csv_text(c.summary))
    if c.paired is not None:
        (tmp / "comparisons.csv").write_text(_csv_text(comparisons.csv_rows(c.paired), list(COLUMNS)))
    if c.baselines:
        (tmp / "baselines.csv").write_text(_csv_text(c.baselines))
    figures = plots.render_all(c.records, c.labels, c.split, c.monitor, c.names, tmp, paired=c.paired,
                               baselines=c.baselines)
    from ..claims.output import report_section as claims_section  # here: modalfuse.claims reads report modules
    claims = claims_section(c.tuning_dir, c.info, tmp, reference=c.paired.reference if c.paired else None)
    md = "\n".join(_report_md(c, figures, folder) + claims)  # a comparison preset's `claims:` files, last
    (tmp / "report.md").write_text(md)
    title = f"Comparison: {c.info.get('name', 'runs')}"
    (tmp / html_report.HTML_FILE).write_text(html_report.report_html(md, c.records, [tmp, folder], title))


def _replace_folder(folder: Path, write: Any) -> None:
    """``write(tmp)`` fills a temporary folder beside ``folder``, which then replaces ``folder``."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        write(tmp)
        os.chmod(tmp, 0o755)
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old.{os.getpid()}")
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def render_report(runs: list[str], out: str | None = None, *, reference: str | None = None,
                  resamples: int = DEFAULT_RESAMPLES) -> str:
    """Write the report for run folders (or one comparison folder); returns the ``report.md`` path.

    Args:
        runs: run folders, or one comparison folder (with ``compare.json``).
        out: the report folder (default ``<comparison>/report``, or ``report`` beside loose runs);
            an existing file, or a folder that is not a report, is refused.
        reference: the model every other is compared with (default: the best unimodal model).
        resamples: bootstrap resamples for the intervals.

    Everything is computed before anything is written; the files are written into a temporary
    folder that replaces ``out`` at the end, so a failed report leaves no partial folder.
    """
    if out is not None:  # before reading any run: a wrong --out costs nothing
        _check_out(Path(out))
    records, info, default_out = collect([str(r) for r in runs])
    folder = Path(out) if out is not None else default_out
    _check_out(folder)
    c = _contents([str(r) for r in runs], records, info, reference, resamples)
    _replace_folder(folder, lambda tmp: _write_files(c, tmp, folder))
    return str(folder / "report.md")
