"""Your own feature tables on disk -> numpy columns (the ``features`` dataset reads through this).

Formats, told from the content (``detect``):

- ``arrow``: Parquet, Arrow IPC files (Feather v2) and Arrow IPC streams (the ``.arrow`` files of a
  Hugging Face ``save_to_disk`` folder), a file or a folder of them (pyarrow). One row per example:
  a modality is a fixed-size list or a list of numbers (a vector ``[D]``) or a list of lists (a
  sequence ``[T, D]``); the label is an int, a string, a list of ints (multi-label) or a float.
- ``numpy``: a folder of ``<column>.npy`` files or one ``.npz``: a modality is ``[N, D]`` or
  ``[N, T, D]`` with ``<modality>_lengths.npy`` ``[N]``; labels ``[N]`` (or ``[N, C]`` multi-hot).
- ``hdf5``: one HDF5 file with the NumPy layout as root datasets (h5py).

Every reader checks what it converts: a missing column, vectors of mixed length, a null, NaN or
+-inf value, or an empty sequence is a ``DataError`` naming the file, the column and the row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, missing_extra
from .hdf5 import HDF5_SIGNATURE, open_hdf5

ARROW_SUFFIXES = (".parquet", ".arrow", ".feather", ".ipc")
LENGTHS_SUFFIX = "_lengths"
META_KEY = b"modalfuse"  # Arrow schema metadata written by `prepare features`: task, classes
# A folder's shared schema and metadata (the Parquet convention): task hints written once, not per file
COMMON_METADATA = "_common_metadata"


@dataclass(frozen=True)
class ColumnNames:
    """The table's non-feature columns (``id``, ``split`` and ``group`` are optional)."""

    label: str = "label"
    id: str = "id"
    split: str = "split"
    group: str = "group"

    def reserved(self) -> set[str]:
        return {self.label, self.id, self.split, self.group}


@dataclass
class Columns:
    """Rows of a feature table as numpy arrays, whatever the format.

    ``label`` is ``[N]`` (int64 classes, float scores or str), ``[N, C]`` multi-hot, or the values of
    list-of-int labels with ``label_offsets`` ``[N+1]``. ``spans`` say which file each row came from.
    """

    modalities: dict[str, np.ndarray]  # [N, D] float32, or [N, T, D] padded with zeros
    lengths: dict[str, np.ndarray]  # [N] real steps, sequence modalities only
    label: np.ndarray
    label_offsets: np.ndarray | None = None
    ids: np.ndarray | None = None
    split: np.ndarray | None = None
    group: np.ndarray | None = None
    spans: list[tuple[str, int]] = field(default_factory=list)  # (file, rows) in row order
    locate: Callable[[str], str] | None = None  # column -> its file, where each column has its own

    def __len__(self) -> int:
        return len(self.label) if self.label_offsets is None else len(self.label_offsets) - 1

    def where(self, row: int, column: str) -> str:
        """``"FILE: column 'c', row r"`` for a row of the whole table (its row within its file)."""
        if self.locate is not None:
            return f"{self.locate(column)}: column '{column}', row {row}"
        for path, n in self.spans:
            if row < n:
                return f"{path}: column '{column}', row {row}"
            row -= n
        return f"column '{column}', row {row}"


# ----------------------------------------------------------------------------- finding files


def _magic(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(8)


def file_format(path: Path) -> str | None:
    """``"parquet"``, ``"ipc-file"``, ``"ipc-stream"``, ``"npz"``, ``"npy"``, ``"hdf5"`` or None."""
    head = _magic(path)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1"):
        return "ipc-file"
    if head.startswith(b"\xff\xff\xff\xff"):
        return "ipc-stream"
    if head.startswith(HDF5_SIGNATURE):
        return "hdf5"
    if head.startswith(b"PK"):
        return "npz"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    return None


@dataclass
class Source:
    """What a ``data.path`` names: its format and files (with the split a folder gives them)."""

    format: str  # "arrow", "numpy" or "hdf5"
    files: list[Path]
    split_of: dict[Path, str] = field(default_factory=dict)  # save_to_disk DatasetDict: folder = split
    meta: dict[str, Any] = field(default_factory=dict)


def _arrow_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in ARROW_SUFFIXES)


