"""``modalfuse prepare features``: the bundled datasets written as Parquet feature tables.

What the ``features`` dataset reads, made from data modalfuse already knows, so that the same
preset on the same records gives the same metrics from either format (tests/features):

- ``yt8m``: YouTube-8M video-level TFRecord shards -> one Parquet file per shard (same stem), rows in
  record order: ``id``, ``rgb`` and ``audio`` (fixed-size float32 lists, grouped as the ``yt8m``
  dataset groups its features: ``mean_*``, with ``std_*`` appended when present), ``label`` (a list
  of class ids) and ``split``; each file's schema metadata holds ``num_classes`` (3862), the folder's
  ``_common_metadata`` the class names too.
  Default splits: the sample bundled with the package.
- ``mosi-words``: the ``mosi-words`` dataset (GloVe word sequences of the CMU-MOSI transcripts and
  Poria's audio/video vectors, before normalisation) -> one file, rows in split order (train, valid,
  test as the dataset makes them): ``id``, ``text`` (a list of word vectors, real words only),
  ``audio``, ``video``, ``label`` (the sentiment score), ``split`` and ``group`` (the video).

Each file is written under a temporary name and renamed when complete; finished files are kept on a
re-run (an interrupted conversion resumes).

How the files are written is chosen for read speed (bench/features_read.py measured each choice):
feature columns (lists) are stored plain, without dictionary encoding or compression (the
features are floats with hardly a repeated value: Snappy saved 0.1 % of their bytes and dictionary
pages grew the files by a quarter, both at a cost on every read), and the YouTube-8M class names
(64 KB) go once into the folder's ``_common_metadata`` (the Parquet convention for a dataset's
schema) instead of every file's footer, which the reader parses again for each file every epoch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..readers.feature_files import COMMON_METADATA, META_KEY, require_pyarrow
from ..training.runfolder import atomic_write

SOURCES = ("yt8m", "mosi-words")


def _write(path: Path, table: Any) -> None:
    """``table`` as Parquet: list (feature) columns plain, the others dictionary-encoded and Snappy."""
    import pyarrow.parquet as pq

    from ..readers.feature_files import column_kind

    plain = {f.name for f in table.schema if column_kind(f.type)}
    rest = [c for c in table.column_names if c not in plain]
    compression = {c: "none" if c in plain else "snappy" for c in table.column_names}
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, use_dictionary=rest, compression=compression))


def _write_common_metadata(folder: Path, first: Path, meta: dict[str, Any]) -> None:
    """``folder/_common_metadata``: the files' schema with ``meta`` (what every file would repeat)."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(first).with_metadata({META_KEY: json.dumps(meta)})
    atomic_write(folder / COMMON_METADATA, lambda tmp: pq.write_metadata(schema, tmp))


def _vectors(x: np.ndarray) -> Any:
    pa = require_pyarrow()
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(x, np.float32).reshape(-1)), x.shape[1])


def yt8m_meta(path: str, num_classes: int) -> dict[str, Any]:
    """The task hints each file carries (the class names go to ``_common_metadata``)."""
    return {"num_classes": num_classes, "task": "multilabel", "source": f"modalfuse prepare features yt8m: {path}"}


def yt8m_table(path: str, split: str, features: dict[str, int], groups: dict[str, list[str]],
               num_classes: int) -> Any:
    """One TFRecord shard as an Arrow table (see the module docstring)."""
    from ..readers.yt8m import read_video_shard

    pa = require_pyarrow()
    batch = read_video_shard(path, features=features, id_key="auto")
    cols = {"id": pa.array(batch.ids)}
    for m, names in groups.items():
        cols[m] = _vectors(np.concatenate([batch.features[f] for f in names], axis=1))
    cols["label"] = pa.ListArray.from_arrays(pa.array(batch.label_offsets.astype(np.int32)),
                                             pa.array(batch.label_values.astype(np.int64)))
    cols["split"] = pa.array([split] * len(batch))
    return pa.table(cols).replace_schema_metadata({META_KEY: json.dumps(yt8m_meta(path, num_classes))})


