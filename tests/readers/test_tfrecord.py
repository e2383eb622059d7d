"""TFRecord framing, Example parsing (fast and general parsers agree), errors and ``inspect``."""

from __future__ import annotations

import io
import json
import struct
from importlib import resources

import numpy as np
import pytest

from modalfuse.errors import DataError
from modalfuse.readers.example import encode_example, encode_sequence_example
from modalfuse.readers.tfrecord import ReadStats, TFRecordWriter, masked_crc, read_records
from modalfuse.readers.yt8m import decode_record, dequantize, read_video_shard, read_video_shards
from modalfuse.readers.yt8m_inspect import inspect_tfrecords

BUNDLED = resources.files("modalfuse") / "data_files" / "yt8m"


def _write(path, payloads):
    with TFRecordWriter(path) as w:
        for p in payloads:
            w.write(p)


def test_masked_crc_known_value():
    # TensorFlow's crc32c masking of b"" and of a known string (from TF's own tests' definition)
    import crc32c

    raw = crc32c.crc32c(b"hello")
    assert masked_crc(b"hello") == ((((raw >> 15) | (raw << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def test_roundtrip_and_crc_errors(tmp_path):
    path = tmp_path / "a.tfrecord"
    payloads = [b"first", b"", b"third record"]
    _write(path, payloads)
    assert list(read_records(path)) == payloads
    data = bytearray(path.read_bytes())
    second = 16 + len(payloads[0])  # byte offset of the second record
    third = second + 16
    data[third + 12] ^= 1  # corrupt the third record's payload
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"a\.tfrecord: corrupt record at byte offset {third}: data CRC mismatch"):
        list(read_records(path))
    stats = ReadStats()
    assert list(read_records(path, skip_corrupt=True, stats=stats)) == payloads[:2]
    assert stats.skipped == 1 and stats.records == 2


def test_bad_length_crc_resyncs_and_truncation(tmp_path):
    path = tmp_path / "b.tfrecord"
    _write(path, [b"aaaa", b"bbbb", b"cccc"])
    data = bytearray(path.read_bytes())
    data[0] ^= 0x40  # the first length is now wrong and its CRC does not match
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="byte offset 0: length CRC mismatch"):
        list(read_records(path))
    stats = ReadStats()
    assert list(read_records(path, skip_corrupt=True, stats=stats)) == [b"bbbb", b"cccc"]
    assert stats.skipped == 1
    good = tmp_path / "c.tfrecord"
    _write(good, [b"aaaa", b"bbbb"])
    good.write_bytes(good.read_bytes()[:-3])
    with pytest.raises(DataError, match=r"c\.tfrecord: corrupt record at byte offset 20: truncated record"):
        list(read_records(good))


def test_bundled_shards_fast_parser_equals_general_parser():
    path = str(BUNDLED / "validate0000.tfrecord")
    batch = read_video_shard(path)
    records = [decode_record(d, path=path, index=i) for i, d in enumerate(read_records(path))]
    assert len(batch) == len(records) == 284
    for i, rec in enumerate(records):
        assert batch.ids[i] == rec.id
        assert batch.labels(i).tolist() == rec.labels.tolist()
        for name, (kind, values) in rec.features.items():
            assert kind == "float"
            np.testing.assert_array_equal(batch.features[name][i], values)
    both = read_video_shards([path, str(BUNDLED / "validate0001.tfrecord")])
    assert both.ids[:284] == batch.ids and len(both) == 284 + len(read_video_shard(str(BUNDLED / "validate0001.tfrecord")))
    hot = batch.multi_hot(3862)
    assert hot.shape == (284, 3862) and hot.sum() == len(batch.label_values)


def _records_in_many_layouts():
    rng = np.random.default_rng(0)
    recs = []
    for i in range(40):
        feats = {"id": f"v{i:03d}", "labels": rng.choice(4000, size=rng.integers(0, 90), replace=False),
                 "mean_rgb": rng.standard_normal(1024).astype(np.float32),
                 "mean_audio": rng.standard_normal(128).astype(np.float32)}
        order = list(feats)
        rng.shuffle(order)  # map entries in any order
        recs.append((feats, encode_example({k: feats[k] for k in order})))
    return recs


def test_layouts_other_than_the_first_record_parse_the_same(tmp_path):
    recs = _records_in_many_layouts()
    # hand-made unpacked float encoding (legal protobuf, never written by TF): goes to the general parser
    feats0 = recs[0][0]
    path = tmp_path / "mixed.tfrecord"
    _write(path, [r for _, r in recs])
    batch = read_video_shard(str(path), features={"mean_rgb": 1024, "mean_audio": 128})
    for i, (feats, _) in enumerate(recs):
        assert batch.ids[i] == feats["id"]
        assert sorted(batch.labels(i).tolist()) == sorted(np.asarray(feats["labels"]).tolist())
        np.testing.assert_array_equal(batch.features["mean_rgb"][i], feats["mean_rgb"])
        np.testing.assert_array_equal(batch.features["mean_audio"][i], feats["mean_audio"])
    assert feats0["id"] == "v000"


def test_unpacked_lists_and_2017_video_id(tmp_path):
    def field(number, wire, payload):
        return bytes([(number << 3) | wire]) + payload

    def ld(number, data):
        n, out = len(data), bytearray()
        while n >= 0x80:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
        return field(number, 2, bytes(out) + data)

    floats = b"".join(field(1, 5, struct.pack("<f", v)) for v in (1.5, -2.0))  # unpacked floats
    ints = field(1, 0, bytes([7])) + field(1, 0, bytes([9]))  # unpacked int64
    entries = [("video_id", ld(1, ld(1, b"abc"))), ("labels", ld(3, ints)), ("mean_rgb", ld(2, floats))]
    example = ld(1, b"".join(ld(1, ld(1, k.encode()) + ld(2, v)) for k, v in entries))
    path = tmp_path / "old.tfrecord"
    _write(path, [example, encode_example({"video_id": "xyz", "labels": np.array([1]),
                                           "mean_rgb": np.array([3.0, 4.0], np.float32)})])
    batch = read_video_shard(str(path))
    assert batch.ids == ["abc", "xyz"]
    assert batch.labels(0).tolist() == [7, 9]
    np.testing.assert_array_equal(batch.features["mean_rgb"], [[1.5, -2.0], [3.0, 4.0]])


def test_wrong_feature_size_names_file_record_and_feature(tmp_path):
    path = tmp_path / "bad.tfrecord"
    good = {"id": "ok01", "labels": np.array([1]), "mean_rgb": np.zeros(1024, np.float32),
            "mean_audio": np.zeros(128, np.float32)}
    bad = dict(good, id="bad2", mean_audio=np.zeros(100, np.float32))
    _write(path, [encode_example(good), encode_example(bad)])
    with pytest.raises(DataError, match=r"bad\.tfrecord: record id 'bad2': feature 'mean_audio' has 100 values, "
                                        r"expected 128"):
        read_video_shard(str(path), features={"mean_rgb": 1024, "mean_audio": 128})
    with pytest.raises(DataError, match=r"label 3862 is outside"):
        _write(path, [encode_example(dict(good, labels=np.array([3862])))])
        read_video_shard(str(path)).multi_hot(3862)


def test_sequence_example_frames_dequantized(tmp_path):
    q = np.array([[0, 255, 128], [1, 2, 3]], np.uint8)
    data = encode_sequence_example({"id": "f1", "labels": np.array([5, 6])}, {"rgb": [row.tobytes() for row in q]})
    rec = decode_record(data)
    assert rec.id == "f1" and rec.labels.tolist() == [5, 6]
    np.testing.assert_array_equal(rec.frames["rgb"], q)
    np.testing.assert_allclose(dequantize(q)[0], [-2 + 4 / 512, 2 + 4 / 512, 128 * 4 / 255 - 2 + 4 / 512], atol=1e-6)  # float32


def test_inspect_jsonl_and_summary(shared_data):
    frame = str(shared_data / "yt8m" / "frame" / "frame0100.tfrecord")
    out = io.StringIO()
    inspect_tfrecords([frame], jsonl=True, limit=2, out=out)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(lines) == 2
    expected = json.loads((shared_data / "yt8m" / "frame" / "expected_mf_std.json").read_text())[lines[0]["id"]]
    rgb = np.array(lines[0]["features"]["rgb"])
    assert rgb.shape == (expected["num_frames"], 1024)
    np.testing.assert_allclose(rgb.mean(0), expected["mean_rgb"], atol=1e-5)
    assert lines[0]["labels"] == expected["labels"]

    out = io.StringIO()
    inspect_tfrecords([str(BUNDLED / "validate0032.tfrecord")], out=out)
    text = out.getvalue()
    assert "282 records" in text and "mean_rgb" in text and "1024" in text
    assert "Game" in text  # the most frequent label, named from the bundled vocabulary


def test_vocabulary_csv_with_commas_and_newlines(tmp_path):
    from modalfuse.readers.vocabulary import load_bundled_vocabulary, load_vocabulary

    path = tmp_path / "v.csv"
    path.write_text('Index,Name,WikiDescription\n0,"Cars, trucks","line one\nline, two"\n2,Dog,x\n')
    assert load_vocabulary(path) == ["Cars, trucks", "", "Dog"]
    names = load_bundled_vocabulary()
    assert len(names) == 3862 and names[0] == "Game"
    path.write_text("Idx,Name\n0,a\n")
    with pytest.raises(DataError, match="missing Index"):
        load_vocabulary(path)