def find_source(paths: list[str]) -> Source:
    """Resolve ``data.path`` entries (files or folders) into one ``Source``.

    Raises:
        DataError: a path that is missing, a folder with no feature files, a file of no known
            format, or formats mixed.
    """
    sources = [_one_source(Path(p)) for p in paths]
    kinds = {s.format for s in sources}
    if len(kinds) > 1:
        raise DataError(f"{', '.join(paths)}: mixed formats ({', '.join(sorted(kinds))}); give one format")
    out = Source(sources[0].format, [f for s in sources for f in s.files])
    for s in sources:
        out.split_of.update(s.split_of)
        out.meta = {**s.meta, **out.meta}  # the first path's hints win
    if out.format == "numpy" and len(out.files) > 1 and any(f.suffix == ".npz" for f in out.files):
        raise DataError(f"{paths[0]}: give one .npz file or one folder of .npy files")
    return out


def _one_source(path: Path) -> Source:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        return _folder_source(path)
    fmt = file_format(path)
    if fmt in ("parquet", "ipc-file", "ipc-stream"):
        return Source("arrow", [path])
    if fmt == "npz":
        return Source("numpy", [path])
    if fmt == "hdf5":
        return Source("hdf5", [path])
    raise DataError(f"{path}: unknown format (expected Parquet, Arrow IPC/Feather, .npz, HDF5, or a folder of "
                    f"them / of .npy files)")


def _folder_source(path: Path) -> Source:
    splits_file = path / "dataset_dict.json"
    if splits_file.is_file():  # a save_to_disk DatasetDict: one folder per split
        try:
            names = json.loads(splits_file.read_text())["splits"]
        except (ValueError, KeyError, TypeError):
            raise DataError(f"{splits_file}: expected a JSON object with 'splits' (a datasets save_to_disk "
                            f"folder)") from None
        files, split_of = [], {}
        for name in names:
            for f in _arrow_files(path / name):
                files.append(f)
                split_of[f] = name
        if not files:
            raise DataError(f"{path}: a DatasetDict folder with no .arrow files under {', '.join(names)}")
        return Source("arrow", files, split_of)
    arrow = _arrow_files(path)
    if arrow:
        common = path / COMMON_METADATA
        return Source("arrow", arrow, meta=arrow_meta(open_arrow(common)[0]) if common.is_file() else {})
    npy = sorted(path.glob("*.npy"))
    if npy:
        return Source("numpy", npy)
    raise DataError(f"{path}: no feature files (expected .parquet, .arrow, .feather or .npy files)")


# ----------------------------------------------------------------------------- Arrow


def require_pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError:
        raise missing_extra("reading Parquet/Arrow feature tables", "pyarrow", "features") from None
    return pyarrow


def open_arrow(path: Path) -> tuple[Any, int]:
    """(schema, rows) of one Parquet or Arrow file, reading only its footer or metadata."""
    pa = require_pyarrow()
    fmt = file_format(path)
    try:
        if fmt == "parquet" or path.name == COMMON_METADATA:
            import pyarrow.parquet as pq

            f = pq.ParquetFile(path)
            return f.schema_arrow, f.metadata.num_rows
        if fmt == "ipc-file":
            with pa.ipc.open_file(path) as r:
                return r.schema, sum(r.get_batch(i).num_rows for i in range(r.num_record_batches))
        with pa.ipc.open_stream(path) as r:
            return r.schema, sum(b.num_rows for b in r)
    except pa.ArrowException as e:
        raise DataError(f"{path}: not a readable {fmt} file ({str(e).splitlines()[0][:120]})") from None


