"""The same preset on the same records in the same order gives the same metrics (within 1e-6) from the
native format and from the Parquet tables ``prepare features`` writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

pytest.importorskip("pyarrow")

from modalfuse.datasets import build_data  # noqa: E402
from modalfuse.prepare.features import prepare_features  # noqa: E402
from modalfuse.training.run import train  # noqa: E402

MODEL = {"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [32], "dropout": 0.1},
         "fusion": {"name": "concat"}, "head": {"name": "mlp", "hidden_dims": [32], "dropout": 0.1}}


def _metrics(tmp_path, name, data, train_keys):
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump({"data": data, "model": MODEL,
                                   "train": {"epochs": 2, "batch_size": 64, "progress": "none", "seed": 3,
                                             "threads": 1, **train_keys}}))
    run = train(str(cfg), out=str(tmp_path / f"run-{name}"))
    return json.loads((run / "metrics.json").read_text())


def _assert_same(a, b):
    assert set(a) == set(b) and a
    for split in a:
        for key, value in a[split].items():
            if isinstance(value, float):
                assert b[split][key] == pytest.approx(value, abs=1e-6, nan_ok=True), (split, key)


@pytest.mark.slow
def test_yt8m_from_tfrecord_and_from_parquet(tmp_path):
    folder = tmp_path / "yt8m"
    summary = prepare_features("yt8m", str(folder))
    assert summary["written"] == 6 and summary["modalities"] == {"rgb": 1024, "audio": 128}
    import pyarrow.parquet as pq

    files = sorted(folder.glob("*.parquet"))
    assert b"class_names" not in pq.read_schema(files[0]).metadata[b"modalfuse"]  # once, in _common_metadata
    chunk = pq.ParquetFile(files[0]).metadata.row_group(0)
    rgb = next(chunk.column(i) for i in range(chunk.num_columns) if chunk.column(i).path_in_schema.startswith("rgb"))
    assert rgb.compression == "UNCOMPRESSED" and "RLE_DICTIONARY" not in rgb.encodings
    native = build_data({"name": "yt8m"})
    table = build_data({"name": "features", "path": str(folder)})
    assert table.task == native.task  # multilabel, 3862 classes, the vocabulary, from the file's metadata
    for split in ("train", "valid", "test"):
        a, b = native.split(split), table.split(split)
        assert a.ids == b.ids
        for m in ("audio", "rgb"):
            np.testing.assert_array_equal(a.features[m], b.features[m])
        np.testing.assert_array_equal(a.labels, b.labels)
    keys = {"loss": "bce", "monitor": "gap"}
    _assert_same(_metrics(tmp_path, "tfrecord", {"name": "yt8m"}, keys),
                 _metrics(tmp_path, "parquet", {"name": "features", "path": str(folder)}, keys))
    assert prepare_features("yt8m", str(folder))["kept"] == 6  # a re-run keeps finished files


@pytest.mark.slow
def test_mosi_words_from_the_bundle_and_from_parquet(tmp_path):
    prepare_features("mosi-words", str(tmp_path / "mosi"))
    path = str(tmp_path / "mosi" / "mosi_words.parquet")
    native_data = {"name": "mosi-words", "label_scheme": "regression"}
    table_data = {"name": "features", "path": path, "normalize": True, "seq_len": 50}
    native, table = build_data(native_data), build_data(table_data)
    assert native.modalities == table.modalities and table.task.kind == "regression"
    for split in ("train", "valid", "test"):
        a, b = native.split(split), table.split(split)
        assert a.ids == b.ids
        for m in ("audio", "text", "video"):
            np.testing.assert_array_equal(a.features[m], b.features[m])
        np.testing.assert_array_equal(a.masks["text"], b.masks["text"])
        np.testing.assert_array_equal(a.labels, b.labels)
    _assert_same(_metrics(tmp_path, "bundle", native_data, {}), _metrics(tmp_path, "parquet", table_data, {}))
