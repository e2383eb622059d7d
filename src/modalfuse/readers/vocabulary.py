"""Class vocabularies: index -> name, read with a real CSV parser (descriptions hold commas and newlines)."""

from __future__ import annotations

import csv
import os
from functools import lru_cache
from importlib import resources

from ..errors import DataError

BUNDLED_YT8M = "yt8m/vocabulary.csv"  # under modalfuse/data_files: YouTube-8M 2018, Index and Name only


def load_vocabulary(path: str | os.PathLike) -> list[str]:
    """Names by class index from a vocabulary CSV with ``Index`` and ``Name`` columns.

    Args:
        path: e.g. YouTube-8M's ``vocabulary.csv``
            (``Index,TrainVideoCount,KnowledgeGraphId,Name,WikiUrl,...``).

    Returns:
        ``names[i]`` is the name of class ``i`` (``""`` for an index the file skips).

    Raises:
        DataError: a missing file or column, or an index that is not a non-negative integer.
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return _parse(csv.DictReader(f), str(path))
    except FileNotFoundError:
        raise DataError(f"{path}: vocabulary file not found") from None


def _parse(reader: csv.DictReader, where: str) -> list[str]:
    missing = {"Index", "Name"} - set(reader.fieldnames or [])
    if missing:
        raise DataError(
            f"{where}: vocabulary needs columns Index and Name, missing {', '.join(sorted(missing))} "
            f"(found: {', '.join(reader.fieldnames or [])})"
        )
    names: dict[int, str] = {}
    for row in reader:
        try:
            index = int(row["Index"])
        except (TypeError, ValueError):
            raise DataError(f"{where}: line {reader.line_num}: Index {row['Index']!r} is not an integer") from None
        if index < 0:
            raise DataError(f"{where}: line {reader.line_num}: negative Index {index}")
        names[index] = row["Name"] or ""
    out = [""] * (max(names) + 1 if names else 0)
    for index, name in names.items():
        out[index] = name
    return out


@lru_cache(maxsize=1)
def _bundled() -> tuple[str, ...]:
    ref = resources.files("modalfuse") / "data_files" / BUNDLED_YT8M
    with ref.open("r", newline="", encoding="utf-8") as f:
        return tuple(_parse(csv.DictReader(f), f"modalfuse/data_files/{BUNDLED_YT8M}"))


def load_bundled_vocabulary() -> list[str]:
    """The YouTube-8M 2018 vocabulary shipped with modalfuse (3862 names by index)."""
    return list(_bundled())


def write_compact_vocabulary(source: str | os.PathLike, out: str | os.PathLike) -> int:
    """Write ``Index,Name`` only (how the bundled vocabulary was made); returns the row count."""
    names = load_vocabulary(source)
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Index", "Name"])
        for i, name in enumerate(names):
            w.writerow([i, name])
    return len(names)
