"""Opening HDF5 files (``.csd`` sequences, packed datasets) with one clear error for each way it fails."""

from __future__ import annotations

from typing import Any

from ..errors import DataError, require_file

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def open_hdf5(path: str, what: str) -> Any:
    """``h5py.File(path, "r")`` with its failures as one ``DataError`` (missing, a directory,
    permissions, truncated or not HDF5)."""
    import h5py

    require_file(path, what)
    try:
        return h5py.File(path, "r")
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except Exception as e:  # noqa: BLE001 - h5py raises OSError, and others for damaged superblocks
        text = str(e)
        if "truncated" in text or "eof" in text.lower():
            raise DataError(f"{path}: truncated HDF5 file (expected {what}; the file is shorter than its "
                            f"header says)") from None
        with open(path, "rb") as f:
            signed = f.read(8) == HDF5_SIGNATURE
        kind = "a corrupt HDF5 file" if signed else "not an HDF5 file"
        raise DataError(f"{path}: {kind} (expected {what}; {text.splitlines()[0][:120] if text else type(e).__name__})") from None
