"""Tiny feature tables written in every format the ``features`` dataset reads (shared by the tests)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

N = 60


def arrays(n: int = N, seed: int = 0) -> dict[str, np.ndarray]:
    """A table whose label depends on both modalities: ``image`` [n, 6] vectors, ``words`` [n, 5, 4]
    sequences with 1..5 real steps, int labels in 0..2, ids, groups of 3 rows."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 6, n)
    words = rng.standard_normal((n, 5, 4)).astype(np.float32)
    words[np.arange(5)[None, :] >= lengths[:, None]] = 0.0
    image = rng.standard_normal((n, 6)).astype(np.float32)
    label = ((image[:, 0] > 0).astype(int) + (words[:, 0, 0] > 0).astype(int)).astype(np.int64)
    return {"image": image, "words": words, "words_lengths": lengths, "label": label,
            "id": np.asarray([f"r{i:03d}" for i in range(n)]), "group": np.asarray([f"g{i // 3}" for i in range(n)])}


def arrow_table(a: dict[str, np.ndarray], **extra: list) -> object:
    import pyarrow as pa

    words = [a["words"][i, : a["words_lengths"][i]].tolist() for i in range(len(a["label"]))]
    cols = {"image": pa.array(list(a["image"]), type=pa.list_(pa.float32(), a["image"].shape[1])),
            "words": pa.array(words, type=pa.list_(pa.list_(pa.float32()))),
            "label": pa.array(a["label"]), "id": pa.array(a["id"].tolist()), "group": pa.array(a["group"].tolist())}
    cols.update({k: pa.array(v) for k, v in extra.items()})
    return pa.table(cols)


def write(fmt: str, folder: Path, a: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``a`` (default ``arrays()``) as ``fmt``; returns the path to give ``data.path``."""
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    a = a if a is not None else arrays()
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        pq.write_table(arrow_table(a), folder / "table.parquet")
        return folder / "table.parquet"
    if fmt == "feather":
        feather.write_feather(arrow_table(a), folder / "table.feather")
        return folder / "table.feather"
    if fmt == "save_to_disk":  # the layout of datasets.DatasetDict.save_to_disk: IPC *streams* per split
        n = len(a["label"])
        table = arrow_table(a)
        parts = {"train": table.slice(0, n - 20), "validation": table.slice(n - 20, 10), "test": table.slice(n - 10)}
        for split, part in parts.items():
            (folder / split).mkdir(exist_ok=True)
            with pa.ipc.new_stream(folder / split / "data-00000-of-00001.arrow", part.schema) as w:
                w.write_table(part)
            (folder / split / "state.json").write_text("{}")
        (folder / "dataset_dict.json").write_text(json.dumps({"splits": list(parts)}))
        return folder
    if fmt == "numpy":
        for k, v in a.items():
            np.save(folder / f"{k}.npy", v)
        return folder
    if fmt == "npz":
        np.savez(folder / "table.npz", **a)
        return folder / "table.npz"
    if fmt == "hdf5":
        with h5py.File(folder / "table.h5", "w") as h5:
            for k, v in a.items():
                h5[k] = v.astype("S") if v.dtype.kind == "U" else v
        return folder / "table.h5"
    raise ValueError(fmt)


FORMATS = ("parquet", "feather", "save_to_disk", "numpy", "npz", "hdf5")
