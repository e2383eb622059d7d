"""The ``features`` dataset: every format gives the same arrays; task, splits and bad tables."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from modalfuse.datasets import build_data  # noqa: E402
from modalfuse.errors import ConfigError, DataError  # noqa: E402

from .tables import FORMATS, arrays, arrow_table, write  # noqa: E402


def _bundle(path, **keys):
    return build_data({"name": "features", "path": str(path), **keys})


def _all_rows(bundle):
    """Every split's rows by id: (image, words padded, mask, label)."""
    out = {}
    for ds in (bundle.train, bundle.valid, bundle.test):
        for i, rid in enumerate(ds.ids):
            out[rid] = (ds.features["image"][i], ds.features["words"][i], ds.masks["words"][i], ds.labels[i])
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_gives_the_same_rows_padded_with_masks(fmt, tmp_path):
    a = arrays()
    bundle = _bundle(write(fmt, tmp_path, a))
    assert bundle.task.kind == "multiclass" and bundle.task.num_classes == 3
    assert bundle.modalities["image"].dim == 6 and bundle.modalities["image"].seq_len is None
    assert bundle.modalities["words"].dim == 4 and bundle.modalities["words"].seq_len == 5
    rows = _all_rows(bundle)
    assert len(rows) == len(a["label"])
    for i, rid in enumerate(a["id"]):
        image, words, mask, label = rows[str(rid)]
        np.testing.assert_array_equal(image, a["image"][i])
        np.testing.assert_array_equal(words, a["words"][i])
        assert mask.sum() == a["words_lengths"][i] and mask[: a["words_lengths"][i]].all()
        assert label == a["label"][i]


def test_save_to_disk_folders_give_the_splits(tmp_path):
    bundle = _bundle(write("save_to_disk", tmp_path))
    assert (len(bundle.train), len(bundle.valid), len(bundle.test)) == (40, 10, 10)
    assert bundle.valid.ids[0] == "r040" and bundle.test.ids[0] == "r050"


def test_seeded_split_keeps_each_group_in_one_split(tmp_path):
    path = write("parquet", tmp_path)
    b1, b2 = _bundle(path, seed=3), _bundle(path, seed=3)
    groups = {}
    for name in ("train", "valid", "test"):
        ids = b1.split(name).ids
        assert ids == b2.split(name).ids  # seeded: the same split twice
        for rid in ids:
            groups.setdefault(f"g{int(rid[1:]) // 3}", set()).add(name)
    assert all(len(s) == 1 for s in groups.values())
    assert _bundle(path, seed=4).train.ids != b1.train.ids


