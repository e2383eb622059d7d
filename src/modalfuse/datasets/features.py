"""Your own features as a dataset (``data.name: features``): Parquet, Arrow, NumPy or HDF5 tables.

One row per example; one column per modality (a vector ``[D]`` or a sequence ``[T, D]``, padded to
``seq_len`` with a mask as the sentiment datasets are), a label column and optional ``id``, ``split``
and ``group`` columns. The formats and their layouts are in ``readers/feature_files.py`` and
``readers/feature_arrays.py``; docs/own_data.md shows them with examples.

- **task** (``data.task: auto``) from the label column: an int or string class -> ``multiclass``, a
  list of ints (or a ``[N, C]`` 0/1 array) -> ``multilabel``, a float -> ``regression``. The class
  count is ``data.num_classes``, else the one ``prepare features`` stored in the file, else the
  number of class names, else the largest class + 1.
- **splits** from the split column (``train``, ``valid``/``validation``, ``test``; validation is
  carved from train by group when there is none), else a seeded split by the group column (each
  row its own group without one): no group is in two splits.
- **checks**: a missing column, vectors of mixed length, a null, NaN or +-inf, a label out of range
  and a repeated id are errors naming the file, the column and the row.
- ``normalize: true`` z-scores each feature with the training split's statistics (real steps only).
- ``streaming: true`` reads Parquet/Arrow files batch by batch each epoch (``features_stream.py``).
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import DataError
from ..registry import DATASETS
from .base import ArrayDataset, DataBundle
from .features_table import (FeaturesParams, check_ids, make_labels, masks_of, modality_specs, multi_hot_rows, read_table,
                             split_rows)

log = logging.getLogger(__name__)


@DATASETS.register("features", params=FeaturesParams, task="features",
                   description="your own features: Parquet/Arrow/Feather (save_to_disk folders), NumPy .npy/.npz, HDF5")
def build_features(p: FeaturesParams) -> DataBundle:
    """Build the splits; see ``FeaturesParams``. ``info`` holds the source, rows per split and how the
    splits were made, and the normalisation statistics when ``normalize`` is on."""
    if p.streaming:
        from .features_stream import build_streaming

        return build_streaming(p)
    cols, meta = read_table(p)
    # lists of classes stay lists until each split is made: a dense table of every row, gathered into
    # the splits, copied 4 * C bytes a row twice (bench/features_read.py, in memory)
    labels, task = make_labels(cols, p, meta, dense=False)
    sparse = task.kind == "multilabel" and cols.label_offsets is not None
    ids = check_ids(cols, p.id)
    index, how = split_rows(cols, p)
    masks = masks_of(cols)
    stats = None
    if p.normalize:
        from .sentiment import _normalize  # the same z-scores (and their info format) as the sentiment datasets

        stats = _normalize(cols.modalities, masks, index["train"])

    def split(ix: np.ndarray) -> ArrayDataset:
        y = multi_hot_rows(labels, cols.label_offsets, ix, task.num_classes) if sparse else labels[ix]
        return ArrayDataset({m: x[ix] for m, x in cols.modalities.items()}, y, [ids[i] for i in ix],
                            {m: k[ix] for m, k in masks.items()})

    rows = {s: int(len(ix)) for s, ix in index.items()}
    if not rows["valid"]:
        raise DataError(f"{p.paths()[0]}: the validation split is empty ({rows['train']} training rows); "
                        f"raise data.valid_fraction or add validation rows")
    log.info("features: %s rows (train/valid/test %d/%d/%d), task %s", len(cols), rows["train"], rows["valid"],
             rows["test"], task.kind)
    return DataBundle(
        split(index["train"]), split(index["valid"]), split(index["test"]) if rows["test"] else None,
        modalities=modality_specs(cols), task=task,
        info={"source": [str(x) for x in p.paths()], "rows": rows, "splits": how, "normalization": stats,
              "streaming": False},
    )
