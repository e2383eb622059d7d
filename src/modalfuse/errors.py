"""Errors a person can act on.

``UserError`` is raised for bad input (a malformed file, an unknown config key, a wrong feature size).
The command line prints its message as one line and exits with status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class UserError(Exception):
    """Bad input: the message names the file, record or key, what was expected and what was found."""

    exit_code = 2


class DataError(UserError):
    """A data file is malformed (bad CRC, truncated record, wrong feature size, unsafe pickle)."""


class ConfigError(UserError):
    """A config key or value is invalid."""


def require_file(path: str | Path, expected: str, missing: str = "file not found",
                 error: type[UserError] = DataError) -> None:
    """Raise ``error`` naming ``path`` when it is a directory (``expected`` says what was wanted) or
    does not exist (``missing``); the one check every reader, loader and config runs before opening."""
    p = Path(path)
    if p.is_dir():
        raise error(f"{path}: is a directory, expected {expected}")
    if not p.is_file():
        raise error(f"{path}: {missing}")


def closest(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or an empty string."""
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def missing_extra(what: str, package: str, extra: str) -> UserError:
    """The error for an optional dependency that is not installed, with the command for an installed
    modalfuse and the one for a checkout (``pip install -e``), e.g. ``missing_extra("ONNX export",
    "onnx", "onnx")``."""
    return UserError(f"{what} needs the {package} package (the [{extra}] extra): pip install 'modalfuse[{extra}]', "
                     f"or in a modalfuse checkout: pip install -e '.[{extra}]'")
