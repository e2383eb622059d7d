"""TFRecord framing without TensorFlow, and ``modalfuse inspect`` for TFRecord shards.

A TFRecord file is a sequence of records, each framed as::

    uint64 length | uint32 masked_crc32c(length bytes) | data[length] | uint32 masked_crc32c(data)

(all little-endian). Both CRCs are verified on read with the C-backed ``crc32c`` package. A bad CRC or
a truncated record raises ``DataError`` naming the file and the byte offset of the record; with
``skip_corrupt=True`` such records are skipped and counted instead. This module knows the framing
only; what a record holds is ``example`` (the protobuf) and ``yt8m`` (YouTube-8M records).
"""

from __future__ import annotations

import glob
import mmap
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import crc32c

from ..errors import DataError

_HEADER = struct.Struct("<QI")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_MASK_DELTA = 0xA282EAD8
# Files larger than this are memory-mapped rather than read, so frame-level shards (hundreds of MB)
# cost page cache, not process memory.
_MMAP_FROM_BYTES = 64 << 20


def masked_crc(data: bytes | memoryview) -> int:
    """TFRecord's masked CRC32C: rotate right by 15 bits and add a constant (see TF's ``crc32c.h``)."""
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


@dataclass
class ReadStats:
    """Counters filled while reading: records read and corrupt records skipped (per run)."""

    records: int = 0
    skipped: int = 0


def open_buffer(path: str | os.PathLike) -> bytes | mmap.mmap:
    """The whole file as a buffer: ``bytes`` for small files, a read-only ``mmap`` for large ones."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            if size < _MMAP_FROM_BYTES or size == 0:
                return f.read()
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a TFRecord file") from None


def _resync(buf: bytes | mmap.mmap, off: int) -> int:
    """The next offset after ``off`` where a record header with a valid length CRC starts, or EOF."""
    n = len(buf)
    for p in range(off + 1, n - 11):
        length, hcrc = _HEADER.unpack_from(buf, p)
        if p + 16 + length <= n and masked_crc(buf[p : p + 8]) == hcrc:
            return p
    return n


def frames(
    buf: bytes | mmap.mmap, path: str, *, skip_corrupt: bool = False, stats: ReadStats | None = None
) -> Iterator[tuple[int, int]]:
    """Walk the framing of a TFRecord buffer and verify both CRCs of every record.

    Args:
        buf: the file's bytes (see ``open_buffer``).
        path: the file name, for error messages.
        skip_corrupt: skip records with a bad CRC or a truncated tail (counted in ``stats.skipped``)
            instead of raising.
        stats: optional counters, updated in place.

    Yields:
        ``(start, length)`` of each record's payload inside ``buf``.

    Raises:
        DataError: a CRC mismatch or a truncated record, naming the file and the record's byte offset.
    """
    mv = memoryview(buf)
    n = len(buf)
    off = 0
    crc = crc32c.crc32c  # local names: this loop runs once per record and is the reader's hot path
    unpack_header = _HEADER.unpack_from
    unpack_u32 = _U32.unpack_from
    try:
        while off < n:
            problem = None
            if off + 12 > n:
                problem = f"truncated record header ({n - off} of 12 bytes)"
            else:
                length, hcrc = unpack_header(buf, off)
                c = crc(mv[off : off + 8])
                if ((((c >> 15) | (c << 17)) + _MASK_DELTA) & 0xFFFFFFFF) != hcrc:
                    problem = "length CRC mismatch"
                elif off + 16 + length > n:
                    problem = f"truncated record (needs {length + 16} bytes, {n - off} left)"
                else:
                    start = off + 12
                    end = start + length
                    c = crc(mv[start:end])
                    if ((((c >> 15) | (c << 17)) + _MASK_DELTA) & 0xFFFFFFFF) != unpack_u32(buf, end)[0]:
                        problem = "data CRC mismatch"
                        next_off = end + 4  # the length was valid, so framing continues after it
                    else:
                        if stats is not None:
                            stats.records += 1
                        yield start, length
                        off = end + 4
                        continue
            if not skip_corrupt:
                raise DataError(
                    f"{path}: corrupt record at byte offset {off}: {problem} "
                    "(use skip_corrupt / --skip-corrupt to skip such records)"
                )
            if stats is not None:
                stats.skipped += 1
            if problem == "data CRC mismatch":
                off = next_off
            elif problem.startswith("truncated"):
                off = n
            else:  # the length itself is untrustworthy: look for the next valid header
                off = _resync(buf, off)
    finally:
        mv.release()


def read_records(
    path: str | os.PathLike, *, skip_corrupt: bool = False, stats: ReadStats | None = None
) -> Iterator[bytes]:
    """Each record's payload (``bytes``) of one TFRecord file, CRCs verified (see ``frames``)."""
    buf = open_buffer(path)
    for start, length in frames(buf, os.fspath(path), skip_corrupt=skip_corrupt, stats=stats):
        yield buf[start : start + length]


class TFRecordWriter:
    """Writes records with TFRecord framing; use as a context manager.

    Args:
        path: output file (created or truncated).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self._f = open(path, "wb")

    def write(self, data: bytes) -> None:
        """Append one record (the payload, e.g. a serialized ``tf.train.Example``)."""
        header = _U64.pack(len(data))
        self._f.write(header + _U32.pack(masked_crc(header)) + data + _U32.pack(masked_crc(data)))

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> TFRecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def expand_paths(spec: str | os.PathLike | list[str] | tuple[str, ...]) -> list[str]:
    """Files named by a glob, comma-separated globs, or a list of either; sorted within each glob.

    Raises:
        DataError: a pattern that matches no file.
    """
    items = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    out: list[str] = []
    for item in items:
        for pattern in str(item).split(","):
            pattern = pattern.strip()
            if not pattern:
                continue
            matches = sorted(glob.glob(os.path.expanduser(pattern)))
            if not matches:
                raise DataError(f"{pattern}: no file matches")
            out.extend(matches)
    return out


__all__ = [
    "ReadStats", "TFRecordWriter", "expand_paths", "frames", "masked_crc", "open_buffer", "read_records",
]
