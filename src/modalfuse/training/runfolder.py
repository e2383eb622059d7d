"""The run folder: its layout, the one atomic-write helper, its lock, checkpoints and completion.

A run folder holds::

    config.yaml           the resolved config            (written when the run starts)
    data.json             modalities, task, class names, parameter count
    metrics.jsonl         one JSON object per epoch      (appended; a torn last line is dropped on resume)
    checkpoints/last.pt   the resumable state: weights, optimizer, schedule, RNG states, loop state, config
    checkpoints/best.pt   what evaluation needs: weights and config
    metrics.json          the best checkpoint's metrics per split
    per_class.json        multilabel per-class AP (when any)
    analysis.json         efficiency, attention, modality ablation (``compare`` / ``analyze``)
    predictions.npz       per-example predictions of the final evaluation (``stats.predictions``)
    plugins.json          plugin modules the config needs (``plugins.record_run``; re-imported on load)
    loggers.json          experiment-tracker state (the MLflow run id) when ``train.loggers`` is set
    tensorboard/          TensorBoard event files when ``train.loggers`` includes tensorboard
    run.json              best epoch, epochs run, seconds: THE completion marker, written last
    scheduler.json        Slurm's facts (job ids, node, GPUs, wall time) when a launcher ran it
    .lock                 held (``fcntl.flock``) by the one process that trains or resumes the run

Every file is written by ``atomic_write`` (a temporary name in the same folder, fsync, rename), so a
crash leaves either the old file or the new one. A run is finished exactly when ``run.json``
exists (``is_finished``): one atomic rename decides it, so resume, compare and report agree.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError, UserError, require_file
# The atomic-write helpers live in ``modalfuse.files``; imported here too, where callers have always found them.
from ..files import (TMP_SUFFIX, append_jsonl, atomic_write, atomic_write_text, read_jsonl, write_error,  # noqa: F401
                     write_json, write_yaml)

log = logging.getLogger("modalfuse")

CONFIG = "config.yaml"
DATA = "data.json"
METRICS_LOG = "metrics.jsonl"
METRICS = "metrics.json"
PER_CLASS = "per_class.json"
ANALYSIS = "analysis.json"
PREDICTIONS = "predictions.npz"
COMPLETE = "run.json"  # the completion marker: written last, atomically
SCHEDULER = "scheduler.json"  # written after the run by a cluster launcher (comparison.slurm)
LOCK = ".lock"
CHECKPOINTS = "checkpoints"
BEST = "best.pt"
LAST = "last.pt"

COMPARE = "compare.json"  # a comparison folder's plan: its runs, seeds, command

# Config keys that say where and how fast a run goes, never what it computes: a resume may change
# them, and a comparison reuses a run trained with other values of them.
RESULT_NEUTRAL = ("train.threads", "train.progress", "train.num_workers", "train.device")


# ---------------------------------------------------------------------------------------------
# Creating, locking and completing a run folder
# ---------------------------------------------------------------------------------------------

def new_run_dir(root: str | Path, name: str) -> Path:
    """Create ``root/name-YYYYmmdd-HHMMSS[-k]``; never reuses an existing folder."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(root / name, e) from e
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for k in range(1, 10_000):
        path = root / (f"{name}-{stamp}" if k == 1 else f"{name}-{stamp}-{k}")
        try:
            path.mkdir()  # exclusive: fails if another run took the name
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise write_error(path, e) from e
    raise UserError(f"{root}: could not create a new run folder (10,000 names taken)")


def is_finished(folder: str | Path) -> bool:
    """True when the run wrote its completion marker (``run.json``, written after everything else)."""
    return (Path(folder) / COMPLETE).is_file()


def write_completion(folder: str | Path, info: dict[str, Any]) -> None:
    """Mark the run finished: call after every other final file is written."""
    write_json(Path(folder) / COMPLETE, info)


