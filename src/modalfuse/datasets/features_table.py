"""The ``features`` dataset's table in memory: its params, reading, task, splits and checks.

See ``features.py`` (the registered dataset) for what the dataset does; ``features_stream.py``
streams the same tables.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..config import Params
from ..errors import ConfigError, DataError
from ..readers.feature_files import ColumnNames, Columns, Source, find_source
from .base import ModalitySpec, TaskSpec
from .folds import assign_splits

SPLIT_NAMES = {"train": "train", "training": "train", "valid": "valid", "validation": "valid", "val": "valid",
               "dev": "valid", "test": "test"}
TASK_OF_LABEL = {"int": "multiclass", "str": "multiclass", "intlist": "multilabel", "multihot": "multilabel",
                 "float": "regression"}


class FeaturesParams(Params):
    """``data:`` keys of the ``features`` dataset."""

    path: str | list[str]  # a file or folder (Parquet/Arrow/.npy/.npz/HDF5), or a list of them
    modalities: Literal["auto"] | list[str] = "auto"  # auto: every vector/sequence column
    label: str = "label"  # the label column
    id: str = "id"  # optional columns: used when present
    split: str = "split"
    group: str = "group"
    task: Literal["auto", "multiclass", "multilabel", "regression"] = "auto"
    num_classes: int | None = Field(None, ge=2)
    class_names: list[str] | None = None  # string labels: their order (default: sorted)
    seq_len: int | None = Field(None, ge=1)  # sequences: cut/padded to this (None: the longest)
    normalize: bool = False  # z-scores with the training split's statistics
    valid_fraction: float = Field(0.1, ge=0, lt=1)  # groups for validation (no split column, or none in it)
    test_fraction: float = Field(0.2, ge=0, lt=1)  # groups for test (no split column)
    seed: int = 0  # seed of the group split
    streaming: bool = False  # Parquet/Arrow only: read batch by batch every epoch (data larger than memory)
    shuffle_buffer: int = Field(8192, ge=1)  # streaming: rows shuffled together
    # streaming under torchrun: "file" (each process reads its own files), "record" (every process reads
    # every file and keeps every world_size-th row), "auto": by file with >= 8 files per process
    shard_by: Literal["auto", "file", "record"] = "auto"

    def names(self) -> ColumnNames:
        return ColumnNames(self.label, self.id, self.split, self.group)

    def paths(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


# ----------------------------------------------------------------------------- reading


def arrow_schema_info(source: Source, names: ColumnNames) -> dict[str, Any]:
    """From the first file's schema: modalities ``{name: (kind, D or None)}``, the label kind, metadata."""
    from ..readers.feature_files import arrow_meta, column_kind, label_kind, open_arrow

    schema, _ = open_arrow(source.files[0])
    mods = {}
    for f in schema:
        kind = column_kind(f.type)
        if kind and f.name not in names.reserved():
            size = f.type.list_size if hasattr(f.type, "list_size") else None
            mods[f.name] = (kind, size)
    if names.label not in schema.names:
        raise DataError(f"{source.files[0]}: the label column '{names.label}' is missing "
                        f"(columns: {', '.join(schema.names)})")
    # the file's own hints over the folder's _common_metadata
    return {"modalities": mods, "label": label_kind(schema.field(names.label).type),
            "meta": {**source.meta, **arrow_meta(schema)},
            "columns": list(schema.names)}


def _pick_modalities(wanted: Literal["auto"] | list[str], found: dict[str, Any], where: str,
                     columns: list[str]) -> list[str]:
    if wanted == "auto":
        if not found:
            raise DataError(f"{where}: no feature columns (expected lists of numbers or lists of lists; columns: "
                            f"{', '.join(columns)})")
        return sorted(found)
    missing = [m for m in wanted if m not in columns]
    if missing:
        raise DataError(f"{where}: column '{missing[0]}' (data.modalities) is missing; columns: {', '.join(columns)}")
    return sorted(wanted)


def _file_columns(path: Any, modalities: list[str], names: ColumnNames) -> tuple[Any, list[str]]:
    """(schema, the columns read) of one file; a missing modality or label column is an error."""
    from ..readers.feature_files import open_arrow

    schema, _ = open_arrow(path)
    wanted = [*modalities, names.label]
    missing = [c for c in wanted if c not in schema.names]
    if missing:
        raise DataError(f"{path}: column '{missing[0]}' is missing (columns: {', '.join(schema.names)})")
    return schema, wanted + [c for c in (names.id, names.split, names.group) if c in schema.names]


