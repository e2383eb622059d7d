"""``modalfuse inspect``: one entry point over every format modalfuse reads (see ``readers.registry``)."""

from __future__ import annotations

from typing import TextIO


def inspect_files(
    paths: list[str], *, jsonl: bool = False, limit: int | None = None, vocabulary: str | None = None,
    out: TextIO,
) -> None:
    """Summarise (or dump as JSON lines) each file, choosing the reader by the file's content.

    Args:
        paths: files of any registered format (``modalfuse list`` ... / ``readers.registry.READERS``).
        jsonl: one strict JSON object per record (NaN and infinities written as null).
        limit: at most this many records per file.
        vocabulary: vocabulary CSV for YouTube-8M label names.
        out: where the text goes.

    Raises:
        DataError: a file that is missing, a directory, unreadable, malformed or of no known format.
    """
    from .readers.registry import inspect_files as dispatch

    dispatch(paths, jsonl=jsonl, limit=limit, vocabulary=vocabulary, out=out)
