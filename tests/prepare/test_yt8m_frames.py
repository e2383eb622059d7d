"""``prepare yt8m-frames`` on the real frame-level shards matches the reference MF+STD to 1e-5."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from modalfuse.errors import DataError
from modalfuse.prepare.yt8m_frames import prepare_yt8m_frames
from modalfuse.readers.yt8m import read_video_shard


def _check_against_expected(out_dir, expected):
    seen = {}
    for path in sorted(out_dir.glob("*.tfrecord")):
        batch = read_video_shard(str(path))
        assert set(batch.features) == {"mean_rgb", "std_rgb", "mean_audio", "std_audio"}
        for i, vid in enumerate(batch.ids):
            seen[vid] = (batch.labels(i), {k: v[i] for k, v in batch.features.items()})
    assert set(seen) == set(expected)
    for vid, ref in expected.items():
        labels, feats = seen[vid]
        assert labels.tolist() == ref["labels"]
        for name in ("mean_rgb", "std_rgb", "mean_audio", "std_audio"):
            np.testing.assert_allclose(feats[name], np.array(ref[name]), atol=1e-5, rtol=0, err_msg=f"{vid} {name}")


def test_matches_expected_mf_std(shared_data, tmp_path):
    frame_dir = shared_data / "yt8m" / "frame"
    expected = json.loads((frame_dir / "expected_mf_std.json").read_text())
    out = tmp_path / "out"
    summary = prepare_yt8m_frames([str(frame_dir / "*.tfrecord")], str(out), workers=2)
    assert summary["records"] == len(expected) == 24
    assert summary["converted"] == 2 and summary["skipped_corrupt"] == 0
    # only the shards (and the hidden lock file of the folder): no temporaries left behind
    assert sorted(p.name for p in out.iterdir() if p.name != ".lock") == ["frame0100.tfrecord", "frame0101.tfrecord"]
    _check_against_expected(out, expected)


def test_resumes_and_never_counts_temporary_files(shared_data, tmp_path):
    frame_dir = shared_data / "yt8m" / "frame"
    out = tmp_path / "out"
    prepare_yt8m_frames([str(frame_dir / "frame0100.tfrecord"), str(frame_dir / "frame0101.tfrecord")], str(out))
    again = prepare_yt8m_frames([str(frame_dir / "*.tfrecord")], str(out))
    assert again["already_done"] == 2 and again["converted"] == 0
    (out / "frame0101.tfrecord").unlink()
    (out / ".frame0101.tfrecord.99999.tmp").write_bytes(b"half-written")  # an interrupted earlier run
    third = prepare_yt8m_frames([str(frame_dir / "*.tfrecord")], str(out))
    assert third["already_done"] == 1 and third["converted"] == 1
    assert not (out / ".frame0101.tfrecord.99999.tmp").exists()
    _check_against_expected(out, json.loads((frame_dir / "expected_mf_std.json").read_text()))


def test_corrupt_record_fails_with_offset_or_is_skipped(shared_data, tmp_path):
    src = tmp_path / "in" / "frame0100.tfrecord"
    src.parent.mkdir()
    shutil.copy(shared_data / "yt8m" / "frame" / "frame0100.tfrecord", src)
    data = bytearray(src.read_bytes())
    data[100] ^= 0xFF  # inside the first record's payload: its data CRC no longer matches
    src.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"frame0100\.tfrecord: corrupt record at byte offset 0: data CRC mismatch"):
        prepare_yt8m_frames([str(src)], str(tmp_path / "out"))
    assert not (tmp_path / "out" / "frame0100.tfrecord").exists()  # no half-written output
    summary = prepare_yt8m_frames([str(src)], str(tmp_path / "out"), skip_corrupt=True)
    assert summary["skipped_corrupt"] == 1 and summary["records"] == 11


def test_cli_prepare(shared_data, tmp_path, capsys):
    from modalfuse.cli import main

    frame = shared_data / "yt8m" / "frame" / "frame0100.tfrecord"
    assert main(["prepare", "yt8m-frames", str(frame), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "frame0100.tfrecord").is_file()
    assert main(["prepare", "yt8m-frames", str(tmp_path / "missing*.tfrecord"), "--out", str(tmp_path / "o")]) == 2
    assert "no file matches" in capsys.readouterr().err
