"""``modalfuse compare``: train every model of a comparison under the same data, splits and seeds.

A comparison preset is a YAML file in ``configs/compare/``::

    # modalfuse compare mosi
    description: unimodal baselines against early, late and attention fusion on CMU-MOSI
    seeds: 3                       # seeds 0..2 (train.seed); --seeds overrides
    models:                        # label -> training preset/config, or {config:, overrides:}
      text: mosi/text
      early: {config: mosi/early, overrides: [model.dropout=0.2]}
    overrides: [train.epochs=20]   # applied to every run (before --set)

Each run is an ordinary run folder ``<out>/runs/<label>-seed<k>``; after training, ``analysis.json``
is written beside it. Re-running the same command reuses finished runs, resumes an interrupted one
from its last checkpoint (or restarts it cleanly when no checkpoint was written) and trains the rest.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import apply_overrides, build_config, load_yaml
from ..errors import ConfigError, UserError, closest
from ..listing import compare_preset_names
from ..training.runfolder import read_jsonl, write_json
from .analysis import ANALYSIS_FILE, analyze_run

COMPARE_DIR = Path(__file__).resolve().parents[1] / "configs" / "compare"
DEFAULT_PRESET = "mosi"
COMPARE_FILE = "compare.json"
PRESET_KEYS = ("description", "seeds", "models", "overrides")


@dataclass
class RunSpec:
    """One training run of a comparison: a model label, a seed and its fully resolved config."""

    label: str
    seed: int
    raw: dict[str, Any]  # the config after every override, as passed to ``train``

    @property
    def name(self) -> str:
        return f"{self.label}-seed{self.seed}"


@dataclass
class Plan:
    name: str
    description: str
    seeds: list[int]
    labels: list[str]
    runs: list[RunSpec] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Presets -> a plan of runs
# ---------------------------------------------------------------------------------------------

def _find(item: str) -> Path:
    """A comparison preset name, or a path to a comparison or training config."""
    preset = COMPARE_DIR / f"{item}.yaml"
    if preset.is_file() and not Path(item).is_file():
        return preset
    from ..training.run import resolve_config_path

    try:
        return resolve_config_path(item)
    except UserError:
        names = compare_preset_names()
        raise UserError(
            f"{item}: no such comparison preset or config file{closest(item, names)}; "
            f"comparison presets: {', '.join(names)}"
        ) from None


def _model_config(ref: str, base: Path) -> Path:
    """A model entry: a path relative to the comparison file, or a training preset name."""
    from ..training.run import resolve_config_path

    local = base.parent / ref
    return local if local.is_file() else resolve_config_path(ref)


def _read_preset(path: Path) -> dict[str, Any]:
    raw = load_yaml(path)
    unknown = [k for k in raw if k not in PRESET_KEYS]
    if unknown:
        raise ConfigError(f"{path}: unknown key '{unknown[0]}'{closest(unknown[0], PRESET_KEYS)}; "
                          f"valid keys: {', '.join(PRESET_KEYS)}")
    if not isinstance(raw.get("models"), dict) or not raw["models"]:
        raise ConfigError(f"{path}: 'models' must map labels to configs, e.g. {{text: mosi/text}}")
    if not isinstance(raw.get("overrides", []), list):
        raise ConfigError(f"{path}: 'overrides' must be a list of KEY=VALUE strings")
    return raw


def plan(configs: list[str], seeds: int | None = None, overrides: list[str] | None = None) -> Plan:
    """Resolve comparison presets and/or training configs into the list of runs (validated)."""
    configs = list(configs) or [DEFAULT_PRESET]
    entries: list[tuple[str, Path, list[str]]] = []  # (label, training config, overrides)
    descriptions, preset_seeds = [], []
    for item in configs:
        path = _find(item)
        raw = load_yaml(path)
        if "models" in raw:  # a comparison preset
            spec = _read_preset(path)
            descriptions.append(str(spec.get("description", "")).strip())
            if spec.get("seeds") is not None:
                preset_seeds.append(int(spec["seeds"]))
            for label, entry in spec["models"].items():
                if isinstance(entry, str):
                    entry = {"config": entry}
                if not isinstance(entry, dict) or set(entry) - {"config", "overrides"} or "config" not in entry:
                    raise ConfigError(f"{path}: models.{label} must be a config name or {{config:, overrides: [...]}}")
                entries.append((str(label), _model_config(entry["config"], path),
                                [*spec.get("overrides", []), *entry.get("overrides", [])]))
        else:  # a single training config: one more model
            entries.append((path.stem, path, []))
    labels = [label for label, _, _ in entries]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ConfigError(f"model label '{dupes[0]}' appears twice in {', '.join(configs)}; labels must be unique")
    n_seeds = seeds if seeds is not None else (max(preset_seeds) if preset_seeds else 1)
    if n_seeds < 1:
        raise ConfigError(f"--seeds {n_seeds}: expected at least 1")
    name = "-".join(Path(c).stem if Path(c).suffix else c.replace("/", "-") for c in configs)
    result = Plan(name, " ".join(d for d in descriptions if d), list(range(n_seeds)), labels)
    for seed in result.seeds:  # seed-major: an interrupted comparison already covers every model
        for label, path, extra in entries:
            raw = apply_overrides(load_yaml(path), [*extra, *(overrides or []),
                                                    f"train.seed={seed}", "train.progress=none"])
            build_config(raw)  # validate every run before training any
            result.runs.append(RunSpec(label, seed, raw))
    return result


# ---------------------------------------------------------------------------------------------
# Run folder states
# ---------------------------------------------------------------------------------------------

def _first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            diff = _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
            if diff:
                return diff
        return None
    return None if a == b else f"{prefix[:-1]}: {a!r} there, {b!r} now"


def _state(folder: Path, spec: RunSpec) -> str:
    """``new``, ``finished`` (metrics + run.json), ``trained`` (analysis missing), ``resumable``
    or ``broken`` (restart cleanly). A folder trained with another config is an error."""
    if not folder.exists():
        return "new"
    saved = folder / "config.yaml"
    if not saved.is_file():
        return "broken"
    want = build_config(spec.raw).to_dict()
    diff = _first_difference(yaml.safe_load(saved.read_text()), want)
    if diff:
        raise UserError(f"{folder}: this run was trained with a different config ({diff}); "
                        f"use another --out, or delete the folder to retrain it")
    if (folder / "run.json").is_file() and (folder / "metrics.json").is_file():
        return "finished" if (folder / ANALYSIS_FILE).is_file() else "trained"
    if (folder / "metrics.json").is_file() or not (folder / "checkpoints" / "last.pt").is_file():
        return "broken"  # stopped before its first checkpoint, or while writing final files
    return "resumable"


# ---------------------------------------------------------------------------------------------
# Progress: one line for the whole comparison
# ---------------------------------------------------------------------------------------------

def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class _Progress:
    """Run i of n, epoch, ETA: a bar on a terminal, plain log lines otherwise.

    The ETA counts epochs: seconds so far (training and analysis) per epoch done in this session,
    times the epochs left (early stopping only shortens it).
    """

    def __init__(self, runs: list[RunSpec], epochs: list[int], stream: Any = None) -> None:
        self.runs, self.epochs = runs, epochs
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.left = sum(epochs)
        self.done_here = 0
        self.current = 0  # epochs of the run in progress, trained in this session
        self.t0 = time.perf_counter()
        self.bar = None
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=len(runs), file=self.stream, dynamic_ncols=True,
                            bar_format="{desc} |{bar}| {n_fmt}/{total_fmt} runs [{elapsed}]")

    def eta(self) -> str:
        done = self.done_here + self.current
        if not done:
            return "ETA ?"
        per_epoch = (time.perf_counter() - self.t0) / done
        return f"ETA {_duration(per_epoch * (self.left - self.current))}"

    def show(self, i: int, text: str) -> None:
        head = f"run {i + 1}/{len(self.runs)} {self.runs[i].name}"
        if self.bar is not None:
            self.bar.set_description_str(f"{head}: {text}  {self.eta()}")
        else:
            print(f"[{i + 1}/{len(self.runs)}] {self.runs[i].name}: {text}", file=self.stream, flush=True)

    def epoch(self, i: int, epoch: int, first: int = 0) -> None:
        self.current = epoch - first
        if self.bar is not None:
            self.bar.set_description_str(
                f"run {i + 1}/{len(self.runs)} {self.runs[i].name}: epoch {epoch}/{self.epochs[i]}  {self.eta()}")

    def finish(self, i: int, epochs_here: int, text: str, reused: bool = False) -> None:
        self.left -= self.epochs[i]
        self.current = 0
        if not reused:
            self.done_here += epochs_here
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_description_str(f"run {i + 1}/{len(self.runs)} {self.runs[i].name}: {text}  {self.eta()}")
        else:
            print(f"[{i + 1}/{len(self.runs)}] {self.runs[i].name}: {text}  ({self.eta()})", file=self.stream,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _EpochWatcher(threading.Thread):
    """Follows a training run's ``metrics.jsonl`` (training itself runs quiet)."""

    def __init__(self, folder: Path, on_epoch: Any) -> None:
        super().__init__(daemon=True)
        self.folder, self.on_epoch = folder, on_epoch
        self.stopped = threading.Event()
        self.seen = 0

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            try:
                rows = read_jsonl(self.folder / "metrics.jsonl")
            except (OSError, ValueError):  # a line being written
                continue
            if rows and rows[-1]["epoch"] != self.seen:
                self.seen = rows[-1]["epoch"]
                self.on_epoch(self.seen)


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------