def test_split_column_is_used_and_validation_is_carved_by_group(tmp_path):
    import pyarrow.parquet as pq

    a = arrays()
    split = ["test" if i >= 48 else "train" for i in range(len(a["label"]))]
    pq.write_table(arrow_table(a, split=split), tmp_path / "t.parquet")
    b = _bundle(tmp_path / "t.parquet", valid_fraction=0.25)
    assert b.test.ids == [f"r{i:03d}" for i in range(48, 60)]
    assert len(b.valid) > 0 and not set(b.valid.ids) & set(b.train.ids)
    valid_groups = {int(r[1:]) // 3 for r in b.valid.ids}
    assert not valid_groups & {int(r[1:]) // 3 for r in b.train.ids}


@pytest.mark.parametrize(("label", "kind", "classes"), [
    (["cat", "dog", "cat", "emu"] * 15, "multiclass", 3),
    ([[0, 2], [1], [], [3]] * 15, "multilabel", 4),
    ([0.5, -1.25, 2.0, 0.0] * 15, "regression", 1),
])
def test_task_is_inferred_from_the_label_column(tmp_path, label, kind, classes):
    import pyarrow.parquet as pq

    t = arrow_table(arrays()).drop_columns(["label"]).append_column("label", __import__("pyarrow").array(label))
    pq.write_table(t, tmp_path / "t.parquet")
    b = _bundle(tmp_path / "t.parquet")
    assert (b.task.kind, b.task.num_classes) == (kind, classes)
    if kind == "multiclass":
        assert b.task.class_names == ("cat", "dog", "emu")
    if kind == "multilabel":
        row = b.train.ids.index("r000") if "r000" in b.train.ids else None
        if row is not None:
            np.testing.assert_array_equal(b.train.labels[row], [1, 0, 1, 0])


def test_task_can_be_overridden(tmp_path):
    path = write("parquet", tmp_path)
    b = _bundle(path, task="regression")
    assert b.task.kind == "regression" and b.train.labels.dtype == np.float32
    assert _bundle(path, num_classes=5).task.num_classes == 5
    with pytest.raises(ConfigError, match="multilabel needs a list"):
        _bundle(path, task="multilabel")


def _parquet_with(tmp_path, **changes):
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = arrow_table(arrays())
    for name, values in changes.items():
        t = t.drop_columns([name]) if values is None else t.set_column(t.schema.get_field_index(name), name,
                                                                        pa.array(values))
    pq.write_table(t, tmp_path / "bad.parquet")
    return tmp_path / "bad.parquet"


def _vectors(bad_row=None, value=None, length=None):
    rows = [list(np.ones(6, np.float32)) for _ in range(60)]
    if bad_row is not None:
        rows[bad_row] = [value] * (length or 6)
    return rows


@pytest.mark.parametrize(("changes", "message"), [
    ({"label": None}, r"bad.parquet: the label column 'label' is missing"),
    ({"image": _vectors(7, 1.0, 5)}, r"bad.parquet: column 'image', row 7: vector of 5 values, expected 6"),
    ({"image": _vectors(9, float("nan"))}, r"bad.parquet: column 'image', row 9: NaN"),
    ({"id": [f"r{i}" for i in range(59)] + ["r3"]}, r"bad.parquet: column 'id', row 59: id 'r3' repeats row 3"),
])
def test_bad_tables_name_the_file_column_and_row(tmp_path, changes, message):
    with pytest.raises(DataError, match=message):
        _bundle(_parquet_with(tmp_path, **changes))


def test_label_out_of_range_and_missing_modality(tmp_path):
    path = write("parquet", tmp_path)
    with pytest.raises(DataError, match=r"table.parquet: column 'label', row \d+: class 2 is out of range, expected 0 to 1"):
        _bundle(path, num_classes=2)
    with pytest.raises(DataError, match=r"table.parquet: column 'audio' \(data.modalities\) is missing"):
        _bundle(path, modalities=["audio", "image"])


def test_numpy_errors_name_the_column_file(tmp_path):
    a = arrays()
    a["image"][11, 2] = np.inf
    folder = write("numpy", tmp_path, a)
    with pytest.raises(DataError, match=r"image.npy: column 'image', row 11: NaN or infinite"):
        _bundle(folder)
    a = arrays()
    a["label"][4] = 7
    with pytest.raises(DataError, match=r"label.npy: column 'label', row 4: class 7 is out of range"):
        _bundle(write("numpy", tmp_path / "b", a), num_classes=3)


def test_cli_reports_a_bad_table_in_one_line(tmp_path, capsys):
    from modalfuse.cli import main

    path = _parquet_with(tmp_path, image=_vectors(7, 1.0, 5))
    assert main(["init", str(path), "--out", str(tmp_path / "c.yaml")]) == 0  # init reads schemas only
    code = main(["train", str(tmp_path / "c-train.yaml"), "--set", "train.epochs=1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "bad.parquet: column 'image', row 7" in err and "Traceback" not in err


def test_a_datasets_classlabel_names_the_classes(tmp_path):
    import json

    import pyarrow.parquet as pq

    t = arrow_table(arrays())
    hf = {"info": {"features": {"label": {"names": ["neg", "neu", "pos"], "_type": "ClassLabel"}}}}
    pq.write_table(t.replace_schema_metadata({b"huggingface": json.dumps(hf)}), tmp_path / "t.parquet")
    assert _bundle(tmp_path / "t.parquet").task.class_names == ("neg", "neu", "pos")


def test_multi_hot_rows_are_the_dense_rows_of_the_asked_rows():
    from modalfuse.datasets.features_table import multi_hot_rows

    lists = [[2], [0, 3], [], [1, 2, 3], [3]]
    offsets = np.cumsum([0, *map(len, lists)])
    values = np.asarray([c for row in lists for c in row], np.int64)
    dense = np.zeros((len(lists), 4), np.float32)
    for r, row in enumerate(lists):
        dense[r, row] = 1.0
    for rows in ([3, 0, 1], [2], [4, 4, 0], []):
        np.testing.assert_array_equal(multi_hot_rows(values, offsets, np.asarray(rows, np.int64), 4),
                                      dense[np.asarray(rows, np.int64)].reshape(len(rows), 4))


def test_a_corrupt_page_in_one_of_many_files_names_that_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    for k in range(3):
        n = 40
        x = np.arange(n * 4, dtype=np.float32).reshape(n, 4)
        table = pa.table({"x": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 4),
                          "label": pa.array(np.arange(n) % 2), "split": pa.array(["train", "valid"] * (n // 2))})
        pq.write_table(table, tmp_path / f"part{k}.parquet")
    bad = tmp_path / "part1.parquet"
    data = bad.read_bytes()
    bad.write_bytes(data[:4] + b"x" * 60 + data[64:])  # the first page header: not a thrift struct any more
    with pytest.raises(DataError, match=r"part1\.parquet: cannot read"):
        _bundle(tmp_path)