def prepare_yt8m(out: Path, splits: dict[str, list[str] | str]) -> dict[str, Any]:
    """Every shard of ``splits`` (``{"train": files or "bundled", ...}``) as ``out/<stem>.parquet``, and
    ``out/_common_metadata`` with the class names."""
    from ..datasets.yt8m import _detect_features, _files, _modalities
    from ..readers.vocabulary import load_bundled_vocabulary

    files = {s: _files(spec, s) for s, spec in splits.items() if spec}
    features = _detect_features(files["train"], "auto", False)
    groups = _modalities(features)
    names = load_bundled_vocabulary()
    written = skipped = 0
    seen: set[str] = set()
    for split, paths in files.items():
        for path in paths:
            target = out / (Path(path).name.removesuffix(".tfrecord") + ".parquet")
            if target.name in seen:
                raise UserError(f"{path}: two input shards would both be written as {target}")
            seen.add(target.name)
            if target.is_file():
                skipped += 1
                continue
            _write(target, yt8m_table(path, split, features, groups, 3862))
            written += 1
    first = out / (Path(files["train"][0]).name.removesuffix(".tfrecord") + ".parquet")
    common = {**yt8m_meta(str(Path(files["train"][0]).parent), 3862),
              **({"class_names": list(names)} if len(names) == 3862 else {})}
    _write_common_metadata(out, first, common)
    return {"out": str(out), "written": written, "kept": skipped, "modalities": {m: sum(features[f] for f in fs)
                                                                                  for m, fs in groups.items()}}


def prepare_mosi_words(out: Path) -> dict[str, Any]:
    """The ``mosi-words`` dataset (not normalised) as ``out/mosi_words.parquet``."""
    from ..datasets import build_data

    pa = require_pyarrow()
    target = out / "mosi_words.parquet"
    if target.is_file():
        return {"out": str(target), "written": 0, "kept": 1}
    bundle = build_data({"name": "mosi-words", "label_scheme": "regression", "normalize": False})
    parts = {"train": bundle.train, "valid": bundle.valid, "test": bundle.test}
    ids = [i for ds in parts.values() for i in ds.ids]
    cols: dict[str, Any] = {"id": pa.array(ids)}
    for m in sorted(bundle.modalities):
        x = np.concatenate([ds.features[m] for ds in parts.values()])
        if x.ndim == 3:  # real steps only: the reader pads them again
            mask = np.concatenate([ds.masks[m] for ds in parts.values()])
            offsets = np.concatenate([[0], np.cumsum(mask.sum(1))]).astype(np.int32)
            cols[m] = pa.ListArray.from_arrays(pa.array(offsets), _vectors(x[mask]))
        else:
            cols[m] = _vectors(x)
    cols["label"] = pa.array(np.concatenate([ds.labels for ds in parts.values()]).astype(np.float32))
    cols["split"] = pa.array([s for s, ds in parts.items() for _ in ds.ids])
    cols["group"] = pa.array([i.rsplit("[", 1)[0] for i in ids])
    meta = {"task": "regression", "source": "modalfuse prepare features mosi-words (label: sentiment in [-3, 3])"}
    _write(target, pa.table(cols).replace_schema_metadata({META_KEY: json.dumps(meta)}))
    return {"out": str(target), "written": 1, "kept": 0, "rows": len(ids)}


def prepare_features(source: str, out: str, *, train: list[str] | None = None, valid: list[str] | None = None,
                     test: list[str] | None = None) -> dict[str, Any]:
    """Write ``source`` (``yt8m`` or ``mosi-words``) as Parquet under the folder ``out``.

    Raises:
        UserError: an unknown source, or split files given for ``mosi-words``.
    """
    if source not in SOURCES:
        raise UserError(f"prepare features {source!r}: expected one of {', '.join(SOURCES)}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    if source == "mosi-words":
        if train or valid or test:
            raise UserError("prepare features mosi-words: writes the bundled data; --train/--valid/--test are for yt8m")
        return prepare_mosi_words(folder)
    splits: dict[str, Any] = {"train": train or "bundled", "valid": valid or ("bundled" if not train else None),
                              "test": test or ("bundled" if not train else None)}
    return prepare_yt8m(folder, splits)
