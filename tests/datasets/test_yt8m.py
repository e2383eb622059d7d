"""The ``yt8m`` dataset: bundled sample, MF+STD detection, streaming exactly once across ranks."""

from __future__ import annotations

import numpy as np
import pytest

from modalfuse import plugins
from modalfuse.readers.example import encode_example
from modalfuse.readers.tfrecord import TFRecordWriter
from modalfuse.registry import DATASETS

plugins.load()
Yt8mParams = DATASETS.info("yt8m")["params"]
build = DATASETS.get("yt8m")


def test_bundled_default_builds_cached():
    bundle = build(Yt8mParams())
    assert bundle.info["records"] == {"train": 1202, "valid": 282, "test": 283}
    assert bundle.info["features"] == ["mean_rgb", "mean_audio"]
    assert bundle.modalities["rgb"].dim == 1024 and bundle.modalities["audio"].dim == 128
    assert bundle.task.kind == "multilabel" and bundle.task.num_classes == 3862
    assert bundle.task.class_names[0] == "Game"
    sample = bundle.train[0]
    assert sample["features"]["rgb"].dtype == np.float32 and sample["label"].shape == (3862,)
    assert bundle.train.labels.dtype == np.float32 and set(np.unique(bundle.train.labels)) == {0.0, 1.0}


def _write_mf_std(path, n, start=0):
    rng = np.random.default_rng(start)
    with TFRecordWriter(path) as w:
        for i in range(start, start + n):
            w.write(encode_example({
                "id": f"v{i:04d}", "labels": np.array([i % 7, 7 + i % 3]),
                "mean_rgb": rng.standard_normal(1024).astype(np.float32),
                "std_rgb": rng.random(1024).astype(np.float32),
                "mean_audio": rng.standard_normal(128).astype(np.float32),
                "std_audio": rng.random(128).astype(np.float32),
            }))


@pytest.fixture()
def mf_std_files(tmp_path):
    sizes = [37, 50, 1, 64]
    start = 0
    for k, n in enumerate(sizes):
        _write_mf_std(tmp_path / f"s{k}.tfrecord", n, start)
        start += n
    return str(tmp_path / "s*.tfrecord"), start


def test_mf_std_detected_and_concatenated(mf_std_files):
    glob_, n = mf_std_files
    bundle = build(Yt8mParams(train=glob_, valid=glob_, test=None, num_classes=10))
    assert bundle.info["features"] == ["mean_rgb", "std_rgb", "mean_audio", "std_audio"]
    assert bundle.modalities["rgb"].dim == 2048 and bundle.modalities["audio"].dim == 256
    assert len(bundle.train) == n and bundle.test is None
    explicit = build(Yt8mParams(train=glob_, valid=glob_, test=None, num_classes=10,
                                features=["mean_rgb", "mean_audio"]))
    assert explicit.modalities["rgb"].dim == 1024
    np.testing.assert_array_equal(bundle.train.features["rgb"][:, :1024], explicit.train.features["rgb"])


@pytest.mark.parametrize("world_size,shard_by", [(1, "auto"), (3, "record"), (3, "file"), (3, "auto")])
def test_streaming_sees_every_record_once_per_epoch(mf_std_files, world_size, shard_by):
    glob_, n = mf_std_files
    bundle = build(Yt8mParams(train=glob_, valid=glob_, test=None, num_classes=10, streaming=True, shuffle_buffer=40,
                              shard_by=shard_by))
    stream = bundle.train
    assert len(stream) == n
    assert stream.by_file(world_size) == (shard_by == "file")  # auto: 4 shards are too few for 3 ranks

    def epoch_ids(epoch):
        ids = []
        for rank in range(world_size):
            for batch in stream.iter_batches(16, shuffle=True, seed=3, epoch=epoch, rank=rank, world_size=world_size):
                assert batch["features"]["rgb"].shape[1] == 2048 and batch["label"].shape[1] == 10
                assert batch["features"]["rgb"].shape[0] == len(batch["ids"]) <= 16
                ids.extend(batch["ids"])
        return ids

    first = epoch_ids(0)
    assert sorted(first) == [f"v{i:04d}" for i in range(n)]  # each record exactly once
    assert epoch_ids(0) == first  # deterministic given (seed, epoch)
    assert epoch_ids(1) != first  # and reshuffled the next epoch
    ordered = [i for b in stream.iter_batches(16, shuffle=False, seed=0, epoch=0) for i in b["ids"]]
    assert ordered == [f"v{i:04d}" for i in range(n)]