def clean_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove ``.<name>.<pid>.tmp`` files a killed writer left in ``folder`` and its checkpoints.

    Call it only while holding the folder's lock: then no live writer owns any of them.

    Returns:
        The files removed.
    """
    removed = []
    for d in (Path(folder), Path(folder) / CHECKPOINTS):
        if not d.is_dir():
            continue
        for p in d.glob(f".*{TMP_SUFFIX}"):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    if removed:
        log.warning("%s: removed %d stale temporary file(s) of an interrupted write", folder, len(removed))
    return removed


def _lock_wait_seconds() -> float:
    # An option for scripts and the CLI: MODALFUSE_LOCK_WAIT=SECONDS waits for the holder to finish.
    text = os.environ.get("MODALFUSE_LOCK_WAIT", "0")
    try:
        return float(text)
    except ValueError:
        raise UserError(f"MODALFUSE_LOCK_WAIT={text!r}: expected a number of seconds") from None


@contextmanager
def folder_lock(folder: str | Path, what: str = "run folder", wait: float | None = None) -> Iterator[None]:
    """Hold the exclusive lock of ``folder`` (``fcntl.flock`` on ``folder/.lock``) for a block.

    The lock goes away with the process (a kill releases it), so it is never stale.

    Args:
        folder: a run or comparison folder (created if missing).
        what: how errors name the folder.
        wait: seconds to wait for another holder (``None``: ``$MODALFUSE_LOCK_WAIT``, default 0;
            ``inf`` waits for ever).

    Raises:
        UserError: another process holds it (named by its process id).
    """
    import fcntl

    folder = Path(folder)
    wait = _lock_wait_seconds() if wait is None else wait
    path = folder / LOCK
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise write_error(path, e) from e
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    raise UserError(
                        f"{folder}: this {what} is in use by process {holder} (train, resume or compare); "
                        f"wait for it to finish, or set MODALFUSE_LOCK_WAIT=SECONDS to wait") from None
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())) if math.isfinite(wait) else 0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------

def nonfinite_parameters(weights: dict[str, Any]) -> list[str]:
    """Names of floating-point tensors in a state dict that hold NaN or +-inf."""
    return [k for k, v in weights.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """``torch.save`` through ``atomic_write``: a crash never leaves a half-written file.

    Raises:
        UserError: ``state["model"]`` holds non-finite weights (they are never written), or the write
            failed.
    """
    path = Path(path)
    bad = nonfinite_parameters(state.get("model") or {})
    if bad:
        raise UserError(f"{path}: not written: the model's weights are not finite ({len(bad)} tensors, "
                        f"e.g. '{bad[0]}'); try a lower train.learning_rate")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(path, e) from e
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    need: tuple[str, ...] = ("model", "config")) -> dict[str, Any]:
    """Safe load (``weights_only=True``: tensors and plain containers only), checked.

    Args:
        path: a ``.pt`` written by ``save_checkpoint``.
        map_location: where tensors go.
        need: keys the checkpoint must have.

    Raises:
        DataError: missing, unreadable, corrupt or tampered (anything but tensors and containers),
            missing a key, or holding non-finite weights.
    """
    path = Path(path)
    require_file(path, "a checkpoint file", "checkpoint not found")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for a corrupt or unsafe file
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
        kind = ("it holds objects other than tensors and plain containers; it was not loaded"
                if "weights_only" in str(e) or "Unsupported global" in str(e) else
                f"corrupt or not a checkpoint ({type(e).__name__}{': ' + first if first else ''})")
        raise DataError(f"{path}: unreadable checkpoint: {kind}") from None
    if not isinstance(ck, dict) or any(k not in ck for k in need):
        found = sorted(map(str, ck))[:8] if isinstance(ck, dict) else type(ck).__name__
        raise DataError(f"{path}: not a modalfuse checkpoint (expected keys {', '.join(need)}; found {found})")
    if "model" in need:
        if not isinstance(ck["model"], dict):
            raise DataError(f"{path}: not a modalfuse checkpoint ('model' is not a state dict)")
        bad = nonfinite_parameters(ck["model"])
        if bad:
            raise DataError(f"{path}: the model's weights are not finite ({len(bad)} tensors, e.g. '{bad[0]}'); "
                            f"it cannot be used")
    return ck


def rng_state() -> dict[str, Any]:
    """Every RNG the loop draws from, in a form ``weights_only`` loading accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()  # this process's device only (one GPU per rank)
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())


# ---------------------------------------------------------------------------------------------
# Configs: which differences matter
# ---------------------------------------------------------------------------------------------

