"""Render a comparison report from run folders (files only, never live objects).

``render_report`` writes into the report folder:

- ``results.csv``: one row per run (label, seed, every valid/test metric, efficiency, timing);
- ``summary.csv``: one row per model: ``model``, ``<metric>_mean``/``<metric>_std`` for each metric
  of the reported split, ``parameters``, ``train_seconds``, ``inference_samples_per_s``,
  ``flops_per_sample``, ``peak_memory_mb``, ``seeds``;
- ``report.md``: the summary table with the best value per column in bold, the setup, the command;
- PNG plots (see ``plots.py``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import UserError
from ..metrics import direction
from ..training.runfolder import atomic_write_text, read_jsonl
from .analysis import analyze_run, read_analysis

COMPARE_FILE = "compare.json"
EFFICIENCY = ("parameters", "train_seconds", "inference_samples_per_s", "flops_per_sample", "peak_memory_mb")
EFFICIENCY_DIRECTION = {"parameters": "min", "train_seconds": "min", "inference_samples_per_s": "max",
                        "flops_per_sample": "min", "peak_memory_mb": "min"}
EFFICIENCY_TITLE = {"parameters": "parameters", "train_seconds": "train s", "inference_samples_per_s": "samples/s",
                    "flops_per_sample": "FLOPs/sample", "peak_memory_mb": "peak MiB"}


@dataclass
class Run:
    """What the report needs from one run folder."""

    label: str
    seed: int
    folder: Path
    config: dict[str, Any]
    data: dict[str, Any]
    metrics: dict[str, Any]  # {"valid": {...}, "test": {...}}
    history: list[dict[str, Any]]  # metrics.jsonl rows
    run: dict[str, Any]  # run.json
    analysis: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Reading run folders
# ---------------------------------------------------------------------------------------------

def _read_run(folder: Path, label: str, seed: int) -> Run:
    if not (folder / "metrics.json").is_file() or not (folder / "run.json").is_file():
        raise UserError(f"{folder}: not a finished run folder (no metrics.json/run.json)")
    analysis = read_analysis(folder)
    if analysis is None:  # runs trained with `modalfuse train`: analyse them now
        print(f"analysing {folder} ...", file=sys.stderr, flush=True)
        analysis = analyze_run(folder)
    return Run(label, seed, folder, yaml.safe_load((folder / "config.yaml").read_text()),
               json.loads((folder / "data.json").read_text()), json.loads((folder / "metrics.json").read_text()),
               read_jsonl(folder / "metrics.jsonl"), json.loads((folder / "run.json").read_text()), analysis)


def _label_of(folder: Path) -> str:
    """A loose run folder's label: its name without the ``-YYYYmmdd-HHMMSS[-k]`` stamp."""
    return re.sub(r"-\d{8}-\d{6}(-\d+)?$", "", re.sub(r"-seed\d+$", "", folder.name))


def collect(paths: list[str]) -> tuple[list[Run], dict[str, Any], Path]:
    """Runs, the comparison's description (``compare.json`` or a stand-in) and the default report folder."""
    if len(paths) == 1 and (Path(paths[0]) / COMPARE_FILE).is_file():
        root = Path(paths[0])
        info = json.loads((root / COMPARE_FILE).read_text())
        runs, missing = [], []
        for r in info["runs"]:
            folder = root / r["folder"]
            if (folder / "run.json").is_file():
                runs.append(_read_run(folder, r["label"], r["seed"]))
            else:
                missing.append(r["folder"])
        info["unfinished"] = missing
        if not runs:
            raise UserError(f"{root}: no finished runs yet (run the comparison command: {info['command']})")
        return runs, info, root / "report"
    folders = [Path(p) for p in paths]
    for f in folders:
        if not f.is_dir():
            raise UserError(f"{f}: not a run folder or comparison folder")
    runs = []
    for f in folders:
        seed = int(yaml.safe_load((f / "config.yaml").read_text())["train"]["seed"]) if (f / "config.yaml").is_file() else 0
        runs.append(_read_run(f, _label_of(f), seed))
    labels = list(dict.fromkeys(r.label for r in runs))
    parents = {f.resolve().parent for f in folders}
    default = (parents.pop() if len(parents) == 1 else Path.cwd()) / "report"
    info = {"name": "runs", "description": "", "command": shlex.join(["modalfuse", "report", *paths]),
            "labels": labels, "seeds": sorted({r.seed for r in runs}), "overrides": [], "unfinished": []}
    return runs, info, default


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

def report_split(runs: list[Run]) -> str:
    return "test" if all("test" in r.metrics for r in runs) else "valid"