def read_arrow_table(source: Source, p: FeaturesParams) -> tuple[Columns, dict[str, Any]]:
    """Every row of a Parquet/Arrow source, checked file by file.

    Files with the same columns are read in one ``pyarrow.dataset`` scan (``iter_files``): a scan per
    file made opening the 100 YouTube-8M shards slower (docs/own_data.md, bench/features_read.py)."""
    from ..readers.feature_files import arrow_columns, concat_columns, iter_files, require_pyarrow

    names = p.names()
    info = arrow_schema_info(source, names)
    modalities = _pick_modalities(p.modalities, info["modalities"], str(source.files[0]), info["columns"])
    pa = require_pyarrow()
    layout = {path: _file_columns(path, modalities, names) for path in source.files}
    groups = [source.files] if len({tuple(c) for _, c in layout.values()}) == 1 else [[f] for f in source.files]
    batches: dict[Any, list[Any]] = {path: [] for path in source.files}
    for files in groups:
        for path, batch in iter_files(files, layout[files[0]][1], 65536):
            batches[path].append(batch)
    parts = []
    for path in source.files:
        schema, columns = layout[path]
        table = pa.Table.from_batches(batches.pop(path), schema=schema.empty_table().select(columns).schema)
        # views of Arrow's buffers where the files are joined below (the join is the copy); one file is copied
        cols = arrow_columns(table, modalities, names, lambda r, c, path=path: f"{path}: column '{c}', row {r}",
                             p.seq_len, copy=len(source.files) == 1)
        if path in source.split_of:
            cols.split = np.full(len(cols), source.split_of[path], dtype=object)
        cols.spans = [(str(path), len(cols))]
        parts.append(cols)
    return concat_columns(parts), info["meta"]


def read_table(p: FeaturesParams) -> tuple[Columns, dict[str, Any]]:
    """The whole table in memory, and the task hints stored with it (Arrow metadata)."""
    source = find_source(p.paths())
    if source.format == "arrow":
        return read_arrow_table(source, p)
    from ..readers.feature_arrays import ArrayFile, array_columns, array_kinds

    with ArrayFile(source) as f:
        modalities = _pick_modalities(p.modalities, array_kinds(f, p.names()), str(f.path), f.names)
        return array_columns(f, modalities, p.names(), p.seq_len), {}


def describe_source(p: FeaturesParams) -> dict[str, Any]:
    """What ``init`` needs, from schemas and array headers only (nothing is loaded): the format, the
    modalities ``{name: "vector" | "sequence"}``, the task the label column gives, the split column."""
    source = find_source(p.paths())
    names = p.names()
    if source.format == "arrow":
        info = arrow_schema_info(source, names)
        found = {m: kind for m, (kind, _) in info["modalities"].items()}
        label, columns = info["label"], info["columns"]
        if label is None:
            raise DataError(f"{source.files[0]}: column '{names.label}': expected an int or string class, a list of "
                            f"ints or a float label")
        has_split = names.split in columns or bool(source.split_of)
    else:
        from ..readers.feature_arrays import ArrayFile, array_kinds, array_label_kind

        with ArrayFile(source) as f:
            found = {m: kind for m, (kind, _) in array_kinds(f, names).items()}
            label, columns, has_split = array_label_kind(f, names.label), f.names, names.split in f.names
    modalities = _pick_modalities(p.modalities, found, str(source.files[0]), columns)
    return {"format": source.format, "modalities": {m: found.get(m, "vector") for m in modalities},
            "task": p.task if p.task != "auto" else TASK_OF_LABEL[label], "label": label, "split_column": has_split}


# ----------------------------------------------------------------------------- labels and task


def label_kind_of(cols: Columns) -> str:
    if cols.label_offsets is not None:
        return "intlist"
    if cols.label.ndim == 2:
        return "multihot"
    return {"i": "int", "u": "int", "b": "int", "f": "float"}.get(cols.label.dtype.kind, "str")


