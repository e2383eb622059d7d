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


# --- hostile and malformed pickles (issue #17 items 1, 3, 7) --------------------------------------

def _run_isolated(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a child: a segfault kills the child, not the test session."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_crafted_dtype_state_is_refused_not_a_segfault(tmp_path):
    class D:
        def __reduce__(self):
            return (np.dtype, ("f4", False, True), (3, "<", 20046, -1, -1, 0))

    path = tmp_path / "crash.pkl"
    path.write_bytes(pickle.dumps({"train": {"text": D(), "regression_labels": np.zeros(2, np.float32)}}, protocol=2))
    proc = _run_isolated(
        "import sys\nfrom modalfuse.readers.pickles import read_sentiment_pickle\nfrom modalfuse.errors import DataError\n"
        f"try:\n    read_sentiment_pickle({str(path)!r})\nexcept DataError as e:\n    print('refused:', e); sys.exit(0)\n"
        "sys.exit(5)")
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-500:])
    assert "dtype" in proc.stdout


def test_array_state_whose_bytes_do_not_match_its_shape_is_refused(tmp_path):
    good = pickle.dumps(np.arange(4, dtype=np.float32), protocol=2)
    # shape (4,) -> (400,): the raw bytes no longer match; numpy's own __setstate__ would read past them
    bad = good.replace(b"K\x04\x85", b"M\x90\x01\x85", 1)
    assert bad != good
    path = tmp_path / "short.pkl"
    path.write_bytes(bad)
    with pytest.raises(DataError, match="needs 1600 bytes"):
        safe_load(path)


def test_unicode_array_with_invalid_code_point_is_a_data_error(tmp_path):
    raw = pickle.dumps({"train": {"id": np.array(["ab"]), "text": np.zeros((1, 1, 2), np.float32),
                                  "regression_labels": np.zeros(1, np.float32)}}, protocol=4)
    bad = raw.replace(b"a\x00\x00\x00b\x00\x00\x00", b"a\x00\x00\x00\xff\xff\xff\x7f", 1)
    assert bad != raw
    path = tmp_path / "u.pkl"
    path.write_bytes(bad)
    with pytest.raises(DataError, match="invalid code points"):
        read_sentiment_pickle(str(path))


def _memo_bomb(levels: int = 24) -> bytes:
    # each level is a list holding the previous level twice: 2**levels leaves from a few hundred bytes
    x: list = [1.0]
    for _ in range(levels):
        x = [x, x]
    return pickle.dumps({"train": {"text": x, "regression_labels": [0.0]}}, protocol=2)


def test_memo_bomb_is_refused_fast_and_small(tmp_path):
    import resource
    import time

    path = tmp_path / "bomb.pkl"
    path.write_bytes(_memo_bomb())
    assert path.stat().st_size < 1000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(DataError, match="expand to"):
        read_sentiment_pickle(str(path))
    assert time.perf_counter() - t0 < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB


@pytest.mark.parametrize("content, needle", [
    ({"train": {"text": "hello", "regression_labels": [0.0]}}, "expected an array, found str"),
    ({"train": {"text": {"a": 1}, "regression_labels": [0.0]}}, "expected an array, found dict"),
    ({"train": {"text": [[1.0, 2.0], [3.0]], "regression_labels": [0.0, 1.0]}}, "rectangular"),
    ({"train": {"text": np.zeros((1, 2, 2)), "regression_labels": "x"}}, "regression_labels"),
    ({"train": {"text": np.zeros((1, 2, 2)), "regression_labels": 0.5}}, "regression_labels"),
    ({"train": {"text": np.zeros((2, 2, 2)), "regression_labels": [0.0, 1.0], "text_lengths": ["a", "b"]}},
     "text_lengths"),
    ({"train": {"text": np.zeros((2, 2, 2)), "regression_labels": [0.0, 1.0], "id": 3}}, "train/id"),
    ("not a dict", "expected a dict"),
])
def test_malformed_contents_are_one_data_error(tmp_path, content, needle):
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(content, protocol=4))
    with pytest.raises(DataError, match=needle):
        read_sentiment_pickle(str(path))


def test_deeply_nested_lists_are_a_data_error(tmp_path):
    x: list = [1.0]
    for _ in range(200):
        x = [x]
    path = tmp_path / "deep.pkl"
    path.write_bytes(pickle.dumps({"train": {"text": x, "regression_labels": [0.0]}}, protocol=4))
    with pytest.raises(DataError, match="nested"):
        read_sentiment_pickle(str(path))
    # 100,000 levels, written opcode by opcode (pickle itself cannot write them): EMPTY_LIST x N, APPEND x N-1
    n = 100_000
    path.write_bytes(b"\x80\x02" + b"]" * n + b"a" * (n - 1) + b".")
    with pytest.raises(DataError, match="nested too deeply"):
        safe_load(path)


def test_other_numpy_arrays_still_load_exactly(tmp_path):
    arrays = {"f2": np.arange(6, dtype=np.float16).reshape(2, 3), "be": np.arange(3, dtype=">i4"),
              "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)), "u": np.array(["é", "ab"]),
              "b": np.array([True, False]), "obj": np.array(["a", 1], dtype=object), "s": np.float32(2.5),
              "empty": np.zeros((0, 3), np.float32), "S": np.array([b"xy"])}
    for protocol in (2, 4, 5):
        path = tmp_path / f"a{protocol}.pkl"
        path.write_bytes(pickle.dumps(arrays, protocol=protocol))
        got = safe_load(path)
        for k, v in arrays.items():
            assert np.asarray(got[k]).dtype == np.asarray(v).dtype, k
            np.testing.assert_array_equal(got[k], v)


def test_huge_length_field_does_not_allocate_it(tmp_path):
    import struct
    import tracemalloc

    # BINUNICODE claiming 2 GiB, followed by 3 bytes: found by tests/fuzz (1 GB allocated before the error)
    path = tmp_path / "len.pkl"
    path.write_bytes(b"\x80\x02X" + struct.pack("<I", 2**31) + b"abc")
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="not a readable pickle"):
            safe_load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20


def test_a_length_field_longer_than_the_file_allocates_nothing(tmp_path) -> None:
    """CPython's unpickler allocates a BINBYTES buffer of the declared length before reading it: a
    5-byte file declaring 64 MB cost 64 MB (found by the fuzz test in CI). Lengths are checked first."""
    import tracemalloc

    from modalfuse.errors import DataError
    from modalfuse.readers.pickles import read_sentiment_pickle

    path = tmp_path / "short.pkl"
    path.write_bytes(b"B\x00\x00\x00\x04")  # BINBYTES, length 2**26, no data
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="expected 67108864 bytes"):
            read_sentiment_pickle(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20
