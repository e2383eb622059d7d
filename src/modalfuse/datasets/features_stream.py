"""``features`` with ``streaming: true``: Parquet/Arrow tables larger than memory, read every epoch.

Each epoch reads the files record batch by record batch (``pyarrow.dataset``; IPC streams through
``pyarrow.ipc``) in a seeded file order, shuffles rows within blocks of ``shuffle_buffer`` and
yields batches, so memory holds one block and one record batch whatever the table's size. Under
``torchrun`` the files or rows are divided between processes by the ``shard_by`` rule of the
``yt8m`` stream (by file with at least 8 files per process, else by row).

Before the first epoch one pass reads the label and split columns only (a small share of a feature
table) to count each split's rows and find the classes. Streaming needs a split column (or a
``save_to_disk`` DatasetDict folder), a ``seq_len`` for sequence columns, and ``normalize: false``:
each is a config error naming the key otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from ..readers.feature_files import (Columns, Source, arrow_columns, arrow_label, concat_columns, find_source, iter_arrow, iter_files,
                                     open_arrow)
from .base import Batch, DataBundle, TaskSpec
from .features_table import (SPLIT_NAMES, FeaturesParams, arrow_schema_info, check_class_range, make_labels, masks_of,
                             modality_specs)
from .yt8m import FILES_PER_RANK

READ_ROWS = 512  # rows per record batch read: a few MB of features, whatever the files' sizes


def _split_name(value: Any) -> str:
    return SPLIT_NAMES.get(str(value).lower(), "?")


def _split_filter(batch: Any, column: str, split: str) -> np.ndarray:
    """Rows of a record batch whose split column names ``split`` (any of its spellings)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    spellings = pa.array([k for k, v in SPLIT_NAMES.items() if v == split])
    found = pc.is_in(pc.utf8_lower(pc.cast(batch.column(column), pa.string())), value_set=spellings)
    return np.flatnonzero(found.to_numpy(zero_copy_only=False))


