"""Tell a data file's format from its content (not its name): ``sniff_format(path)``.

- ``"tfrecord"``: TFRecord framing: u64 little-endian length, then the masked CRC32C of those 8 bytes;
- ``"packed"``: an HDF5 file written by ``modalfuse prepare cmu-sdk`` (``attrs["format"]``);
- ``"csd"``: an HDF5 file with one root group holding ``data`` (a CMU-MultimodalSDK sequence);
- ``"pickle"``: a pickle stream (protocol 2 or later, as numpy and MMSA/MulT write them);
- ``None``: anything else (an HDF5 file that cannot be opened is a ``DataError``: truncated or corrupt).
"""

from __future__ import annotations

import struct
from pathlib import Path

from ..errors import DataError, require_file
from .hdf5 import HDF5_SIGNATURE, open_hdf5


def _masked_crc32c(data: bytes) -> int:
    import crc32c

    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _is_tfrecord(head: bytes, size: int) -> bool:
    if len(head) < 12:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    (crc,) = struct.unpack("<I", head[8:12])
    if length + 16 > size:
        return False
    try:
        return _masked_crc32c(head[:8]) == crc
    except ImportError:  # without crc32c the length check alone decides
        return True


def _hdf5_kind(path: str) -> str | None:
    """``"packed"``, ``"csd"`` or None (another HDF5 layout).

    Raises:
        DataError: the file says it is HDF5 but cannot be opened (truncated or corrupt).
    """
    import h5py

    with open_hdf5(path, "a .csd or packed HDF5 file") as h5:
        try:
            fmt = h5.attrs.get("format")
            if (fmt.decode("utf-8", "replace") if isinstance(fmt, bytes) else fmt) == "modalfuse-packed":
                return "packed"
            roots = list(h5.keys())
            if len(roots) == 1 and isinstance(h5[roots[0]], h5py.Group) and "data" in h5[roots[0]]:
                return "csd"
        except Exception as e:  # noqa: BLE001 - a damaged file fails inside h5py with many types
            raise DataError(f"{path}: corrupt HDF5 file ({type(e).__name__})") from None
    return None


def _head(path: str) -> bytes:
    require_file(path, "a data file")
    try:
        with open(path, "rb") as f:
            return f.read(16)
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None


def sniff_sentiment_format(path: str | Path) -> str | None:
    """``"csd"``, ``"packed"``, ``"pickle"`` or None for one file.

    Raises:
        DataError: missing, a directory, unreadable, or a truncated/corrupt HDF5 file.
    """
    path = str(path)
    head = _head(path)
    if head.startswith(HDF5_SIGNATURE):
        return _hdf5_kind(path)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    return None


def sniff_format(path: str | Path) -> str | None:
    """``"tfrecord"``, ``"csd"``, ``"packed"``, ``"pickle"`` or None for one file.

    Raises:
        DataError: missing, a directory, unreadable, or a truncated/corrupt HDF5 file.
    """
    path = str(path)
    head = _head(path)
    # The CRC check first: a TFRecord's length bytes may look like a pickle header (0x80 0x02 ...).
    if not head.startswith(HDF5_SIGNATURE) and _is_tfrecord(head, Path(path).stat().st_size):
        return "tfrecord"
    return sniff_sentiment_format(path)