def iter_arrow(path: Path, columns: list[str], batch_size: int = 65536) -> Iterator[Any]:
    """Record batches of ``columns`` from one file (``pyarrow.dataset`` for Parquet and IPC files; an
    IPC stream, which ``pyarrow.dataset`` cannot open, through ``pyarrow.ipc``)."""
    pa = require_pyarrow()
    fmt = file_format(path)
    try:
        if fmt == "ipc-stream":
            with pa.ipc.open_stream(path) as r:
                for batch in r:
                    yield batch.select(columns)
            return
        import pyarrow.dataset as pads

        data = pads.dataset(str(path), format="parquet" if fmt == "parquet" else "ipc")
        # little read-ahead: memory holds a few record batches whatever the file's size
        yield from data.to_batches(columns=columns, batch_size=batch_size, batch_readahead=2, fragment_readahead=1,
                                   use_threads=True)
    except (pa.ArrowException, OSError) as e:  # a corrupt Parquet page is an OSError
        raise DataError(f"{path}: cannot read ({str(e).splitlines()[0][:120]})") from None


def iter_files(paths: list[Path], columns: list[str], batch_size: int) -> Iterator[tuple[Path, Any]]:
    """``(file, record batch)`` of ``columns`` from ``paths`` in order, on this thread.

    Parquet files (or Arrow IPC files) go through one ``pyarrow.dataset`` scan: a dataset per file
    costs more than reading a YouTube-8M shard's worth of rows (bench/features_read.py); IPC streams
    and mixed formats are read file by file (``iter_arrow``).
    """
    formats = {file_format(p) for p in paths}
    if len(formats) != 1 or not formats <= {"parquet", "ipc-file"}:
        for path in paths:
            for batch in iter_arrow(path, columns, batch_size):
                yield path, batch
        return
    import pyarrow.dataset as pads

    pa = require_pyarrow()
    last = paths[0]
    try:
        data = pads.dataset([str(p) for p in paths], format="parquet" if formats == {"parquet"} else "ipc")
        # No read-ahead and no pre-buffering of whole row groups: memory then holds about one record
        # batch whatever the files' sizes (bench/features_read.py measured the peak growing with the
        # files otherwise); reading stays on this thread, which is as fast on a busy machine.
        options = pads.ParquetFragmentScanOptions(pre_buffer=False) if formats == {"parquet"} else None
        scanner = data.scanner(columns=columns, batch_size=batch_size, use_threads=False, batch_readahead=0,
                               fragment_readahead=0, fragment_scan_options=options)
        for tagged in scanner.scan_batches():
            last = Path(tagged.fragment.path)
            yield last, tagged.record_batch
    except (pa.ArrowException, OSError) as e:  # a corrupt Parquet page is an OSError
        # the scan does not say which file failed: read them alone from the last one read, to name it
        for path in paths[paths.index(last) if last in paths else 0:]:
            for _ in iter_arrow(path, columns, batch_size):
                pass
        raise DataError(f"{paths[0].parent}: cannot read ({str(e).splitlines()[0][:120]})") from None


def arrow_meta(schema: Any) -> dict[str, Any]:
    """Task hints stored in the schema: ``prepare features``' own, or a ``datasets`` ClassLabel's names."""
    meta = schema.metadata or {}
    out: dict[str, Any] = {}
    if META_KEY in meta:
        out.update(json.loads(meta[META_KEY]))
    if b"huggingface" in meta:
        try:
            feats = json.loads(meta[b"huggingface"])["info"]["features"]
            out["hf_class_names"] = {k: v["names"] for k, v in feats.items()
                                     if isinstance(v, dict) and v.get("_type") == "ClassLabel"}
        except (ValueError, KeyError, TypeError):
            pass
    return out


