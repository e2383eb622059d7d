"""Sentiment datasets: bundled MOSI, label schemes, folds by video, context, normalisation, cleaning."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from modalfuse import plugins
from modalfuse.config import entry_params, validate_entry
from modalfuse.datasets.folds import assign_splits
from modalfuse.datasets.labels import apply_scheme
from modalfuse.errors import ConfigError
from modalfuse.registry import DATASETS


def build(name, **kw):
    plugins.load()
    section = validate_entry("data", {"name": name, **kw}, DATASETS)
    return DATASETS.get(name)(entry_params(section, DATASETS))


def test_bundled_mosi_defaults():
    b = build("mosi")
    assert {m: s.dim for m, s in b.modalities.items()} == {"audio": 73, "text": 100, "video": 100}
    assert all(s.seq_len is None for s in b.modalities.values())
    assert b.task.kind == "multiclass" and b.task.class_names == ("negative", "neutral", "positive")
    assert len(b.train) + len(b.valid) + len(b.test) == 2198
    assert b.info["videos"] == {"train": 56, "valid": 6, "test": 31}
    videos = {s: {i.split("[")[0] for i in getattr(b, s).ids} for s in ("train", "valid", "test")}
    assert not (videos["train"] & videos["valid"]) and not (videos["train"] & videos["test"])
    x = b.train.features["text"]
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-4)  # z-scored with train statistics
    assert b.train.labels.dtype == np.int64


def test_mosi_context_and_regression():
    b = build("mosi", context=2, label_scheme="regression")
    assert b.modalities["text"].seq_len == 5 and b.task.kind == "regression"
    s = b.train[0]
    assert s["features"]["audio"].shape == (5, 73) and s["masks"]["audio"].tolist()[2] is True
    assert s["masks"]["audio"][:2].tolist() == [False, False]  # the video's first segment
    assert b.train.labels.dtype == np.float32


def test_mosi_standard_folds_non0():
    b = build("mosi", folds="standard-mosi", label_scheme="2class_non0")
    assert b.info["videos"] == {"train": 52, "valid": 10, "test": 31}
    assert b.info["dropped_by_label_scheme"] > 0 and set(np.unique(b.train.labels)) == {0, 1}


def test_unknown_key_is_an_error():
    with pytest.raises(ConfigError, match="label_shceme"):
        build("mosi", label_shceme="3class")


@pytest.mark.parametrize(
    "scheme, expected",
    [
        ("2class_has0", [0, 0, 1, 1, 1, 1, 1]),
        ("3class", [0, 0, 1, 2, 2, 2, 2]),
        ("5class", [0, 1, 2, 2, 4, 4, 4]),  # 0.5 -> 0 and 1.5 -> 2: half to even
        ("7class", [0, 2, 3, 3, 5, 5, 6]),
    ],
)
def test_label_schemes(scheme, expected):
    scores = np.array([-3.0, -1.2, 0.0, 0.5, 1.5, 2.4, 3.0])
    labels, keep = apply_scheme(scores, scheme)
    assert labels.tolist() == expected and keep.all()


def test_non0_and_neutral_band():
    scores = np.array([-0.4, 0.0, 0.2, 1.0])
    labels, keep = apply_scheme(scores, "2class_non0")
    assert keep.tolist() == [True, False, True, True] and labels.tolist() == [0, 1, 1]
    labels, _ = apply_scheme(scores, "3class", neutral_band=0.5)
    assert labels.tolist() == [1, 1, 1, 2]


def test_random_folds_split_by_video():
    videos = [f"v{i // 3}" for i in range(60)]
    idx = assign_splits(videos, "random", valid_fraction=0.2, test_fraction=0.2, seed=3)
    owner = {}
    for split, ix in idx.items():
        for i in ix:
            assert owner.setdefault(videos[i], split) == split
    assert sum(len(ix) for ix in idx.values()) == 60
    again = assign_splits(videos, "random", valid_fraction=0.2, test_fraction=0.2, seed=3)
    assert all(np.array_equal(idx[s], again[s]) for s in idx)


def test_mult_pickle_cleans_pads_and_normalises(tmp_path):
    rng = np.random.default_rng(0)
    n, t = 12, 8

    def split(offset):
        audio = rng.normal(size=(n, t, 4)).astype(np.float32)
        audio[:, :2] = 0.0  # front padding
        audio[0, 3, 1] = -np.inf
        return {"text": rng.normal(size=(n, t, 3)).astype(np.float32), "audio": audio,
                "vision": rng.normal(size=(n, t, 2)).astype(np.float32),
                "labels": rng.uniform(-3, 3, size=(n, 1, 1)).astype(np.float32),
                "id": np.array([[f"v{offset + i}", "0", "1"] for i in range(n)], dtype=object)}

    path = tmp_path / "mult.pkl"
    path.write_bytes(pickle.dumps({"train": split(0), "valid": split(100), "test": split(200)}))
    b = build("mult", path=str(path), seq_len=4, label_scheme="7class")
    assert b.modalities["audio"].seq_len == 4 and b.info["nonfinite_replaced"]["audio"] == 3  # one per split
    a = b.train.features["audio"]
    assert a.shape == (n, 4, 4) and b.train.masks["audio"].all()  # real steps moved to the front
    assert np.isfinite(a).all()
    assert len(b.valid) == n and len(b.test) == n and b.task.num_classes == 7


def _pickle_with_scores(tmp_path, scores):
    """A MulT-layout pickle whose train split carries ``scores`` (valid/test: finite scores)."""
    rng = np.random.default_rng(1)
    n = len(scores)

    def split(offset, s):
        return {"text": rng.normal(size=(n, 3, 2)).astype(np.float32),
                "audio": rng.normal(size=(n, 3, 2)).astype(np.float32),
                "vision": rng.normal(size=(n, 3, 2)).astype(np.float32),
                "labels": np.asarray(s, np.float32).reshape(n, 1, 1),
                "id": np.array([[f"v{offset + i}", "0", "1"] for i in range(n)], dtype=object)}

    path = tmp_path / "scores.pkl"
    ok = np.linspace(-3, 3, n)
    path.write_bytes(pickle.dumps({"train": split(0, scores), "valid": split(100, ok), "test": split(200, ok)}))
    return str(path)


@pytest.mark.parametrize("scheme", ["3class", "2class_non0", "5class", "7class", "regression"])
def test_nonfinite_scores_are_dropped_counted_and_named(tmp_path, caplog, scheme):
    scores = [-2.0, np.nan, 0.5, np.inf, 1.0, 3.0]
    with caplog.at_level("WARNING"):
        b = build("mult", path=_pickle_with_scores(tmp_path, scores), label_scheme=scheme)
    assert b.info["dropped_nonfinite_score"] == 2
    assert len(b.train) == 4  # no zero score among the finite ones
    assert "v1[0:1]" not in b.train.ids and "v3[0:1]" not in b.train.ids  # MulT ids: video[start:end]
    assert np.isfinite(np.asarray(b.train.labels, np.float64)).all()
    assert "2 segments with a non-finite sentiment score dropped: v1[0:1], v3[0:1]" in caplog.text


def test_scores_outside_the_scale_are_refused_naming_the_segment(tmp_path):
    from modalfuse.errors import DataError

    with pytest.raises(DataError, match=r"segment 'v2\[0:1\]': sentiment score 4.5 is outside \[-3, 3\]"):
        build("mult", path=_pickle_with_scores(tmp_path, [-2.0, 0.5, 4.5, 1.0]))