def _first_difference(a: Any, b: Any, names: tuple[str, str], prefix: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            diff = _first_difference(a.get(k), b.get(k), names, f"{prefix}{k}.")
            if diff:
                return diff
        return None
    return None if a == b else f"{prefix[:-1]}: {a!r} {names[0]}, {b!r} {names[1]}"


def config_difference(have: dict[str, Any], want: dict[str, Any],
                      names: tuple[str, str] = ("in the run", "in the config")) -> str | None:
    """The first key where two config dicts differ in what they compute (``RESULT_NEUTRAL`` keys
    ignored), as ``"train.epochs: 1 in the run, 5 in the config"``; None when they agree."""
    have, want = _without_neutral(have), _without_neutral(want)
    return _first_difference(have, want, names)


def _without_neutral(cfg: dict[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in cfg.items()}
    for key in RESULT_NEUTRAL:
        section, name = key.split(".")
        if isinstance(out.get(section), dict):
            out[section].pop(name, None)
    return out


# ---------------------------------------------------------------------------------------------
# The run folder, as one object
# ---------------------------------------------------------------------------------------------

class RunFolder:
    """The one reader and writer of a run folder's files (layout in the module docstring).

    Training writes through it, and compare, report, analysis, serving and the API read through it;
    no other module names a run folder's files. Reads of optional files return ``None`` (or ``{}``
    / ``[]``) when the file is absent, so runs written before a file existed still load.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def file(self, name: str) -> Path:
        """The path of one of the layout's files (``CONFIG``, ``METRICS``, ...)."""
        return self.path / name

    def checkpoint_path(self, which: str = "best") -> Path:
        """``checkpoints/best.pt`` or ``checkpoints/last.pt``."""
        return self.path / CHECKPOINTS / f"{which}.pt"

    # --- state --------------------------------------------------------------------------------
    def is_finished(self) -> bool:
        """The run wrote its completion marker (``run.json``), which comes after every other file."""
        return is_finished(self.path)

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def require(self, *names: str, what: str = "a finished run folder") -> None:
        """Raises UserError naming the first of ``names`` that is missing."""
        for name in names:
            if not self.has(name):
                raise UserError(f"{self.path}: not {what} (no {name})")

    # --- reading ------------------------------------------------------------------------------
    def _json(self, name: str, default: Any = None) -> Any:
        p = self.path / name
        if not p.is_file():
            return default
        try:
            return json.loads(p.read_text())
        except ValueError as e:
            raise DataError(f"{p}: not valid JSON ({e})") from None

    def read_config(self) -> dict[str, Any]:
        """``config.yaml`` as saved (raw: not resolved against today's defaults)."""
        from ..config import load_yaml

        return load_yaml(self.path / CONFIG)

    def resolved_config(self) -> dict[str, Any]:
        """The saved config resolved with today's defaults: a key added since the run was trained, at
        the default that reproduces the old behaviour, is then no difference. A key since removed
        or renamed leaves it as saved, so a comparison names the difference."""
        from ..config import build_config

        raw = self.read_config()
        try:
            return build_config(raw).to_dict()
        except UserError:
            return raw

    def read_data_info(self) -> dict[str, Any] | None:
        """``data.json``: modalities, task, class names, parameter count, data info."""
        return self._json(DATA)

    def read_specs(self) -> tuple[dict[str, Any], Any]:
        """``({name: ModalitySpec}, TaskSpec)`` from ``data.json``: what the model reads and predicts,
        without reading the data.

        Raises:
            UserError: no ``data.json`` (the run stopped before its data was built).
        """
        from ..datasets.base import ModalitySpec, TaskSpec

        info = self.read_data_info()
        if info is None:
            raise UserError(f"{self.path}: not a finished run folder (no {DATA})")
        t = info["task"]
        return ({m: ModalitySpec(s["dim"], s["seq_len"]) for m, s in info["modalities"].items()},
                TaskSpec(t["kind"], t["num_classes"], tuple(t["class_names"]) if t.get("class_names") else None))

    def read_normalization(self) -> dict[str, Any] | None:
        """The training statistics that z-score the features (``data.json`` info; None for most data)."""
        return ((self.read_data_info() or {}).get("info") or {}).get("normalization")

    def read_metrics(self) -> dict[str, Any]:
        """``metrics.json``: the best checkpoint's metrics per split (``{}`` while unfinished)."""
        return self._json(METRICS, {})

    def read_history(self) -> list[dict[str, Any]]:
        """``metrics.jsonl``: one row per epoch (a torn last line dropped)."""
        return read_jsonl(self.path / METRICS_LOG)

    def read_completion(self) -> dict[str, Any] | None:
        """``run.json`` (best epoch, epochs run, monitor, ...), None while unfinished."""
        return self._json(COMPLETE)

    def read_analysis(self) -> dict[str, Any] | None:
        return self._json(ANALYSIS)

    def read_predictions(self) -> dict[str, dict[str, np.ndarray]] | None:
        """``predictions.npz`` by split, None when absent (runs trained before it existed)."""
        from ..stats.predictions import load_predictions

        path = self.path / PREDICTIONS
        if not path.is_file():
            return None
        try:
            return load_predictions(path)[1]
        except (OSError, ValueError, KeyError) as e:
            raise UserError(f"{path}: unreadable ({e}); delete it to report without intervals") from None

    def load_checkpoint(self, which: str = "best", map_location: str | torch.device = "cpu",
                        need: tuple[str, ...] = ("model", "config")) -> dict[str, Any]:
        return load_checkpoint(self.checkpoint_path(which), map_location=map_location, need=need)

    # --- writing ------------------------------------------------------------------------------
    def write_config(self, config: dict[str, Any]) -> None:
        write_yaml(self.path / CONFIG, config)

    def write_data_info(self, info: dict[str, Any]) -> None:
        write_json(self.path / DATA, info)

    def append_history(self, row: dict[str, Any]) -> None:
        append_jsonl(self.path / METRICS_LOG, row)

    def truncate_history(self, epochs: int) -> None:
        """Keep the log rows of epochs ``1..epochs`` (what a resumed checkpoint covers)."""
        kept = [r for r in self.read_history() if isinstance(r.get("epoch"), int) and r["epoch"] <= epochs]
        atomic_write(self.path / METRICS_LOG, "".join(json.dumps(r) + "\n" for r in kept))

    def write_metrics(self, results: dict[str, dict[str, Any]]) -> None:
        """``metrics.json``, and the multilabel ``per_class*`` entries apart in ``per_class.json``
        (popped from ``results``)."""
        per_class = {s: {k: m.pop(k) for k in list(m) if k.startswith("per_class")} for s, m in results.items()}
        write_json(self.path / METRICS, results)
        if any(per_class.values()):
            write_json(self.path / PER_CLASS, per_class)

    def write_predictions(self, kind: str, preds: dict[str, dict[str, Any]], *, top_k: int, threshold: float,
                          train_labels: np.ndarray | None) -> None:
        """``predictions.npz`` (``stats.predictions`` says what it holds)."""
        from ..stats.predictions import save_predictions

        save_predictions(self.path / PREDICTIONS, kind, preds, top_k=top_k, threshold=threshold,
                         train_labels=train_labels)

    def write_analysis(self, result: dict[str, Any]) -> None:
        write_json(self.path / ANALYSIS, result)

    def read_scheduler(self) -> dict[str, Any] | None:
        """``scheduler.json``: where a cluster launcher ran the run (job ids, node, GPUs, wall time)."""
        return self._json(SCHEDULER)

    def write_scheduler(self, facts: dict[str, Any]) -> None:
        write_json(self.path / SCHEDULER, facts)

    def save_checkpoint(self, which: str, state: dict[str, Any]) -> None:
        save_checkpoint(self.checkpoint_path(which), state)

    def complete(self, info: dict[str, Any]) -> None:
        """Write ``run.json``: call after every other final file."""
        write_completion(self.path, info)

    def lock(self, wait: float | None = None) -> Any:
        """The folder's exclusive lock, as a context manager (``folder_lock``)."""
        return folder_lock(self.path, "run folder", wait)

    def clean_stale_temporaries(self) -> list[Path]:
        return clean_stale_temporaries(self.path)

    def config_difference(self, want: dict[str, Any], names: tuple[str, str] = ("in the run", "in the config")) -> str | None:
        """The first result-changing difference between this run's config (resolved) and ``want``."""
        return config_difference(self.resolved_config(), want, names)


class ComparisonFolder:
    """The one reader and writer of a comparison folder: ``compare.json`` (the plan), ``runs/<name>``
    (a ``RunFolder`` each), ``report/``, ``robustness/``, and its lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @staticmethod
    def holds(path: str | Path) -> bool:
        """Whether ``path`` is a comparison folder (it has ``compare.json``)."""
        return (Path(path) / COMPARE).is_file()

    def run(self, name_or_folder: str) -> RunFolder:
        """A run of the comparison, by its name (``text-seed0``) or its recorded folder (``runs/text-seed0``)."""
        rel = name_or_folder if "/" in name_or_folder else f"runs/{name_or_folder}"
        return RunFolder(self.path / rel)

    @property
    def report_dir(self) -> Path:
        return self.path / "report"

    def read_plan(self) -> dict[str, Any]:
        """``compare.json``: name, description, command, configs, seeds, overrides, labels, runs."""
        try:
            return json.loads((self.path / COMPARE).read_text())
        except FileNotFoundError:
            raise UserError(f"{self.path}: not a comparison folder (no {COMPARE})") from None
        except ValueError as e:
            raise DataError(f"{self.path / COMPARE}: not valid JSON ({e})") from None

    def write_plan(self, info: dict[str, Any]) -> None:
        (self.path / "runs").mkdir(parents=True, exist_ok=True)
        write_json(self.path / COMPARE, info)

    def lock(self) -> Any:
        return folder_lock(self.path, "comparison folder")
