"""Reading run folders for a report: what each run holds, checked for being comparable.

Nothing here writes, trains or analyses: a run without ``analysis.json`` is reported without
efficiency, ablation and attention (``modalfuse analyze RUN`` writes it); a run without
``predictions.npz`` (trained before it existed) is reported without intervals.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..training.runfolder import COMPLETE, CONFIG, DATA, METRICS, ComparisonFolder, RunFolder


@dataclass
class Run:
    """What the report needs from one run folder, read eagerly as plain values (``read_run``); the
    API's ``modalfuse.Run`` reads the same files through the same ``RunFolder``, lazily and typed."""

    label: str
    seed: int
    folder: Path
    config: dict[str, Any]
    data: dict[str, Any]
    metrics: dict[str, Any]  # {"valid": {...}, "test": {...}}
    history: list[dict[str, Any]]  # metrics.jsonl rows
    run: dict[str, Any]  # run.json
    analysis: dict[str, Any] | None  # analysis.json, None when the run was not analysed
    predictions: dict[str, dict[str, np.ndarray]] | None  # predictions.npz by split, None when absent

    @property
    def kind(self) -> str:
        return self.data["task"]["kind"]

    @property
    def modalities(self) -> list[str]:
        """The modalities the model reads (config ``model.modalities``, else all of the data's)."""
        mods = (self.config.get("model") or {}).get("modalities")
        return sorted(mods) if mods else sorted(self.data.get("modalities", {}))


def read_run(folder: Path, label: str, seed: int) -> Run:
    """One finished run folder (``metrics.json``, ``run.json``, ``config.yaml``, ``data.json``)."""
    run = RunFolder(folder)
    run.require(METRICS, COMPLETE, CONFIG, DATA)
    return Run(label, seed, folder, run.read_config(), run.read_data_info(), run.read_metrics(), run.read_history(),
               run.read_completion(), run.read_analysis(), run.read_predictions())


def _label_of(folder: Path) -> str:
    """A loose run folder's label: its name without the ``-YYYYmmdd-HHMMSS[-k]`` stamp."""
    return re.sub(r"-\d{8}-\d{6}(-\d+)?$", "", re.sub(r"-seed\d+$", "", folder.name))


def _task_text(r: Run) -> str:
    t = r.data["task"]
    return t["kind"] + (f" with {t['num_classes']} classes" if t["kind"] != "regression" else "")


def check_comparable(runs: list[Run]) -> None:
    """Every run has the same task (kind and classes) and the same test examples; else one error
    naming two runs that differ."""
    first = runs[0]
    for r in runs[1:]:
        if (r.kind, r.data["task"].get("num_classes")) != (first.kind, first.data["task"].get("num_classes")):
            raise UserError(f"{r.folder}: a {_task_text(r)} task, but {first.folder} is a {_task_text(first)} task; "
                            f"a report compares runs of one task")
    with_pred = [r for r in runs if r.predictions and "test" in r.predictions]
    for r in with_pred[1:]:
        a, b = with_pred[0].predictions["test"]["ids"], r.predictions["test"]["ids"]
        if len(a) != len(b) or not np.array_equal(a, b):
            raise UserError(f"{r.folder}: its {len(b)} test examples differ from those of {with_pred[0].folder} "
                            f"({len(a)}); runs compared example by example must share their test split")


def collect(paths: list[str]) -> tuple[list[Run], dict[str, Any], Path]:
    """Runs, the comparison's description (``compare.json`` or a stand-in) and the default report folder."""
    if len(paths) == 1 and ComparisonFolder.holds(paths[0]):
        root = ComparisonFolder(paths[0])
        info = root.read_plan()
        runs, missing = [], []
        for r in info["runs"]:
            run = root.run(r["folder"])
            if run.is_finished():
                runs.append(read_run(run.path, r["label"], r["seed"]))
            else:
                missing.append(r["folder"])
        info["unfinished"] = missing
        if not runs:
            raise UserError(f"{root}: no finished runs yet (run the comparison command: {info['command']})")
        check_comparable(runs)
        return runs, info, root.report_dir
    folders = [Path(p) for p in paths]
    for f in folders:
        if not f.is_dir():
            raise UserError(f"{f}: not a run folder or comparison folder")
    runs = []
    for f in folders:
        cfg = RunFolder(f).read_config() if RunFolder(f).has(CONFIG) else {}
        seed = int((cfg.get("train") or {}).get("seed", 0))
        runs.append(read_run(f, _label_of(f), seed))
    check_comparable(runs)
    labels = list(dict.fromkeys(r.label for r in runs))
    parents = {f.resolve().parent for f in folders}
    default = (parents.pop() if len(parents) == 1 else Path.cwd()) / "report"
    info = {"name": "runs", "description": "", "command": shlex.join(["modalfuse", "report", *paths]),
            "labels": labels, "seeds": sorted({r.seed for r in runs}), "overrides": [], "unfinished": []}
    return runs, info, default


def report_split(runs: list[Run]) -> str:
    return "test" if all("test" in r.metrics for r in runs) else "valid"


def metric_names(runs: list[Run], split: str) -> list[str]:
    """Scalar metrics every run reports on ``split``, in the first run's order."""
    names: dict[str, None] = {}
    for r in runs:
        for k, v in r.metrics.get(split, {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                names[k] = None
    return [k for k in names if all(k in r.metrics.get(split, {}) for r in runs)]


def monitor_of(runs: list[Run], split: str) -> str:
    """The task's monitored metric (run.json), when it is among the reported metrics."""
    names = metric_names(runs, split)
    monitor = runs[0].run.get("monitor")
    return monitor if monitor in names else names[0]


def by_label(runs: list[Run], labels: list[str]) -> dict[str, list[Run]]:
    return {lab: [r for r in runs if r.label == lab] for lab in labels if any(r.label == lab for r in runs)}


def seeds_text(n: int) -> str:
    """How a value over ``n`` seeds is described: never "mean ± std" for one seed."""
    return "one seed" if n == 1 else f"mean ± std over {n} seeds"
