"""prepare cmu-sdk: SDK-identical alignment on the fixture, real MOSI, atomic output, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from modalfuse.errors import UserError
from modalfuse.prepare.cmu_sdk import prepare_cmu_sdk
from modalfuse.readers.csd_align import align_video
from modalfuse.readers.packed import PackedDataset, inspect_packed

MOSI = {"text": "CMU_MOSI_TextCNN.csd", "audio": "CMU_MOSI_openSMILE.csd", "video": "CMU_MOSI_3DCNN.csd"}


def test_fixture_matches_sdk_reference(shared_data, tmp_path):
    d = shared_data / "csd_fixture"
    out = tmp_path / "fixture.h5"
    summary = prepare_cmu_sdk(
        {m: str(d / f"{m}.csd") for m in ("glove", "covarep", "facet")},
        str(d / "labels.csd"), "glove", str(out), progress=False,
    )
    expected = np.load(d / "expected_aligned.npz")
    segments = sorted({k.rsplit("/", 1)[0] for k in expected.files})
    with PackedDataset(out) as p:
        assert sorted(p.ids) == segments
        assert summary["segments"] == len(segments)
        for i, sid in enumerate(p.ids):
            seg = p.segment(i)
            for m in ("glove", "covarep", "facet"):
                assert seg[m].shape == expected[f"{sid}/{m}"].shape, (sid, m)
                np.testing.assert_allclose(seg[m], expected[f"{sid}/{m}"], atol=1e-5, rtol=0)
            np.testing.assert_allclose(p.labels[i], expected[f"{sid}/label"].ravel(), atol=1e-6)


def test_real_mosi_utterance_level(shared_data, tmp_path):
    d = shared_data / "mosi"
    out = tmp_path / "mosi.h5"
    summary = prepare_cmu_sdk({m: str(d / f) for m, f in MOSI.items()},
                              str(d / "CMU_MOSI_Opinion_Labels.csd"), "labels", str(out), progress=False)
    assert summary["segments"] == 2198 and summary["dropped"]["short_segment"] == 1
    with h5py.File(d / "CMU_MOSI_Opinion_Labels.csd", "r") as h:
        data = h[list(h.keys())[0]]["data"]
        truth = {f"{v}[{k}]": float(x) for v in data for k, x in enumerate(data[v]["features"][:, 0])}
    with PackedDataset(out) as p:
        assert p.dims == {"text": 100, "audio": 73, "video": 100}
        assert len(p) == 2198 and len(set(p.ids)) == 2198
        assert "2WGyTLYerpo[43]" not in p.ids  # the zero-length segment
        np.testing.assert_array_equal(p.labels[:, 0], [truth[i] for i in p.ids])
        assert all(np.all(np.diff(p.offsets[m]) == 1) for m in p.modalities)
        with h5py.File(d / MOSI["audio"], "r") as h:  # features equal to the segment's own vector
            i = p.ids.index("03bSnISJMiM[2]")
            np.testing.assert_array_equal(p.vectors("audio")[i], h["CMU_MOSI_openSMILE/data/03bSnISJMiM/features"][2])


def _write_csd(path, root, videos):
    with h5py.File(path, "w") as h:
        h.create_group(f"{root}/metadata")
        for v, (iv, ft) in videos.items():
            h[f"{root}/data/{v}/intervals"] = np.asarray(iv, np.float64)
            h[f"{root}/data/{v}/features"] = np.asarray(ft, np.float32)


def test_align_semantics_epsilon_inf_and_missing():
    words = (np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 2.0005], [3.0, 4.0]]), np.arange(4.0)[:, None])
    # frames: [0.9995, 1.5] overlaps word 0 by 0.0005 s (<= eps: ignored) and word 1; -inf propagates.
    frames = (np.array([[0.0, 0.5], [0.5, 0.9995], [0.9995, 1.5], [1.5, 2.0]]),
              np.array([[1.0], [3.0], [-np.inf], [5.0]], np.float32))
    labels = (np.array([[0.0, 2.5], [3.0, 3.0]]), np.array([[1.5], [0.0]]))
    r = align_video({"w": words, "f": frames}, labels, "w")
    assert r["segments"].tolist() == [0] and r["short"] == 1  # [3, 3] is shorter than eps
    rows, lengths = r["features"]["f"]
    assert lengths.tolist() == [2]  # words 0 and 1 (word 2 is shorter than eps, word 3 has no frame)
    assert rows[0, 0] == pytest.approx(2.0) and rows[1, 0] == -np.inf


def test_prepare_is_atomic_and_rejects_bad_input(tmp_path):
    _write_csd(tmp_path / "a.csd", "a", {"v1": ([[0, 1]], [[1.0]])})
    _write_csd(tmp_path / "lab.csd", "lab", {"v1": ([[0, 1]], [[0.5]]), "v2": ([[0, 1]], [[1.0]])})
    out = tmp_path / "out.h5"
    with pytest.raises(UserError, match="--align-to 'b'"):
        prepare_cmu_sdk({"a": str(tmp_path / "a.csd")}, str(tmp_path / "lab.csd"), "b", str(out))
    s = prepare_cmu_sdk({"a": str(tmp_path / "a.csd")}, str(tmp_path / "lab.csd"), "labels", str(out), progress=False)
    assert s["segments"] == 1 and s["dropped"]["videos_not_shared"] == 1
    assert [f.name for f in tmp_path.iterdir() if "tmp" in f.name] == []
    lines = []

    class Out:
        write = lines.append

    inspect_packed([str(out)], jsonl=True, out=Out())
    assert json.loads(lines[0]) == {"id": "v1[0]", "label": 0.5, "features": {"a": [[1.0]]}}


@pytest.mark.slow
def test_cli_prepare_and_inspect_jsonl(shared_data, tmp_path):
    d = shared_data / "csd_fixture"
    out = tmp_path / "p.h5"
    cmd = [sys.executable, "-m", "modalfuse", "prepare", "cmu-sdk", "--sequences",
           *(f"{m}={d / m}.csd" for m in ("glove", "covarep", "facet")),
           "--labels", str(d / "labels.csd"), "--align-to", "glove", "--out", str(out), "--workers", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "modalfuse", "inspect", str(out), "--jsonl"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    expected = np.load(d / "expected_aligned.npz")
    assert len(records) == 45
    rec = records[7]
    np.testing.assert_allclose(rec["features"]["covarep"], expected[f"{rec['id']}/covarep"], atol=1e-5)