def test_bad_glob_is_a_config_error(tmp_path):
    from modalfuse.errors import ConfigError

    with pytest.raises(ConfigError, match=r"data\.train.*no file matches"):
        build(Yt8mParams(train=str(tmp_path / "nothing*.tfrecord")))


@pytest.mark.parametrize("streaming", [False, True])
def test_input_norm_scales_each_video_to_unit_length(mf_std_files, streaming):
    glob_, n = mf_std_files
    raw = build(Yt8mParams(train=glob_, valid=glob_, test=None, num_classes=10))
    per = build(Yt8mParams(train=glob_, valid=glob_, test=None, num_classes=10, input_norm="l2", streaming=streaming))
    joint = build(Yt8mParams(train=glob_, valid=glob_, test=None, num_classes=10, input_norm="l2-joint",
                             streaming=streaming))
    assert per.info["input_norm"] == "l2"

    def first_batch(bundle):
        if not hasattr(bundle.train, "iter_batches"):
            return {m: v[:n] for m, v in bundle.train.features.items()}
        b = next(iter(bundle.train.iter_batches(n, shuffle=False, seed=0, epoch=0)))
        return {m: t.numpy() for m, t in b["features"].items()}

    r, p, j = first_batch(raw), first_batch(per), first_batch(joint)
    for m in ("rgb", "audio"):
        np.testing.assert_allclose(np.linalg.norm(p[m], axis=1), 1.0, rtol=1e-5)
        np.testing.assert_allclose(p[m] * np.linalg.norm(r[m], axis=1, keepdims=True), r[m], rtol=1e-4, atol=1e-6)
    total = np.sqrt(np.square(j["rgb"]).sum(1) + np.square(j["audio"]).sum(1))
    np.testing.assert_allclose(total, 1.0, rtol=1e-5)
    np.testing.assert_allclose(j["rgb"] / j["audio"][:, :1], r["rgb"] / r["audio"][:, :1], rtol=1e-3)


def test_split_by_file_reads_only_each_ranks_own_shards(mf_std_files, monkeypatch):
    from modalfuse.datasets import yt8m

    glob_, n = mf_std_files
    stream = build(Yt8mParams(train=glob_, valid=glob_, test=None, num_classes=10, streaming=True,
                              shard_by="file")).train
    read = []
    real = yt8m.read_video_shard
    monkeypatch.setattr(yt8m, "read_video_shard", lambda path, **kw: read.append(path) or real(path, **kw))
    per_rank = []
    for rank in range(2):
        read.clear()
        ids = [i for b in stream.iter_batches(8, shuffle=True, seed=1, epoch=0, rank=rank, world_size=2)
               for i in b["ids"]]
        per_rank.append((set(read), ids))
    assert per_rank[0][0].isdisjoint(per_rank[1][0]) and len(per_rank[0][0]) == len(per_rank[1][0]) == 2
    assert sorted(per_rank[0][1] + per_rank[1][1]) == [f"v{i:04d}" for i in range(n)]


# --------------------------------------------------------------------------- hardening (issue 17)


def _write(path, records):
    with TFRecordWriter(path) as w:
        for rec in records:
            w.write(encode_example(rec))


def _rec(i, rgb=1024, audio=128, value=None):
    rng = np.random.default_rng(i)
    r = rng.standard_normal(rgb).astype(np.float32)
    if value is not None:
        r[5] = value
    return {"id": f"v{i:04d}", "labels": np.array([i % 5]), "mean_rgb": r,
            "mean_audio": rng.standard_normal(audio).astype(np.float32)}


