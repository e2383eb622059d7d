"""The reader registry: which file formats modalfuse reads, how to tell them apart, how to inspect
them, and which datasets read which format. ``inspect`` and ``predict`` dispatch through it.

One module per format does the reading (``tfrecord`` framing, ``example`` protobuf, ``yt8m``
records, ``csd``, ``pickles``, ``packed``); none of them prints: ``inspect`` writes to the stream
it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from ..errors import DataError
from ..registry import Registry
from .csd import inspect_csd
from .formats import sniff_format
from .packed import inspect_packed
from .pickles import inspect_pickle
from .yt8m_inspect import inspect_tfrecords

Inspector = Callable[..., None]  # (paths, *, jsonl, limit, out, vocabulary) -> None

READERS: Registry[Inspector] = Registry("file format")


@READERS.register("tfrecord", description="a TFRecord shard of tf.train.Example / SequenceExample records "
                  "(YouTube-8M video- or frame-level)", datasets=("yt8m",))
def _inspect_tfrecord(paths: Sequence[str], *, jsonl: bool, limit: int | None, out: TextIO,
                      vocabulary: str | None = None) -> None:
    inspect_tfrecords(list(paths), jsonl=jsonl, limit=limit, vocabulary=vocabulary, out=out)


@READERS.register("csd", description="a CMU-MultimodalSDK computational sequence (.csd, HDF5)",
                  datasets=("cmu-sdk",))
def _inspect_csd(paths: Sequence[str], *, jsonl: bool, limit: int | None, out: TextIO,
                 vocabulary: str | None = None) -> None:
    inspect_csd(paths, jsonl=jsonl, limit=limit, out=out)


@READERS.register("packed", description="a modalfuse packed dataset (HDF5 from `modalfuse prepare cmu-sdk`)",
                  datasets=("packed", "mosi"))
def _inspect_packed(paths: Sequence[str], *, jsonl: bool, limit: int | None, out: TextIO,
                    vocabulary: str | None = None) -> None:
    inspect_packed(paths, jsonl=jsonl, limit=limit, out=out)


@READERS.register("pickle", description="an MMSA or MulT sentiment pickle", datasets=("mmsa", "mult"))
def _inspect_pickle(paths: Sequence[str], *, jsonl: bool, limit: int | None, out: TextIO,
                    vocabulary: str | None = None) -> None:
    inspect_pickle(paths, jsonl=jsonl, limit=limit, out=out)


def describe(fmt: str) -> str:
    """A format's one-line description (``"a TFRecord shard of ..."``)."""
    return str(READERS.info(fmt)["description"])


def detect(path: str | Path) -> str:
    """The registered format of one file, told from its content (not its name).

    Raises:
        DataError: missing, a directory, unreadable, truncated/corrupt HDF5, or no known format.
    """
    fmt = sniff_format(path)
    if fmt is None:
        known = "; ".join(describe(f) for f in READERS.names())
        raise DataError(f"{path}: unknown format (expected one of: {known})")
    return fmt


def formats_read_by(dataset: str) -> list[str]:
    """The formats whose files dataset ``dataset`` reads (empty for datasets that read no files)."""
    return [f for f in READERS.names() if dataset in READERS.info(f)["datasets"]]


def check_input(path: str | Path, dataset: str) -> str:
    """Check that ``path`` is a file of a format ``dataset`` reads; returns the format.

    Raises:
        DataError: naming what the file is and what the dataset reads.
    """
    fmt = detect(path)
    wanted = formats_read_by(dataset)
    if fmt not in wanted:
        reads = " or ".join(describe(f) for f in wanted) or "no input files"
        raise DataError(f"{path}: this is {describe(fmt)}; the model's dataset '{dataset}' reads {reads}")
    return fmt


def inspect_files(paths: Sequence[str], *, jsonl: bool = False, limit: int | None = None,
                  vocabulary: str | None = None, out: TextIO) -> None:
    """Summarise (or dump as JSON lines) each file with its format's reader, writing to ``out``.

    Raises:
        DataError: a file that is missing, unreadable or of no known format (before any output).
    """
    by_format: dict[str, list[str]] = {}
    for path in paths:
        by_format.setdefault(detect(path), []).append(str(path))
    for fmt, files in by_format.items():
        READERS.get(fmt)(files, jsonl=jsonl, limit=limit, out=out, vocabulary=vocabulary)


__all__ = ["READERS", "check_input", "describe", "detect", "formats_read_by", "inspect_files"]
