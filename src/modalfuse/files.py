"""Writing files so that a crash leaves the old content or the new, never a part (``atomic_write``),
and the JSON-lines log that survives a torn last line. Every module that writes a file uses these."""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .errors import DataError, UserError, closest

log = logging.getLogger("modalfuse")

TMP_SUFFIX = ".tmp"  # a writer's temporary file: ``.<name>.<pid>.tmp`` beside its destination


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
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
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


def find_file(name: str | Path, folder: Path, names: list[str], what: str, shipped: str,
              error: type[UserError] = UserError) -> Path:
    """A path as given, else the shipped ``folder/<name>.yaml``; else one error naming the closest
    shipped names. The one lookup of a preset, comparison preset or claims file by name.

    Args:
        what: the kinds of thing ``name`` may be, for the message ("config file or preset").
        shipped: what the shipped names are called in the message ("presets").
    """
    path = Path(name)
    if path.is_file():
        return path
    candidate = folder / f"{name}.yaml"
    if candidate.is_file():
        return candidate
    raise error(f"{name}: no such {what}{closest(str(name), names)}; {shipped}: {', '.join(names)}")
