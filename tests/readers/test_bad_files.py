"""Damaged, hand-edited and misnamed files: every reader answers with one DataError (issue #17)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from modalfuse.errors import DataError
from modalfuse.readers.csd import CsdFile, inspect_csd
from modalfuse.readers.example import encode_example
from modalfuse.readers.formats import sniff_format
from modalfuse.readers.packed import FORMAT, PackedDataset, inspect_packed
from modalfuse.readers.registry import check_input, detect, formats_read_by, inspect_files
from modalfuse.readers.tfrecord import TFRecordWriter
from modalfuse.readers.yt8m import decode_record, parse_video_records
from modalfuse.readers.yt8m_inspect import inspect_tfrecords


def _packed(path, *, offsets=(0, 2, 5), modalities='["text"]', ids=True, labels=None):
    import h5py

    n = len(offsets) - 1
    with h5py.File(path, "w") as h:
        h.attrs["format"] = FORMAT
        h.attrs["modalities"] = modalities
        h.attrs["utterance_level"] = False
        h.attrs["align_to"] = "text"
        if ids:
            h["ids"] = np.array([f"v[{i}]" for i in range(n)], dtype=object).astype("S")
        h["videos"] = np.array(["v"] * n, dtype="S")
        h["intervals"] = np.zeros((n, 2))
        h["labels"] = np.zeros((n, 1), np.float32) if labels is None else labels
        h["features/text/data"] = np.arange(10, dtype=np.float32).reshape(5, 2)
        h["features/text/offsets"] = np.array(offsets, np.int64)
    return path


def test_valid_packed_file_reads(tmp_path):
    with PackedDataset(_packed(tmp_path / "ok.h5")) as p:
        assert len(p) == 2 and p.segment(1)["text"].shape == (3, 2)


@pytest.mark.parametrize("kwargs, needle", [
    ({"offsets": (0, 4, 2)}, r"segment 1 \('v\[1\]'\) would have -2 rows"),
    ({"offsets": (0, 2, 7)}, "the data has 5 rows"),
    ({"offsets": (1, 2, 5)}, "inconsistent 'features/text/offsets'"),
    ({"modalities": "not json"}, "'modalities' should be a JSON list"),
    ({"modalities": '{"a": 1}'}, "non-empty JSON list"),
    ({"modalities": '["text", "audio"]'}, "without 'features/audio/data'"),
    ({"ids": False}, "without 'ids'"),
    ({"labels": np.zeros((3, 1), np.float32)}, "inconsistent packed dataset"),
])
def test_inconsistent_packed_files_are_refused(tmp_path, kwargs, needle):
    path = _packed(tmp_path / "bad.h5", **kwargs)
    with pytest.raises(DataError, match=needle):
        PackedDataset(path)
    with pytest.raises(DataError):
        inspect_packed([str(path)], out=io.StringIO())


def test_truncated_hdf5_is_named_as_such(tmp_path):
    good = _packed(tmp_path / "ok.h5").read_bytes()
    path = tmp_path / "cut.h5"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="truncated HDF5 file"):
        sniff_format(path)
    with pytest.raises(DataError, match="truncated HDF5 file"):
        PackedDataset(path)
    with pytest.raises(DataError, match="truncated HDF5 file"):
        CsdFile(path)


def test_directory_and_missing_files(tmp_path):
    for fn in (detect, CsdFile, PackedDataset):
        with pytest.raises(DataError, match="is a directory"):
            fn(tmp_path)
        with pytest.raises(DataError, match="file not found"):
            fn(tmp_path / "nope")


def test_damaged_csd_contents(tmp_path):
    import h5py

    path = tmp_path / "x.csd"
    with h5py.File(path, "w") as h:
        h["seq/data/v1/features"] = np.zeros((2, 3), np.float32)
        h["seq/data/v1/intervals"] = np.zeros((3, 2))  # 3 intervals for 2 rows
        h["seq/data/v2/features"] = np.array([b"a", b"b"])  # strings, not numbers
        h["seq/data/v2/intervals"] = np.zeros((2, 2))
        h["seq/data/v3/features"] = np.zeros((2, 3), np.float32)  # no intervals
        h["seq/metadata/root name"] = "seq"
    with CsdFile(path) as seq:
        with pytest.raises(DataError, match="expected intervals \\[n, 2\\] matching"):
            seq.read("v1")
        with pytest.raises(DataError, match="expected numeric"):
            seq.read("v2")
        with pytest.raises(DataError, match="expected datasets 'features' and 'intervals'"):
            seq.read("v3")
    with pytest.raises(DataError):
        inspect_csd([str(path)], out=io.StringIO())


def test_inspect_jsonl_never_writes_bare_nan(tmp_path):
    import h5py

    path = tmp_path / "nan.csd"
    with h5py.File(path, "w") as h:
        h["seq/data/v1/features"] = np.array([[np.nan], [1.0]], np.float32)
        h["seq/data/v1/intervals"] = np.array([[np.nan, 1.0], [1.0, np.inf]])
    buf = io.StringIO()
    inspect_csd([str(path)], jsonl=True, out=buf)
    assert "NaN" not in buf.getvalue() and "Infinity" not in buf.getvalue()
    row = json.loads(buf.getvalue())
    assert row["start"] is None and row["end"] is None and row["nonfinite"] == 1

    shard = tmp_path / "nan.tfrecord"
    with TFRecordWriter(shard) as w:
        w.write(encode_example({"id": b"ab", "labels": np.array([1]),
                                "mean_rgb": np.array([np.nan, np.inf, 1.0], np.float32)}))
    buf = io.StringIO()
    inspect_tfrecords([str(shard)], jsonl=True, out=buf)
    assert json.loads(buf.getvalue())["features"]["mean_rgb"] == [None, None, 1.0]

    packed = _packed(tmp_path / "p.h5", labels=np.array([[np.nan], [1.0]], np.float32))
    buf = io.StringIO()
    inspect_packed([str(packed)], jsonl=True, out=buf)
    assert "NaN" not in buf.getvalue() and json.loads(buf.getvalue().splitlines()[0])["label"] is None


def test_both_tfrecord_parsers_agree_on_non_utf8_feature_names(tmp_path):
    rec = encode_example({"id": b"ab", "labels": np.array([3]), "mean_rgb": np.ones(4, np.float32)})
    bad = rec.replace(b"mean_rgb", b"mean\xffrgb")
    assert bad != rec
    general = decode_record(bad)
    batch = parse_video_records(bad, np.array([0]), np.array([len(bad)]))
    assert set(general.features) == set(batch.features) == {"mean\ufffdrgb"}
    np.testing.assert_array_equal(general.features["mean\ufffdrgb"][1], batch.features["mean\ufffdrgb"][0])


def test_registry_knows_what_each_dataset_reads(tmp_path):
    assert formats_read_by("yt8m") == ["tfrecord"]
    assert formats_read_by("mmsa") == ["pickle"] and formats_read_by("synthetic") == []
    packed = _packed(tmp_path / "p.h5")
    assert check_input(packed, "packed") == "packed"
    with pytest.raises(DataError, match=r"this is a modalfuse packed dataset .*'yt8m' reads a TFRecord shard"):
        check_input(packed, "yt8m")
    (tmp_path / "t.txt").write_text("plain text")
    with pytest.raises(DataError, match="unknown format"):
        inspect_files([str(tmp_path / "t.txt")], out=io.StringIO())
