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
    .lock                 held (``fcntl.flock``) by the one process that trains or resumes the run

Every file is written by ``atomic_write`` (a temporary name in the same folder, fsync, rename), so a
crash leaves either the old file or the new one. A run is finished exactly when ``run.json``
exists (``is_finished``): one atomic rename decides it, so resume, compare and report agree.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..errors import DataError, UserError, require_file

log = logging.getLogger("modalfuse")

CONFIG = "config.yaml"
DATA = "data.json"
METRICS_LOG = "metrics.jsonl"
METRICS = "metrics.json"
PER_CLASS = "per_class.json"
ANALYSIS = "analysis.json"
PREDICTIONS = "predictions.npz"
COMPLETE = "run.json"  # the completion marker: written last, atomically
LOCK = ".lock"
CHECKPOINTS = "checkpoints"
BEST = "best.pt"
LAST = "last.pt"

_TMP_SUFFIX = ".tmp"


# ---------------------------------------------------------------------------------------------
# Writing files
# ---------------------------------------------------------------------------------------------

def _no_space(e: BaseException) -> bool:
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    # torch.save reports a full disk as a RuntimeError from its zip writer
    text = str(e)
    return isinstance(e, RuntimeError) and ("No space left" in text or "file write failed" in text)


def write_error(path: Path, e: BaseException) -> UserError:
    """The one-line error for a failed write of ``path`` (full disk, permissions, a directory)."""
    if _no_space(e):
        return UserError(f"{path.parent}: no space left on the device while writing {path.name}; "
                         f"free some space (a run resumes with --resume)")
    if isinstance(e, PermissionError):
        return UserError(f"{path.parent}: permission denied writing {path.name}")
    if isinstance(e, (IsADirectoryError, NotADirectoryError, FileNotFoundError)):
        return UserError(f"{path}: cannot write here ({e.strerror or e})")
    return UserError(f"{path}: could not write ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")


def atomic_write(path: str | Path, content: str | bytes | Callable[[Path], None]) -> None:
    """Write ``path`` so that it holds either its old content or all of the new one, never a part.

    Args:
        path: the destination.
        content: text (UTF-8), bytes, or a function that writes the file it is given (e.g.
            ``lambda p: torch.save(state, p)``).

    Raises:
        UserError: the write failed (full disk, permission denied, ...); one line naming the folder.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{_TMP_SUFFIX}")
    try:
        if callable(content):
            content(tmp)
        else:
            with open(tmp, "wb") as f:
                f.write(content.encode() if isinstance(content, str) else content)
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(e, OSError) or _no_space(e):
            raise write_error(path, e) from e
        raise
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2, default=float) + "\n")


def write_yaml(path: str | Path, obj: Any) -> None:
    atomic_write(path, yaml.safe_dump(obj, sort_keys=False))


def atomic_write_text(path: str | Path, text: str) -> None:
    """``atomic_write`` of text (kept for callers that name it so)."""
    atomic_write(path, text)


def append_jsonl(path: str | Path, obj: dict[str, Any]) -> None:
    """Append one JSON line and fsync it (a crash loses at most this line; ``read_jsonl`` drops a torn one)."""
    path = Path(path)
    try:
        with open(path, "a") as f:
            f.write(json.dumps(obj, default=float) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise write_error(path, e) from e


def read_jsonl(path: str | Path, *, drop_torn: bool = True) -> list[dict[str, Any]]:
    """The JSON objects of a ``.jsonl`` file (``[]`` when it does not exist).

    A last line that does not parse is what an interrupted append (a kill, a full disk) leaves: with
    ``drop_torn`` it is dropped with a warning. A bad line before the last is an error.

    Raises:
        DataError: a line other than the last is not a JSON object.
    """
    path = Path(path)
    if not path.exists():
        return []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not an object")
        except ValueError:
            if drop_torn and i == len(lines) - 1:
                log.warning("%s: dropped a torn last line (an interrupted write)", path)
                continue
            raise DataError(f"{path}: line {i + 1} is not a JSON object (expected one per line)") from None
        rows.append(row)
    return rows


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
        for p in d.glob(f".*{_TMP_SUFFIX}"):
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