def check_class_range(values: np.ndarray, n: int, where: Any, row_of: np.ndarray | None = None) -> None:
    """A class outside ``[0, n)`` is an error naming its row (``row_of`` maps values to rows)."""
    bad = np.flatnonzero((values < 0) | (values >= n))
    if bad.size:
        row = int(bad[0] if row_of is None else row_of[bad[0]])
        raise DataError(f"{where(row)}: class {values[bad[0]]} is out of range, expected 0 to {n - 1} "
                        f"({n} classes: data.num_classes)")


def _class_names(cols: Columns, p: FeaturesParams, meta: dict[str, Any]) -> list[str] | None:
    if p.class_names is not None:
        return list(p.class_names)
    if meta.get("class_names"):
        return list(meta["class_names"])
    hf = (meta.get("hf_class_names") or {}).get(p.label)
    return list(hf) if hf else None


def _multiclass(cols: Columns, kind: str, p: FeaturesParams, meta: dict[str, Any], where: Any) -> tuple[np.ndarray, TaskSpec]:
    names = _class_names(cols, p, meta)
    y = cols.label
    if kind == "str":
        names = names or sorted(set(y.tolist()))
        index = {name: i for i, name in enumerate(names)}
        unknown = [i for i, v in enumerate(y.tolist()) if v not in index]
        if unknown:
            raise DataError(f"{where(unknown[0])}: class '{y[unknown[0]]}' is not one of data.class_names "
                            f"({', '.join(names[:10])}{' ...' if len(names) > 10 else ''})")
        y = np.asarray([index[v] for v in y.tolist()], np.int64)
    elif kind == "float":
        frac = np.flatnonzero(y != np.round(y))
        if frac.size:
            raise DataError(f"{where(int(frac[0]))}: label {y[frac[0]]:g} is not a whole number (task multiclass "
                            f"needs class numbers; a float label column is a regression target by default)")
        y = y.astype(np.int64)
    elif kind != "int":
        raise ConfigError(f"config key 'data.task': multiclass needs one class per row; column '{p.label}' holds "
                          f"{'lists' if kind == 'intlist' else 'multi-hot rows'} (task multilabel)")
    n = p.num_classes or meta.get("num_classes") or (len(names) if names else int(y.max(initial=0)) + 1)
    check_class_range(y, n, where)
    if n < 2:
        raise DataError(f"{where(0)}: every label is class 0; a classifier needs at least two classes "
                        f"(data.num_classes)")
    if names is not None and len(names) != n:
        names = None
    return y, TaskSpec("multiclass", int(n), tuple(names) if names else None)


def _multilabel(cols: Columns, kind: str, p: FeaturesParams, meta: dict[str, Any], where: Any,
                dense: bool = True) -> tuple[np.ndarray, TaskSpec]:
    names = _class_names(cols, p, meta)
    if kind == "multihot":
        y = cols.label
        bad = np.flatnonzero(~np.isin(y, (0, 1)).all(axis=1))
        if bad.size:
            raise DataError(f"{where(int(bad[0]))}: a multi-hot label row holds values other than 0 and 1")
        n = y.shape[1]
        return y.astype(np.float32), TaskSpec("multilabel", n, tuple(names) if names and len(names) == n else None)
    if kind != "intlist":
        raise ConfigError(f"config key 'data.task': multilabel needs a list of classes per row; column '{p.label}' "
                          f"holds one {kind} per row")
    values, offsets = cols.label, cols.label_offsets
    n = p.num_classes or meta.get("num_classes") or (len(names) if names else int(values.max(initial=0)) + 1)
    row_of = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    check_class_range(values, n, where, row_of)
    if not dense:  # the classes as they are (lists): a dense row is 4 * C bytes
        return values, TaskSpec("multilabel", int(n), tuple(names) if names and len(names) == n else None)
    y = np.zeros((len(offsets) - 1, n), np.float32)
    y[row_of, values] = 1.0
    return y, TaskSpec("multilabel", int(n), tuple(names) if names and len(names) == n else None)