@pytest.mark.parametrize("streaming", [False, True])
def test_nonfinite_features_are_replaced_counted_and_named(tmp_path, caplog, streaming):
    from modalfuse.errors import DataError

    _write(tmp_path / "a.tfrecord", [_rec(0), _rec(1, value=np.nan), _rec(2, value=np.inf), _rec(3)])
    path = str(tmp_path / "a.tfrecord")
    with caplog.at_level("WARNING"):
        bundle = build(Yt8mParams(train=path, valid=path, test=None, num_classes=5, streaming=streaming))
        if streaming:
            feats = np.concatenate([b["features"]["rgb"].numpy() for b in
                                    bundle.train.iter_batches(4, shuffle=False, seed=0, epoch=0)])
            assert bundle.train.nonfinite == 2
        else:
            feats = bundle.train.features["rgb"]
            assert bundle.info["nonfinite_replaced"] == {"train": 2, "valid": 2}
    assert np.isfinite(feats).all() and feats[1, 5] == 0 and feats[2, 5] == 0
    assert f"{path}: 2 non-finite values of 'mean_rgb' in 2 records (first: record 1 (id 'v0001'))" in caplog.text
    with pytest.raises(DataError, match=r"a\.tfrecord: record 1 \(id 'v0001'\): feature 'mean_rgb' holds 2 non-finite"):
        bundle = build(Yt8mParams(train=path, valid=path, test=None, num_classes=5, nonfinite="error",
                                  streaming=streaming))
        list(bundle.train.iter_batches(4, shuffle=False, seed=0, epoch=0))


def _corrupt_first_record(path):
    raw = bytearray(open(path, "rb").read())
    raw[20] ^= 0xFF  # inside the first record's payload: its data CRC no longer matches
    open(path, "wb").write(bytes(raw))


def test_skip_corrupt_also_covers_the_first_record_of_the_first_train_shard(tmp_path):
    from modalfuse.errors import DataError

    _write(tmp_path / "a.tfrecord", [_rec(i) for i in range(3)])
    _corrupt_first_record(tmp_path / "a.tfrecord")
    path = str(tmp_path / "a.tfrecord")
    bundle = build(Yt8mParams(train=path, valid=path, test=None, num_classes=5, skip_corrupt=True))
    assert len(bundle.train) == 2 and bundle.info["skipped_corrupt"]["train"] == 1
    with pytest.raises(DataError, match=r"a\.tfrecord: corrupt record at byte offset 0: data CRC mismatch"):
        build(Yt8mParams(train=path, valid=path, test=None, num_classes=5))
    # a first shard without any good record: detection moves on to the next shard
    _write(tmp_path / "b.tfrecord", [_rec(7)])
    _corrupt_first_record(tmp_path / "b.tfrecord")
    glob_ = f"{tmp_path / 'b.tfrecord'},{path}"
    assert len(build(Yt8mParams(train=glob_, valid=path, test=None, num_classes=5, skip_corrupt=True)).train) == 2


def test_feature_size_mismatch_names_the_shard_that_differs(tmp_path):
    from modalfuse.errors import DataError

    _write(tmp_path / "train.tfrecord", [_rec(0, rgb=1000)])
    _write(tmp_path / "valid.tfrecord", [_rec(1)])
    with pytest.raises(DataError, match=r"train\.tfrecord: record 0 \(id 'v0000'\): feature 'mean_rgb' has 1000 "
                                        r"values, expected the official 1024"):
        build(Yt8mParams(train=str(tmp_path / "train.tfrecord"), valid=str(tmp_path / "valid.tfrecord"), test=None,
                         num_classes=5))
    _write(tmp_path / "train.tfrecord", [_rec(0)])
    _write(tmp_path / "valid.tfrecord", [_rec(1, audio=100)])
    with pytest.raises(DataError, match=r"valid\.tfrecord: record id 'v0001': feature 'mean_audio' has 100 values, "
                                        r"expected 128"):
        build(Yt8mParams(train=str(tmp_path / "train.tfrecord"), valid=str(tmp_path / "valid.tfrecord"), test=None,
                         num_classes=5))


def test_stream_length_comes_from_the_framing_headers(tmp_path, mf_std_files):
    from modalfuse.datasets.yt8m import _bundled_files, count_records
    from modalfuse.errors import DataError
    from modalfuse.readers.tfrecord import ReadStats, frames, open_buffer

    for path in _bundled_files("train"):
        stats = ReadStats()
        for _ in frames(open_buffer(path), path, stats=stats):
            pass
        assert count_records(path) == stats.records > 0
    _write(tmp_path / "a.tfrecord", [_rec(i) for i in range(3)])
    _corrupt_first_record(tmp_path / "a.tfrecord")
    assert count_records(str(tmp_path / "a.tfrecord")) == 3  # payloads are not read (nor their CRCs checked)
    raw = open(tmp_path / "a.tfrecord", "rb").read()
    (tmp_path / "cut.tfrecord").write_bytes(raw[:-10])
    size = len(raw) // 3
    with pytest.raises(DataError, match=rf"cut\.tfrecord: corrupt record at byte offset {2 * size}: truncated"):
        count_records(str(tmp_path / "cut.tfrecord"))
    # skip_corrupt falls back to the checked walk: the bad first payload and the cut tail are both skipped
    assert count_records(str(tmp_path / "cut.tfrecord"), skip_corrupt=True) == 1