def metric_names(runs: list[Run], split: str) -> list[str]:
    names: dict[str, None] = {}
    for r in runs:
        for k, v in r.metrics.get(split, {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                names[k] = None
    return list(names)


def monitor_of(runs: list[Run], split: str) -> str:
    """The task's monitored metric (run.json), when it is among the reported metrics."""
    names = metric_names(runs, split)
    monitor = runs[0].run.get("monitor")
    return monitor if monitor in names else names[0]


def _efficiency(r: Run) -> dict[str, float]:
    e = r.analysis["efficiency"]
    return {"parameters": e["parameters"], "train_seconds": r.run["train_seconds"],
            "inference_samples_per_s": e["inference_samples_per_s"], "flops_per_sample": e["flops_per_sample"],
            "peak_memory_mb": e["peak_memory_mb"]}


def results_rows(runs: list[Run]) -> list[dict[str, Any]]:
    rows = []
    for r in runs:
        row: dict[str, Any] = {"model": r.label, "seed": r.seed, "run_dir": r.folder.name}
        for split in ("valid", "test"):
            for k in metric_names([r], split):
                row[f"{split}_{k}"] = r.metrics[split][k]
        row.update(_efficiency(r))
        row.update(best_epoch=r.run.get("best_epoch"), epochs_run=r.run.get("epochs_run"))
        rows.append(row)
    return rows


def _std(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def summary_rows(runs: list[Run], labels: list[str]) -> list[dict[str, Any]]:
    split = report_split(runs)
    names = metric_names(runs, split)
    rows = []
    for label in labels:
        group = [r for r in runs if r.label == label]
        if not group:
            continue
        row: dict[str, Any] = {"model": label}
        for k in names:
            values = [float(r.metrics[split][k]) for r in group if k in r.metrics[split]]
            row[f"{k}_mean"] = float(np.mean(values)) if values else float("nan")
            row[f"{k}_std"] = _std(values)
        for k in EFFICIENCY:
            row[k] = float(np.mean([_efficiency(r)[k] for r in group]))
        row["parameters"] = int(row["parameters"])
        row["seeds"] = len(group)
        rows.append(row)
    return rows


def _csv_text(rows: list[dict[str, Any]]) -> str:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()})
    return buf.getvalue()


def _fmt(name: str, v: float) -> str:
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
    finite = [v for v in values if v is not None and not math.isnan(v)]
    if not finite:
        return None
    return max(finite) if how == "max" else min(finite)


def table_cells(summary: list[dict[str, Any]], names: list[str]) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Header and rows of ``(text, is_best)`` cells: each metric as ``mean ± std``, then efficiency."""
    header = ["model", *names, *(EFFICIENCY_TITLE[k] for k in EFFICIENCY)]
    best = {k: _best([row[f"{k}_mean"] for row in summary], direction(k)) for k in names}
    best.update({k: _best([row[k] for row in summary], EFFICIENCY_DIRECTION[k]) for k in EFFICIENCY})
    rows = []
    for row in summary:
        cells = [(row["model"], False)]
        for k in names:
            mean, std = row[f"{k}_mean"], row[f"{k}_std"]
            text = _fmt(k, mean) + ("" if math.isnan(std) else f" ± {std:.4f}")
            cells.append((text, best[k] is not None and mean == best[k] and len(summary) > 1))
        for k in EFFICIENCY:
            cells.append((_fmt(k, row[k]), best[k] is not None and row[k] == best[k] and len(summary) > 1))
        rows.append(cells)
    return header, rows


def _markdown_table(header: list[str], rows: list[list[tuple[str, bool]]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for cells in rows:
        lines.append("| " + " | ".join(f"**{t}**" if best else t for t, best in cells) + " |")
    return "\n".join(lines)


def _read_csv(path: Path) -> list[dict[str, Any]]:
    def value(k: str, v: str) -> Any:
        if k == "model":
            return v
        return float(v) if v != "" else float("nan")

    with open(path, newline="") as f:
        return [{k: value(k, v) for k, v in row.items()} for row in csv.DictReader(f)]


def summary_table(summary_csv: str | Path) -> str:
    """The summary as aligned plain text (best per column marked ``*``), read from ``summary.csv``."""
    summary = _read_csv(Path(summary_csv))
    names = [k[: -len("_mean")] for k in summary[0] if k.endswith("_mean")]
    header, rows = table_cells(summary, names)
    texts = [header] + [[t + ("*" if best else "") for t, best in cells] for cells in rows]
    widths = [max(len(r[i]) for r in texts) for i in range(len(header))]
    lines = ["  ".join(t.ljust(w) if i == 0 else t.rjust(w) for i, (t, w) in enumerate(zip(r, widths))) for r in texts]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n(* best per column; metrics: mean ± std over seeds)"


# ---------------------------------------------------------------------------------------------
# report.md
# ---------------------------------------------------------------------------------------------

def _setup_lines(runs: list[Run], info: dict[str, Any], split: str, monitor: str) -> list[str]:
    d = runs[0].data
    task = d["task"]
    mods = ", ".join(f"{m} ({s['dim']}" + ("" if s["seq_len"] is None else f" × {s['seq_len']} steps") + ")"
                     for m, s in d["modalities"].items())
    info_ = d.get("info", {})
    samples = next((info_[k] for k in ("samples", "segments", "videos") if isinstance(info_.get(k), dict)), None)
    sizes = ", ".join(f"{k} {v}" for k, v in samples.items()) if isinstance(samples, dict) else "see data.json"
    lines = [
        f"- **Data**: `{runs[0].config['data']['name']}`, {task['kind']} task"
        + (f" with {task['num_classes']} classes" if task["kind"] != "regression" else "")
        + f"; modalities {mods}; samples {sizes}. Every run uses the same data and splits.",
        f"- **Seeds**: {', '.join(map(str, sorted({r.seed for r in runs})))} (`train.seed`); "
        f"{len(runs)} runs. Metrics are on the **{split}** split, "
        + ("from the last epoch's checkpoint (`train.select: last`: a fixed schedule, no selection on "
           "validation)." if runs[0].config["train"].get("select") == "last"
           else f"from the checkpoint with the best validation `{monitor}`."),
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
    e = runs[0].analysis["efficiency"]
    lines.append(
        f"- **Efficiency**: parameters (trainable); FLOPs per sample from `torch.utils.flop_counter` "
        f"(2 per multiply-add, matmuls and convolutions); inference samples/s at batch "
        f"{e['inference_batch_size']} on {e['device']}; peak memory of one forward pass at that batch "
        f"(measured as {e['peak_memory_method']}); train s = wall-clock training time of the run.")
    if info.get("unfinished"):
        lines.append(f"- **Not finished** (left out): {', '.join(info['unfinished'])}.")
    return lines


def _ablation_table(runs: list[Run], labels: list[str], monitor: str) -> str:
    from .plots import ablation_drops

    drops = ablation_drops(runs, labels, monitor)
    modalities = sorted({m for per in drops.values() for m in per})
    lines = ["| model | " + " | ".join(f"zero {m}" for m in modalities) + " |",
             "|---|" + "|".join(["---:"] * len(modalities)) + "|"]
    for label, per in drops.items():
        lines.append(f"| {label} | " + " | ".join(
            f"{np.mean(per[m]):+.4f}" if m in per else "—" for m in modalities) + " |")
    return "\n".join(lines)


def _directions_line(names: list[str]) -> str:
    parts = [f"{word} is better for {', '.join(f'`{k}`' for k in names if direction(k) == how)}"
             for how, word in (("max", "higher"), ("min", "lower")) if any(direction(k) == how for k in names)]
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def render_report(runs: list[str], out: str | None = None) -> str:
    """Write the report for run folders (or one comparison folder); returns the ``report.md`` path."""
    from . import plots

    records, info, default_out = collect([str(r) for r in runs])
    folder = Path(out) if out is not None else default_out
    folder.mkdir(parents=True, exist_ok=True)
    labels = [lab for lab in info.get("labels", []) if any(r.label == lab for r in records)]
    labels += [r.label for r in records if r.label not in labels]
    split = report_split(records)
    names = metric_names(records, split)
    monitor = monitor_of(records, split)

    summary = summary_rows(records, labels)
    atomic_write_text(folder / "results.csv", _csv_text(results_rows(records)))
    atomic_write_text(folder / "summary.csv", _csv_text(summary))
    figures = plots.render_all(records, labels, split, monitor, folder)

    header, rows = table_cells(summary, names)
    n_seeds = len({r.seed for r in records})
    md = [f"# Comparison: {info.get('name', 'runs')}", ""]
    if info.get("description"):
        md += [info["description"], ""]
    md += ["Reproduce with:", "", "```", info["command"], "```", "",
           f"## Summary ({split} split, mean ± std over {n_seeds} seed{'s' if n_seeds > 1 else ''}; "
           "best per column in bold)", "",
           _directions_line(names), "",
           _markdown_table(header, rows), "", "## Setup", "", *_setup_lines(records, info, split, monitor), ""]
    md += ["## Modality ablation", "",
           f"Drop in {split} `{monitor}` when one modality's features are zeroed at test time "
           f"(positive = the model relies on it; mean over seeds):", "",
           _ablation_table(records, labels, monitor), ""]
    md += ["## Plots", ""]
    for name, caption in figures:
        md += [f"### {caption}", "", f"![{caption}]({name})", ""]
    md += ["Per-run numbers: `results.csv`; per-model: `summary.csv`.", ""]
    report = folder / "report.md"
    atomic_write_text(report, "\n".join(md))
    return str(report)
