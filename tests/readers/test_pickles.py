"""Restricted unpickler and the MMSA / MulT layouts."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from modalfuse.errors import DataError
from modalfuse.readers.formats import sniff_format
from modalfuse.readers.pickles import read_sentiment_pickle, safe_load


class Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def evil_pickle(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"train": {"text": Evil(str(marker))}}, protocol=4))
    return path, marker


def test_loader_refuses_code_and_runs_nothing(evil_pickle):
    path, marker = evil_pickle
    with pytest.raises(DataError, match=r"refused to unpickle.*(posix|os)\.system"):
        safe_load(path)
    with pytest.raises(DataError, match="refused"):
        read_sentiment_pickle(str(path))
    assert not marker.exists()


def test_cli_inspect_exits_2_and_runs_nothing(evil_pickle):
    path, marker = evil_pickle
    proc = subprocess.run([sys.executable, "-m", "modalfuse", "inspect", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "refused" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists()


def _mmsa(n=4, t=6):
    rng = np.random.default_rng(0)
    split = {
        "text": rng.normal(size=(n, t, 5)).astype(np.float32),
        "audio": rng.normal(size=(n, t, 3)).astype(np.float32),
        "vision": rng.normal(size=(n, t, 2)).astype(np.float32),
        "audio_lengths": [t, 2, 3, 1],
        "regression_labels": np.array([0.0, -1.4, 2.2, 0.6], np.float32),
        "id": np.array([f"vid{i % 2}$_${i}" for i in range(n)], dtype=object),
        "raw_text": ["a", "b", "c", "d"],
    }
    return {"train": split, "valid": split, "test": split}


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_mmsa_layout(tmp_path, protocol):
    path = tmp_path / "aligned_50.pkl"
    path.write_bytes(pickle.dumps(_mmsa(), protocol=protocol))
    assert sniff_format(path) == "pickle"
    d = read_sentiment_pickle(str(path))
    assert set(d) == {"train", "valid", "test"}
    tr = d["train"]
    assert set(tr["features"]) == {"text", "audio", "video"}
    assert tr["ids"][1] == "vid1[1]" and tr["videos"][1] == "vid1"
    assert tr["masks"]["audio"].sum(1).tolist() == [6, 2, 3, 1]
    np.testing.assert_allclose(tr["scores"], [0.0, -1.4, 2.2, 0.6], rtol=1e-6)


def test_mult_layout_front_padding(tmp_path):
    x = np.zeros((2, 5, 3), np.float32)
    x[0, 3:] = 1.0  # MulT pads in front
    x[1, 1:] = 2.0
    split = {"text": x, "audio": x, "vision": x, "labels": np.array([[[1.0]], [[-2.0]]], np.float32),
             "id": np.array([["v", "0.5", "1.5"], ["w", "2", "3"]], dtype=object)}
    path = tmp_path / "mosei_senti_data.pkl"
    path.write_bytes(pickle.dumps({"train": split, "valid": split, "test": split}))
    d = read_sentiment_pickle(str(path), "mult")["train"]
    assert d["ids"] == ["v[0.5:1.5]", "w[2:3]"] and d["videos"] == ["v", "w"]
    assert d["masks"]["video"].sum(1).tolist() == [2, 4]
    assert d["scores"].tolist() == [1.0, -2.0]


def test_missing_labels_names_the_key(tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps({"train": {"text": np.zeros((1, 2, 3))}}))
    with pytest.raises(DataError, match="'train' has no 'labels'"):
        read_sentiment_pickle(str(path), "mult")