class FeatureStream:
    """One split of a streamed feature table (a ``BatchStream``).

    Args:
        files: the table's files; ``split_of`` gives a file's split where its folder does.
        split: ``train``, ``valid`` or ``test``.
        p: the dataset's params, with ``task``, ``num_classes`` and ``class_names`` fixed by the scan.
        modalities: the feature columns read.
        num_records: rows of this split (from the scan).
    """

    def __init__(self, files: list[Path], split_of: dict[Path, str], split: str, p: FeaturesParams,
                 modalities: list[str], num_records: int) -> None:
        self.files = [f for f in files if f not in split_of or _split_name(split_of[f]) == split]
        self.split_of = split_of
        self.split = split
        self.p = p
        self.modalities = modalities
        self.num_records = num_records
        self._read: dict[Path, list[str]] = {}  # the columns read from each file

    def __len__(self) -> int:
        return self.num_records

    def by_file(self, world_size: int) -> bool:
        if world_size == 1 or self.p.shard_by == "record":
            return False
        return len(self.files) >= (world_size if self.p.shard_by == "file" else FILES_PER_RANK * world_size)

    def _columns(self, path: Path) -> list[str]:
        if path in self._read:
            return self._read[path]
        names = self.p.names()
        schema, _ = open_arrow(path)
        wanted = [*self.modalities, names.label]
        missing = [c for c in wanted if c not in schema.names]
        if missing:
            from ..errors import DataError

            raise DataError(f"{path}: column '{missing[0]}' is missing (columns: {', '.join(schema.names)})")
        self._read[path] = wanted + [c for c in (names.id, names.split) if c in schema.names]
        return self._read[path]

    def chunks(self, order: list[Path], rank: int, world_size: int) -> Iterator[dict[str, Any]]:
        """This rank's rows, one record batch at a time: ``{"features", "masks", "label", "ids"}`` arrays."""
        if self.by_file(world_size):
            order, rank, world_size = order[rank::world_size], 0, 1
        seen = 0  # position in the split's global row order: decides each row's rank
        columns = {tuple(self._columns(p)) for p in order}
        groups = [order] if len(columns) == 1 else [[p] for p in order]  # one scan when the files agree
        start, last = 0, None
        for paths in groups:
            for path, batch in iter_files(paths, self._columns(paths[0]), READ_ROWS):
                start = 0 if path != last else start
                last = path
                rows = (np.arange(batch.num_rows) if path in self.split_of
                        else _split_filter(batch, self.p.split, self.split))
                first = (rank - seen) % world_size
                seen += len(rows)
                rows = rows[first::world_size]
                if len(rows):
                    yield self._convert(batch.take(rows) if len(rows) < batch.num_rows else batch, path, start + rows)
                start += batch.num_rows

    def _convert(self, batch: Any, path: Path, file_rows: np.ndarray) -> dict[str, Any]:
        def where(r: int, c: str) -> str:
            return f"{path}: column '{c}', row {int(file_rows[r])}"

        # no copy of the features: batches are gathered from them (a copy) before they leave
        cols = arrow_columns(batch, self.modalities, self.p.names(), where, self.p.seq_len, copy=False)
        ids = cols.ids.tolist() if cols.ids is not None else [f"{path.name}:{int(r)}" for r in file_rows]
        out = {"features": cols.modalities, "masks": masks_of(cols), "ids": ids}
        if self.p.task == "multilabel" and cols.label_offsets is not None:
            # kept as lists of classes until a batch is made: a dense row is 4 * C bytes, often more than the features
            row_of = np.repeat(np.arange(len(ids)), np.diff(cols.label_offsets))
            check_class_range(cols.label, int(self.p.num_classes or 0), lambda r: where(r, self.p.label), row_of)
            return {**out, "label": cols.label, "label_offsets": cols.label_offsets}
        cols.spans = [(str(path), len(cols))]
        return {**out, "label": make_labels(cols, self.p, {})[0]}

    def iter_batches(self, batch_size: int, *, shuffle: bool, seed: int, epoch: int, rank: int = 0,
                     world_size: int = 1, drop_last: bool = False) -> Iterator[Batch]:
        """Batches of this rank's share of the split; the order depends only on ``(seed, epoch)``."""
        rng = np.random.default_rng([seed, epoch])
        order = [self.files[i] for i in rng.permutation(len(self.files))] if shuffle else list(self.files)
        block = max(self.p.shuffle_buffer if shuffle else batch_size, batch_size)
        classes = int(self.p.num_classes or 0)
        pending: list[dict[str, Any]] = []
        size = 0
        for chunk in self.chunks(order, rank, world_size):
            pending.append(chunk)
            size += len(chunk["ids"])
            if size >= block:
                rows = _concat(pending)
                idx = rng.permutation(size) if shuffle else np.arange(size)
                cut = size - size % batch_size
                yield from _batches(rows, idx[:cut], batch_size, classes)
                pending, size = ([_take(rows, idx[cut:])] if size > cut else []), size - cut  # carried over
        if size:
            rows = _concat(pending)
            idx = rng.permutation(size) if shuffle else np.arange(size)
            if drop_last:
                idx = idx[: size - size % batch_size]
            yield from _batches(rows, idx, batch_size, classes)


def _take(rows: dict[str, Any], idx: np.ndarray) -> dict[str, Any]:
    out = {"features": {m: x[idx] for m, x in rows["features"].items()},
           "masks": {m: k[idx] for m, k in rows["masks"].items()}, "ids": [rows["ids"][i] for i in idx.tolist()]}
    if "label_offsets" not in rows:
        return {**out, "label": rows["label"][idx]}
    offsets = rows["label_offsets"]
    counts = np.diff(offsets)[idx]
    new = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    src = np.repeat(offsets[idx] - new[:-1], counts) + np.arange(new[-1])
    return {**out, "label": rows["label"][src], "label_offsets": new}


def _concat(parts: list[dict[str, Any]]) -> dict[str, Any]:
    if len(parts) == 1:
        return parts[0]
    out = {"features": {m: np.concatenate([p["features"][m] for p in parts]) for m in parts[0]["features"]},
           "masks": {m: np.concatenate([p["masks"][m] for p in parts]) for m in parts[0]["masks"]},
           "label": np.concatenate([p["label"] for p in parts]), "ids": [i for p in parts for i in p["ids"]]}
    if "label_offsets" in parts[0]:
        ends = np.cumsum([p["label_offsets"][-1] for p in parts])
        out["label_offsets"] = np.concatenate([[0], *(p["label_offsets"][1:] + e - p["label_offsets"][-1]
                                                      for p, e in zip(parts, ends))]).astype(np.int64)
    return out