def _is_list(t: Any) -> bool:
    pa = require_pyarrow()
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _is_number(t: Any) -> bool:
    pa = require_pyarrow()
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def column_kind(t: Any) -> str | None:
    """``"vector"`` (list of numbers), ``"sequence"`` (list of lists of numbers) or None."""
    if not _is_list(t):
        return None
    inner = t.value_type
    if _is_number(inner):
        return "vector"
    if _is_list(inner) and _is_number(inner.value_type):
        return "sequence"
    return None


def label_kind(t: Any) -> str | None:
    """``"int"``, ``"str"``, ``"float"``, ``"intlist"`` or None for a label column's Arrow type."""
    pa = require_pyarrow()
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "str"
    if _is_list(t) and pa.types.is_integer(t.value_type):
        return "intlist"
    return None


def _first_null(arr: Any) -> int | None:
    if not arr.null_count:
        return None
    import pyarrow.compute as pc

    return int(np.flatnonzero(pc.is_null(arr).to_numpy(zero_copy_only=False))[0])


def _check_finite(x: np.ndarray, where: Any, column: str) -> None:
    """``where(row, column)`` names a row; ``x`` is ``[N, ...]``."""
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1) if x.size else np.zeros(len(x), bool)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where(row, column)}: NaN or infinite value ({int(bad.sum())} rows have one); "
                        f"expected finite numbers")


def _flat_lengths(arr: Any) -> tuple[np.ndarray, Any]:
    """Per-row list lengths ``[N]`` and the flattened values of a list array."""
    import pyarrow.compute as pc

    return pc.list_value_length(arr).to_numpy(zero_copy_only=False).astype(np.int64), arr.flatten()


def _same_length(lengths: np.ndarray, where: Any, column: str, what: str) -> int:
    if not len(lengths):
        return 0
    bad = np.flatnonzero(lengths != lengths[0])
    if bad.size:
        raise DataError(f"{where(int(bad[0]), column)}: {what} of {lengths[bad[0]]} values, expected "
                        f"{lengths[0]} as in row 0 (every {what} of a column has one length)")
    return int(lengths[0])


def arrow_modality(arr: Any, column: str, where: Any, seq_len: int | None,
                   copy: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """One modality column -> ``[N, D]`` (vectors) or ``([N, T, D], lengths [N])`` (sequences).

    Args:
        arr: the column (an Arrow array).
        seq_len: ``T`` for sequences (longer ones are cut to their first ``T`` steps); None: the longest.
        copy: vectors as a writable copy (False: a read-only view of Arrow's buffer where it can be).
    """
    null = _first_null(arr)
    if null is not None:
        raise DataError(f"{where(null, column)}: missing value (null); expected a feature vector")
    kind = column_kind(arr.type)
    lengths, values = _flat_lengths(arr)
    if kind == "vector":
        dim = _same_length(lengths, where, column, "vector")
        # a copy by default: Arrow's buffers are read-only, and normalisation scales in place
        x = np.array(values.to_numpy(zero_copy_only=False), dtype=np.float32, copy=copy or None).reshape(len(arr), dim)
        _check_finite(x, where, column)
        return x, None
    if kind != "sequence":
        raise DataError(f"{where(0, column)}: expected a list of numbers (a vector) or a list of lists (a sequence), "
                        f"found {arr.type}")
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        raise DataError(f"{where(int(empty[0]), column)}: an empty sequence; expected at least one step")
    step_lengths, flat = _flat_lengths(values)
    row_of_step = np.repeat(np.arange(len(arr)), lengths)
    dim = _same_length(step_lengths, lambda s, c: where(int(row_of_step[s]), c), column, "step vector")
    steps = flat.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, dim)
    _check_finite(steps, lambda s, c: where(int(row_of_step[s]), c), column)
    return pad_steps(steps, lengths, seq_len)