def test_train_limit_takes_nested_seeded_subsets(mf_std_files):
    from modalfuse.errors import ConfigError

    glob_, n = mf_std_files

    def ids(limit, seed=0):
        p = Yt8mParams(train=glob_, valid=glob_, test=None, num_classes=10, train_limit=limit, subset_seed=seed)
        bundle = build(p)
        assert len(bundle.train) == bundle.info["records"]["train"] == (limit or n)
        return set(bundle.train.ids)

    small, mid, full = ids(20), ids(60), ids(None)
    assert small < mid < full and ids(20) == small and ids(20, seed=1) != small
    with pytest.raises(ConfigError, match=rf"data\.train_limit': at most the {n} training records, found {n + 1}"):
        ids(n + 1)
    with pytest.raises(ConfigError, match=r"data\.train_limit': needs data\.streaming: false"):
        build(Yt8mParams(train=glob_, valid=glob_, test=None, num_classes=10, train_limit=5, streaming=True))


def test_stream_length_is_estimated_from_one_shard_and_labels_are_checked(tmp_path):
    from modalfuse.datasets.yt8m import _bundled_files, _count_records, estimate_records
    from modalfuse.errors import DataError

    files = _bundled_files("train") + _bundled_files("valid") + _bundled_files("test")
    exact = _count_records(files, False)
    assert abs(estimate_records(files, False) - exact) <= 0.01 * exact
    bundle = build(Yt8mParams(streaming=True))
    assert bundle.info["records_estimated"] and abs(len(bundle.train) - 1202) <= 12
    seen = sum(len(b["ids"]) for b in bundle.train.iter_batches(256, shuffle=True, seed=0, epoch=0))
    assert seen == bundle.train.records_read == 1202  # every record is read, whatever the estimate
    _write(tmp_path / "a.tfrecord", [_rec(0), {**_rec(1), "labels": np.array([2, 9])}])
    path = str(tmp_path / "a.tfrecord")
    stream = build(Yt8mParams(train=path, valid=path, test=None, num_classes=5, streaming=True)).train
    with pytest.raises(DataError, match=r"a\.tfrecord: record id 'v0001': label 9 is outside 0\.\.4"):
        list(stream.iter_batches(2, shuffle=False, seed=0, epoch=0))


def test_statistics_split_makes_each_statistic_a_modality_for_statistic_tokens(mf_std_files, tmp_path):
    import torch

    from modalfuse.errors import ConfigError
    from modalfuse.models import build_model

    glob_, n = mf_std_files
    bundle = build(Yt8mParams(train=glob_, valid=glob_, test=None, num_classes=10, statistics="split"))
    assert {m: s.dim for m, s in bundle.modalities.items()} == {
        "mean_rgb": 1024, "std_rgb": 1024, "mean_audio": 128, "std_audio": 128}
    joined = build(Yt8mParams(train=glob_, valid=glob_, test=None, num_classes=10))
    np.testing.assert_array_equal(bundle.train.features["std_rgb"], joined.train.features["rgb"][:, 1024:])
    # mean and std of both modalities as four tokens, attending across one another
    model = build_model({"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [16]},
                         "fusion": {"name": "attend", "tokens_from": "modality", "token_dim": 8, "heads": 2}},
                        bundle.modalities, bundle.task)
    out = model({m: torch.from_numpy(v[:3]) for m, v in bundle.train.features.items()})
    assert out["logits"].shape == (3, 10) and out["attention"].shape == (3, 1, 4, 4)
    _write(tmp_path / "mf.tfrecord", [_rec(i) for i in range(3)])
    with pytest.raises(ConfigError, match=r"data.statistics.*std_\*.*mf.tfrecord has mean_rgb, mean_audio"):
        build(Yt8mParams(train=str(tmp_path / "mf.tfrecord"), valid=str(tmp_path / "mf.tfrecord"), test=None,
                         statistics="split"))