def _batches(rows: dict[str, Any], order: np.ndarray, batch_size: int, num_classes: int) -> Iterator[Batch]:
    for a in range(0, len(order), batch_size):
        part = _take(rows, order[a : a + batch_size])
        label = part["label"]
        if "label_offsets" in part:  # multi-hot rows [B, C], made here
            label = np.zeros((len(part["ids"]), num_classes), np.float32)
            label[np.repeat(np.arange(len(part["ids"])), np.diff(part["label_offsets"])), part["label"]] = 1.0
        yield {"features": {m: torch.from_numpy(x) for m, x in part["features"].items()},
               "masks": {m: torch.from_numpy(k) for m, k in part["masks"].items()},
               "label": torch.from_numpy(label), "ids": part["ids"]}


def scan_labels(source: Source, p: FeaturesParams) -> tuple[dict[str, int], Columns]:
    """One pass over the label and split columns: rows per split and every label (as ``Columns``)."""
    names = p.names()
    counts = dict.fromkeys(("train", "valid", "test"), 0)
    labels: list[Columns] = []
    for path in source.files:
        columns = [names.label] + ([] if path in source.split_of else [names.split])
        start = 0
        for batch in iter_arrow(path, columns, 65536):
            for s in counts:
                if path in source.split_of:  # a DatasetDict folder: the file's folder is its split
                    counts[s] += batch.num_rows if _split_name(source.split_of[path]) == s else 0
                else:
                    counts[s] += len(_split_filter(batch, names.split, s))
            # the label column alone (not the split strings: a Python string per row would be the scan's
            # largest cost in memory)
            label, offsets = arrow_label(batch.column(names.label), names.label,
                                         lambda r, c, path=path, start=start: f"{path}: column '{c}', row {start + r}")
            labels.append(Columns({}, {}, label, offsets, spans=[(str(path), batch.num_rows)]))
            start += batch.num_rows
    return counts, concat_columns(labels)


def _check_streamable(source: Source, p: FeaturesParams, columns: list[str], modalities: dict[str, Any]) -> None:
    if source.format != "arrow":
        raise ConfigError(f"config key 'data.streaming': streams Parquet/Arrow files; {p.paths()[0]} is {source.format} "
                          f"(set streaming: false)")
    if p.split not in columns and not source.split_of:
        raise ConfigError(f"config key 'data.streaming': needs a split column ('{p.split}': train/valid/test) in "
                          f"{source.files[0]}; a seeded split by group needs the whole table (streaming: false)")
    if p.normalize:
        raise ConfigError("config key 'data.normalize': streaming reads the table once per epoch and cannot z-score "
                          "it with training statistics first; set normalize: false")
    if p.seq_len is None and any(kind == "sequence" for kind, _ in modalities.values()):
        raise ConfigError("config key 'data.seq_len': a streamed sequence column needs a fixed length (the longest "
                          "sequence is not known before reading everything)")


def open_streams(p: FeaturesParams) -> tuple[dict[str, FeatureStream], TaskSpec]:
    """Every split of a streamed table (possibly empty) and the task, after the label/split scan."""
    from .features_table import _pick_modalities

    source = find_source(p.paths())
    info = arrow_schema_info(source, p.names()) if source.format == "arrow" else {"columns": [], "modalities": {}}
    _check_streamable(source, p, info["columns"], info["modalities"])
    modalities = _pick_modalities(p.modalities, info["modalities"], str(source.files[0]), info["columns"])
    counts, labels = scan_labels(source, p)
    _, task = make_labels(labels, p, info["meta"], dense=False)  # the task, classes and label checks over every row
    fixed = p.model_copy(update={"task": task.kind, "num_classes": task.num_classes if task.num_classes > 1 else None,
                                 "class_names": list(task.class_names) if task.class_names else None})
    return {s: FeatureStream(source.files, source.split_of, s, fixed, modalities, n) for s, n in counts.items()}, task


def build_streaming(p: FeaturesParams) -> DataBundle:
    """The splits as ``FeatureStream``s; see the module docstring."""
    splits, task = open_streams(p)
    counts = {s: len(st) for s, st in splits.items()}
    if not counts["train"] or not counts["valid"]:
        raise ConfigError(f"config key 'data.streaming': the split column of {p.paths()[0]} gives {counts['train']} "
                          f"training and {counts['valid']} validation rows; a streamed table needs both")
    sample = next(splits["train"].chunks(splits["train"].files, 0, 1))
    cols = Columns(sample["features"], {m: k.sum(1) for m, k in sample["masks"].items()}, sample["label"])
    return DataBundle(splits["train"], splits["valid"], splits["test"] if counts["test"] else None,
                      modalities=modality_specs(cols), task=task,
                      info={"source": [str(x) for x in p.paths()], "rows": counts, "splits": "split column",
                            "normalization": None, "streaming": True})
