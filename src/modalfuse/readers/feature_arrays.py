"""Feature tables stored as arrays: a folder of ``.npy`` files, one ``.npz``, or one HDF5 file.

One array per column, named as the column: a modality ``<m>`` is ``[N, D]`` or ``[N, T, D]`` with an
optional ``<m>_lengths`` ``[N]`` (real steps from the start; without it every step is real), the
label ``[N]`` (int or str classes, float scores) or ``[N, C]`` multi-hot 0/1, and optional ``id``,
``split`` and ``group`` ``[N]`` (strings or ints). Errors name the file (the ``.npy`` of the column,
or the ``.npz``/HDF5 file with its key), the column and the row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError
from .feature_files import LENGTHS_SUFFIX, ColumnNames, Columns, Source, _check_finite, pad_steps
from .hdf5 import open_hdf5


class ArrayFile:
    """Named arrays of one source, opened lazily; ``file_of(name)`` says where each lives."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._h5: Any = None
        if source.format == "numpy" and source.files[0].suffix == ".npz":
            self.path = source.files[0]
            try:
                self._npz = np.load(self.path, allow_pickle=False)
            except (ValueError, OSError) as e:
                raise DataError(f"{self.path}: not a readable .npz file ({e})") from None
            self.names = sorted(self._npz.files)
        elif source.format == "numpy":
            self.path = source.files[0].parent
            self._npy = {f.stem: f for f in source.files}
            self.names = sorted(self._npy)
        else:
            self.path = source.files[0]
            self._h5 = open_hdf5(str(self.path), "an HDF5 feature file")
            import h5py

            self.names = sorted(k for k, v in self._h5.items() if isinstance(v, h5py.Dataset))

    def file_of(self, name: str) -> str:
        if self.source.format == "numpy" and hasattr(self, "_npy"):
            return str(self._npy.get(name, self.path / f"{name}.npy"))
        return f"{self.path}[{name}]"

    def shape(self, name: str) -> tuple[int, ...]:
        if hasattr(self, "_npy"):
            return tuple(np.load(self._npy[name], mmap_mode="r", allow_pickle=False).shape)
        return tuple((self._npz if self._h5 is None else self._h5)[name].shape)

    def dtype(self, name: str) -> np.dtype:
        if hasattr(self, "_npy"):
            return np.load(self._npy[name], mmap_mode="r", allow_pickle=False).dtype
        return (self._npz if self._h5 is None else self._h5)[name].dtype

    def load(self, name: str) -> np.ndarray:
        try:
            if hasattr(self, "_npy"):
                return np.load(self._npy[name], allow_pickle=False)
            if self._h5 is None:
                return self._npz[name]
            arr = self._h5[name][()]
        except ValueError as e:  # object arrays need pickle: refused
            raise DataError(f"{self.file_of(name)}: cannot load ({e}); store numbers or fixed-width strings") from None
        if arr.dtype.kind == "O" or arr.dtype.kind == "S":  # h5py strings
            arr = np.asarray([v.decode() if isinstance(v, bytes) else str(v) for v in arr], dtype=object)
        return arr

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()

    def __enter__(self) -> ArrayFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def array_kinds(f: ArrayFile, names: ColumnNames) -> dict[str, tuple[str, int]]:
    """Modality arrays: name -> ("vector" | "sequence", D); every 2-D or 3-D numeric array that is not
    the label or a ``*_lengths`` array."""
    out = {}
    for name in f.names:
        if name in names.reserved() or name.endswith(LENGTHS_SUFFIX) or f.dtype(name).kind not in "fiub":
            continue
        shape = f.shape(name)
        if len(shape) in (2, 3):
            out[name] = ("vector" if len(shape) == 2 else "sequence", int(shape[-1]))
    return out


def array_label_kind(f: ArrayFile, column: str) -> str:
    """``"int"``, ``"str"``, ``"float"`` or ``"multihot"`` for the label array."""
    if column not in f.names:
        raise DataError(f"{f.file_of(column)}: the label column '{column}' is missing (arrays: {', '.join(f.names)})")
    shape, kind = f.shape(column), f.dtype(column).kind
    if len(shape) == 2 and kind in "iub":
        return "multihot"
    if len(shape) != 1:
        raise DataError(f"{f.file_of(column)}: column '{column}': expected [N] labels or [N, C] multi-hot, found shape {shape}")
    return {"i": "int", "u": "int", "b": "int", "f": "float"}.get(kind, "str")


def _rows(arr: np.ndarray, n: int, where: str) -> None:
    if len(arr) != n:
        raise DataError(f"{where}: {len(arr)} rows, expected {n} (as the label column)")


def _lengths(f: ArrayFile, m: str, x: np.ndarray) -> np.ndarray:
    name = m + LENGTHS_SUFFIX
    if name not in f.names:
        return np.full(len(x), x.shape[1], np.int64)
    lengths = f.load(name).astype(np.int64).reshape(-1)
    _rows(lengths, len(x), f.file_of(name))
    bad = np.flatnonzero((lengths < 1) | (lengths > x.shape[1]))
    if bad.size:
        raise DataError(f"{f.file_of(name)}: column '{name}', row {bad[0]}: length {lengths[bad[0]]}, "
                        f"expected 1 to {x.shape[1]} (the steps of {m})")
    return lengths


def array_columns(f: ArrayFile, modalities: list[str], names: ColumnNames, seq_len: int | None) -> Columns:
    """Load the arrays of one source as ``Columns``, checked (row counts, lengths, NaN)."""
    array_label_kind(f, names.label)
    label = f.load(names.label)
    if label.dtype.kind in "iub":
        label = label.astype(np.int64)
    elif label.dtype.kind == "f":
        label = label.astype(np.float64)
    else:
        label = label.astype(str).astype(object)
    n = len(label)
    feats, lengths = {}, {}
    for m in modalities:
        if m not in f.names:
            raise DataError(f"{f.file_of(m)}: the modality column '{m}' is missing (arrays: {', '.join(f.names)})")
        x = f.load(m)
        _rows(x, n, f.file_of(m))
        if x.ndim not in (2, 3) or x.dtype.kind not in "fiub":
            raise DataError(f"{f.file_of(m)}: column '{m}': expected numbers [N, D] or [N, T, D], found "
                            f"{x.dtype} {x.shape}")
        x = x.astype(np.float32, copy=False)
        _check_finite(x, lambda r, c, m=m: f"{f.file_of(m)}: column '{c}', row {r}", m)
        if x.ndim == 3:
            steps = _lengths(f, m, x)
            mask = np.arange(x.shape[1])[None, :] < steps[:, None]
            x, steps = pad_steps(x[mask], steps, seq_len or x.shape[1])
            lengths[m] = steps
        feats[m] = np.ascontiguousarray(x)
    extra = {}
    for key, col in (("ids", names.id), ("split", names.split), ("group", names.group)):
        if col in f.names:
            arr = f.load(col).reshape(-1)
            _rows(arr, n, f.file_of(col))
            extra[key] = np.asarray([str(v) for v in arr.tolist()], dtype=object)
    # npy folders: each column is its own file, so errors found later name that file
    return Columns(feats, lengths, label, None, spans=[(str(f.path), n)], locate=f.file_of, **extra)
