"""The .csd reader and format sniffing."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from modalfuse.errors import DataError
from modalfuse.readers.csd import CsdFile, inspect_csd
from modalfuse.readers.formats import sniff_format


def test_reads_fixture_lazily(shared_data):
    path = shared_data / "csd_fixture" / "covarep.csd"
    with CsdFile(path) as seq:
        assert seq.root == "covarep" and len(seq.videos()) == 12 and seq.dim == 74
        iv, ft = seq.read(seq.videos()[0])
        assert iv.shape == (len(ft), 2) and ft.shape[1] == 74
        assert seq.metadata["root name"] == "covarep"
        with pytest.raises(DataError, match="video 'nope' not found"):
            seq.read("nope")


def test_inspect_jsonl(shared_data):
    buf = io.StringIO()
    inspect_csd([str(shared_data / "mosi" / "CMU_MOSI_Opinion_Labels.csd")], jsonl=True, limit=3, out=buf)
    rows = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert len(rows) == 3 and rows[0]["dim"] == 1 and rows[0]["rows"] > 0


def test_sniff(shared_data, tmp_path):
    assert sniff_format(shared_data / "csd_fixture" / "glove.csd") == "csd"
    assert sniff_format(shared_data / "yt8m" / "video" / "validate0000.tfrecord") == "tfrecord"
    (tmp_path / "t.txt").write_text("hello world, not data")
    assert sniff_format(tmp_path / "t.txt") is None


def test_not_a_csd(tmp_path):
    import h5py

    with h5py.File(tmp_path / "x.h5", "w") as h:
        h["a"] = np.zeros(3)
        h["b"] = np.zeros(3)
    with pytest.raises(DataError, match="expected one root group"):
        CsdFile(tmp_path / "x.h5")
    assert sniff_format(tmp_path / "x.h5") is None