def pad_steps(steps: np.ndarray, lengths: np.ndarray, seq_len: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Ragged rows (``steps`` ``[sum(lengths), D]``) -> ``[N, T, D]`` zero-padded, and the kept lengths."""
    t = int(seq_len or (lengths.max() if len(lengths) else 1))
    n = len(lengths)
    out = np.zeros((n, t, steps.shape[1]), np.float32)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    pos = np.arange(len(steps)) - np.repeat(starts, lengths)
    rows = np.repeat(np.arange(n), lengths)
    keep = pos < t
    out[rows[keep], pos[keep]] = steps[keep]
    return out, np.minimum(lengths, t)


def arrow_label(arr: Any, column: str, where: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """The label column -> ``[N]`` values (int64, float64 or str) or list-of-int values + offsets."""
    null = _first_null(arr)
    if null is not None:
        raise DataError(f"{where(null, column)}: missing label (null)")
    kind = label_kind(arr.type)
    if kind is None:
        raise DataError(f"{where(0, column)}: expected an int or string class, a list of ints or a float, "
                        f"found {arr.type}")
    if kind == "intlist":
        lengths, values = _flat_lengths(arr)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return np.array(values.to_numpy(zero_copy_only=False), dtype=np.int64), offsets
    if kind == "str":
        import pyarrow.compute as pc

        return np.asarray(pc.cast(arr, require_pyarrow().string()).to_pylist(), dtype=object), None
    values = np.array(arr.to_numpy(zero_copy_only=False))
    if kind == "float":
        values = values.astype(np.float64)
        _check_finite(values, where, column)
    return values, None


def arrow_strings(arr: Any, column: str, where: Any) -> np.ndarray:
    null = _first_null(arr)
    if null is not None:
        raise DataError(f"{where(null, column)}: missing value (null)")
    return np.asarray([str(v) for v in arr.to_pylist()], dtype=object)


def _column(batch: Any, name: str) -> Any:
    col = batch.column(name)
    return col.combine_chunks() if isinstance(col, require_pyarrow().ChunkedArray) else col


def arrow_columns(batch: Any, modalities: list[str], names: ColumnNames, where: Any,
                  seq_len: int | None, copy: bool = True) -> Columns:
    """One Arrow table or record batch -> ``Columns`` (``where(row, column)`` names a row)."""
    present = set(batch.schema.names)
    feats, lengths = {}, {}
    for m in modalities:
        x, n = arrow_modality(_column(batch, m), m, where, seq_len, copy)
        feats[m] = x
        if n is not None:
            lengths[m] = n
    label, offsets = arrow_label(_column(batch, names.label), names.label, where)
    extra = {key: arrow_strings(_column(batch, col), col, where) if col in present else None
             for key, col in (("ids", names.id), ("split", names.split), ("group", names.group))}
    return Columns(feats, lengths, label, offsets, **extra)


def concat_columns(parts: list[Columns]) -> Columns:
    """Rows of several ``Columns`` in order (sequences padded to the longest ``T``)."""
    first = parts[0]
    if len(parts) == 1:
        return first
    feats, lengths = {}, {}
    for m, x in first.modalities.items():
        if m in first.lengths:
            t = max(p.modalities[m].shape[1] for p in parts)
            feats[m] = np.concatenate([np.pad(p.modalities[m], ((0, 0), (0, t - p.modalities[m].shape[1]), (0, 0)))
                                       for p in parts])
            lengths[m] = np.concatenate([p.lengths[m] for p in parts])
        else:
            feats[m] = np.concatenate([p.modalities[m] for p in parts])
    if first.label_offsets is not None:
        offsets = [np.asarray([0])]
        base = 0
        for p in parts:
            offsets.append(p.label_offsets[1:] + base)
            base += int(p.label_offsets[-1])
        label, label_offsets = np.concatenate([p.label for p in parts]), np.concatenate(offsets)
    else:
        label, label_offsets = np.concatenate([p.label for p in parts]), None

    def cat(key: str) -> np.ndarray | None:
        values = [getattr(p, key) for p in parts]
        return None if any(v is None for v in values) else np.concatenate(values)

    return Columns(feats, lengths, label, label_offsets, cat("ids"), cat("split"), cat("group"),
                   [s for p in parts for s in p.spans])
