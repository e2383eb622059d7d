"""Bad input through the command line: one line on stderr, exit 2, no traceback (issue #17 item 7)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from modalfuse.cli import main

SHARD = str(resources.files("modalfuse") / "data_files" / "yt8m" / "validate0033.tfrecord")


def _one_line_exit_2(capsys, *argv: str) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_directory_given_as_a_file(capsys, tmp_path):
    err = _one_line_exit_2(capsys, "inspect", str(tmp_path))
    assert f"{tmp_path}: is a directory" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_input(capsys, tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps({"train": {}}))
    path.chmod(0)
    err = _one_line_exit_2(capsys, "inspect", str(path))
    assert "permission denied" in err


def test_os_errors_escaping_a_command_are_one_line(capsys, monkeypatch):
    import modalfuse.cli as cli

    def denied(args):
        raise PermissionError(13, "Permission denied", "/some/out/file")

    monkeypatch.setitem(cli.COMMANDS, "inspect", denied)
    err = _one_line_exit_2(capsys, "inspect", "x")
    assert "/some/out/file: permission denied" in err


def test_a_library_error_let_through_by_a_reader_is_one_line(capsys, monkeypatch):
    import modalfuse.readers.registry as registry

    def broken(path):  # a reader bug: a raw library exception
        raise KeyError("unable to open object (bad heap)")

    monkeypatch.setattr(registry, "sniff_format", broken)
    err = _one_line_exit_2(capsys, "inspect", SHARD)
    assert "could not read the input (KeyError" in err
    # elsewhere a bug keeps its traceback
    import modalfuse.cli as cli

    monkeypatch.setitem(cli.COMMANDS, "inspect", lambda args: {}["x"])
    with pytest.raises(KeyError):
        main(["inspect", SHARD])


def test_non_utf8_yaml_and_duplicate_keys(capsys, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"data: {name: synthetic}\nmodel: {name: fusion}  # \xff\n")
    assert "not UTF-8" in _one_line_exit_2(capsys, "train", str(path), "--out", str(tmp_path / "runs"))
    path.write_text("data: {name: synthetic}\ndata: {name: synthetic}\nmodel: {name: fusion}\n")
    assert "duplicate key 'data'" in _one_line_exit_2(capsys, "train", str(path), "--out", str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_inspect_into_a_closed_pipe_prints_no_traceback():
    # `modalfuse inspect --jsonl SHARD | head -1`: head exits after one line
    proc = subprocess.run(f"{sys.executable} -m modalfuse inspect --jsonl {SHARD} | head -c 100 >/dev/null",
                          shell=True, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_predict_on_the_wrong_kind_of_file_and_repeated_ids(capsys, tmp_path):
    from modalfuse.readers.example import encode_example
    from modalfuse.readers.tfrecord import TFRecordWriter
    from modalfuse.training.run import train

    run = train({"data": {"name": "yt8m"},
                 "model": {"name": "fusion", "encoder": {"name": "identity"}, "head": {"name": "mlp", "hidden_dims": [4]}},
                 "train": {"epochs": 1, "batch_size": 256, "progress": "none", "threads": 1},
                 "eval": {"splits": ["valid"]}}, run_dir=tmp_path / "run", quiet=True)
    pkl = tmp_path / "x.pkl"
    pkl.write_bytes(pickle.dumps({"train": {}}))
    out = str(tmp_path / "p.csv")
    err = _one_line_exit_2(capsys, "predict", str(run), "--input", str(pkl), "--out", out)
    assert "this is an MMSA or MulT sentiment pickle" in err and "'yt8m' reads a TFRecord shard" in err
    shard = tmp_path / "dup.tfrecord"
    rec = encode_example({"id": b"abcd", "labels": np.array([1]), "mean_rgb": np.zeros(1024, np.float32),
                          "mean_audio": np.zeros(128, np.float32)})
    with TFRecordWriter(shard) as w:
        w.write(rec)
        w.write(rec)
    err = _one_line_exit_2(capsys, "predict", str(run), "--input", str(shard), "--out", out)
    assert "id 'abcd' occurs more than once" in err
    assert not Path(out).exists()