def make_labels(cols: Columns, p: FeaturesParams, meta: dict[str, Any], dense: bool = True) -> tuple[np.ndarray, TaskSpec]:
    """Training labels and the task, inferred from the label column unless ``data.task`` is set.

    Returns:
        ``(labels, task)``: int64 ``[N]`` classes, float32 ``[N, C]`` multi-hot or float32 ``[N]`` scores;
        with ``dense=False``, list-of-int multi-labels stay lists (``cols.label`` checked, not expanded).

    Raises:
        DataError: a label out of range or not a class, naming the file, column and row.
    """
    kind = label_kind_of(cols)
    task = p.task if p.task != "auto" else TASK_OF_LABEL[kind]

    def where(row: int) -> str:
        return cols.where(row, p.label)

    if task == "multiclass":
        return _multiclass(cols, kind, p, meta, where)
    if task == "multilabel":
        return _multilabel(cols, kind, p, meta, where, dense)
    if kind not in ("int", "float"):
        raise ConfigError(f"config key 'data.task': regression needs a number per row; column '{p.label}' holds "
                          f"{'strings' if kind == 'str' else 'lists'}")
    return cols.label.astype(np.float32), TaskSpec("regression", 1)


def multi_hot_rows(values: np.ndarray, offsets: np.ndarray, rows: np.ndarray, num_classes: int) -> np.ndarray:
    """Dense float32 ``[len(rows), C]`` multi-hot labels of ``rows`` from list-of-class labels
    (``values`` with ``offsets`` ``[N+1]``): one scatter, no dense row for rows not asked for."""
    counts = np.diff(offsets)[rows]
    ends = np.cumsum(counts)
    src = np.repeat(offsets[rows] - (ends - counts), counts) + np.arange(int(ends[-1]) if len(ends) else 0)
    y = np.zeros((len(rows), num_classes), np.float32)
    y[np.repeat(np.arange(len(rows)), counts), values[src]] = 1.0
    return y


# ----------------------------------------------------------------------------- splits


def check_ids(cols: Columns, column: str) -> list[str]:
    """The row ids (the id column, else the row number); a repeated id is an error naming both rows."""
    if cols.ids is None:
        return [str(i) for i in range(len(cols))]
    ids = cols.ids.tolist()
    first: dict[str, int] = {}
    for row, v in enumerate(ids):
        if v in first:
            raise DataError(f"{cols.where(row, column)}: id '{v}' repeats row {first[v]}; ids must be unique")
        first[v] = row
    return ids


def split_rows(cols: Columns, p: FeaturesParams) -> tuple[dict[str, np.ndarray], str]:
    """``{"train", "valid", "test": row index}`` and how they were made (for ``info``)."""
    groups = cols.group if cols.group is not None else (
        cols.ids if cols.ids is not None else np.arange(len(cols)).astype(str))
    groups = [str(g) for g in groups.tolist()]
    if cols.split is None:
        index = assign_splits(groups, "random", valid_fraction=p.valid_fraction, test_fraction=p.test_fraction,
                              seed=p.seed)
        return index, f"seeded split by {'group' if cols.group is not None else 'row'} (seed {p.seed})"
    values = cols.split.tolist()
    unknown = [i for i, v in enumerate(values) if v.lower() not in SPLIT_NAMES]
    if unknown:
        raise DataError(f"{cols.where(unknown[0], p.split)}: split '{values[unknown[0]]}', expected train, valid "
                        f"(or validation) or test")
    named = np.asarray([SPLIT_NAMES[v.lower()] for v in values])
    index = {s: np.flatnonzero(named == s) for s in ("train", "valid", "test")}
    if not index["train"].size:
        raise DataError(f"{cols.where(0, p.split)}: no row is in the train split")
    how = "split column"
    if not index["valid"].size:  # carve validation from train, by group
        train = index["train"]
        part = assign_splits([groups[i] for i in train], "random", valid_fraction=p.valid_fraction or 0.1,
                             test_fraction=0.0, seed=p.seed)
        index["train"], index["valid"] = train[part["train"]], train[part["valid"]]
        how += f", validation carved from train by group (seed {p.seed})"
    return index, how


# ----------------------------------------------------------------------------- the dataset


def modality_specs(cols: Columns) -> dict[str, ModalitySpec]:
    return {m: ModalitySpec(int(x.shape[-1]), int(x.shape[1]) if x.ndim == 3 else None)
            for m, x in sorted(cols.modalities.items())}


def masks_of(cols: Columns) -> dict[str, np.ndarray]:
    return {m: np.arange(cols.modalities[m].shape[1])[None, :] < n[:, None] for m, n in cols.lengths.items()}
