"""``modalfuse inspect``: one entry point over every format modalfuse reads."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from .errors import DataError


def inspect_files(
    paths: list[str], *, jsonl: bool = False, limit: int | None = None, vocabulary: str | None = None,
    out: TextIO,
) -> None:
    """Summarise (or dump as JSON lines) each file, choosing the reader by the file's content."""
    from .readers.formats import sniff_format

    by_format: dict[str, list[str]] = {}
    for path in paths:
        if not Path(path).is_file():
            raise DataError(f"{path}: file not found")
        fmt = sniff_format(path)
        if fmt is None:
            raise DataError(
                f"{path}: unknown format (expected a TFRecord shard, a .csd/packed HDF5 file or a pickle)"
            )
        by_format.setdefault(fmt, []).append(path)
    for fmt, files in by_format.items():
        if fmt == "tfrecord":
            from .readers.tfrecord import inspect_tfrecords

            inspect_tfrecords(files, jsonl=jsonl, limit=limit, vocabulary=vocabulary, out=out)
        elif fmt == "csd":
            from .readers.csd import inspect_csd

            inspect_csd(files, jsonl=jsonl, limit=limit, out=out)
        elif fmt == "packed":
            from .prepare.cmu_sdk import inspect_packed

            inspect_packed(files, jsonl=jsonl, limit=limit, out=out)
        else:
            from .readers.pickles import inspect_pickle

            inspect_pickle(files, jsonl=jsonl, limit=limit, out=out)