def _command(configs: list[str], seeds: int | None, out: str | None, overrides: list[str]) -> str:
    parts = ["modalfuse", "compare", *configs]
    if seeds is not None:
        parts += ["--seeds", str(seeds)]
    if out is not None:
        parts += ["--out", str(out)]
    for o in overrides:
        parts += ["--set", o]
    return shlex.join(parts)


def _monitor_text(folder: Path) -> str:
    import json

    run = json.loads((folder / "run.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    value = metrics.get("test", metrics.get("valid", {})).get(run["monitor"])
    split = "test" if "test" in metrics else "valid"
    return f"{split} {run['monitor']} {value:.4f}" if isinstance(value, (int, float)) else ""


def compare(configs: list[str], seeds: int | None = None, out: str | None = None,
            overrides: list[str] | None = None, *, stream: Any = None) -> Path:
    """Train (or reuse) every run of a comparison, analyse each, render the report.

    Args:
        configs: comparison presets (``mosi``, ``synthetic``) and/or training configs; empty: ``mosi``.
        seeds: seeds per model (``0..seeds-1``); default: the preset's ``seeds``.
        out: the comparison folder; default ``runs/compare-<name>``.
        overrides: ``a.b=c`` applied to every run.
        stream: where the progress display goes (default stderr).

    Returns:
        The comparison folder (the report is in ``<folder>/report``).
    """
    from ..datasets import build_data
    from ..training.loop import TrainingStopped
    from ..training.run import train
    from .render import render_report, summary_table

    overrides = list(overrides or [])
    p = plan(configs, seeds, overrides)
    folder = Path(out) if out is not None else Path("runs") / f"compare-{p.name}"
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    command = _command(list(configs), seeds, out, overrides)
    write_json(folder / COMPARE_FILE, {
        "name": p.name, "description": p.description, "command": command, "configs": list(configs),
        "seeds": p.seeds, "overrides": overrides, "labels": p.labels,
        "runs": [{"label": r.label, "seed": r.seed, "folder": f"runs/{r.name}"} for r in p.runs],
    })
    epochs = [build_config(r.raw).train.epochs for r in p.runs]
    progress = _Progress(p.runs, epochs, stream)
    data_cache: dict[str, Any] = {}  # analysis rebuilds each distinct dataset once
    try:
        for i, spec in enumerate(p.runs):
            run_dir = folder / "runs" / spec.name
            state = _state(run_dir, spec)
            if state == "finished":
                progress.finish(i, 0, f"finished earlier, reused ({_monitor_text(run_dir)})", reused=True)
                continue
            t0 = time.perf_counter()
            before = len(read_jsonl(run_dir / "metrics.jsonl")) if state == "resumable" else 0
            if state in ("new", "broken", "resumable"):
                if state == "broken":
                    shutil.rmtree(run_dir)
                progress.show(i, "resuming" if state == "resumable" else f"training ({epochs[i]} epochs)")
                watcher = _EpochWatcher(run_dir, lambda e, i=i, first=before: progress.epoch(i, e, first))
                watcher.start()
                try:
                    if state == "resumable":
                        train(None, resume=run_dir, quiet=True)
                    else:
                        train(spec.raw, run_dir=run_dir, quiet=True)
                finally:
                    watcher.stopped.set()
                    watcher.join()
            progress.show(i, "analysing")
            key = yaml.safe_dump(build_config(spec.raw).data)
            if key not in data_cache:
                data_cache = {key: build_data(build_config(spec.raw).data)}  # one dataset held at a time
            analyze_run(run_dir, data=data_cache[key])
            ran = len(read_jsonl(run_dir / "metrics.jsonl")) - before
            progress.finish(i, ran, f"done in {time.perf_counter() - t0:.1f}s, {_monitor_text(run_dir)}")
    except TrainingStopped as e:
        progress.close()
        raise TrainingStopped(f"comparison stopped ({e}); to continue, run the same command again: {command}",
                              e.exit_code) from None
    except KeyboardInterrupt:
        progress.close()
        raise TrainingStopped(f"comparison interrupted; to continue, run the same command again: {command}",
                              130) from None
    progress.close()
    report = render_report([str(folder)])
    print(summary_table(folder / "report" / "summary.csv"))
    print(f"\nreport: {report}")
    return folder
