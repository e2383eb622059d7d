"""``features`` with ``streaming: true``: the same rows as in memory, every row once per epoch, split
between torchrun ranks by file or by row, and clear errors for what it cannot stream."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from modalfuse.datasets import build_data  # noqa: E402
from modalfuse.datasets.loader import eval_batches, train_batches  # noqa: E402
from modalfuse.errors import ConfigError  # noqa: E402

from .tables import arrays, arrow_table, write  # noqa: E402


@pytest.fixture
def folder(tmp_path):
    """200 rows in 4 Parquet files, split column 140/30/30 (train rows in every file)."""
    import pyarrow.parquet as pq

    a = arrays(200)
    split = (["train"] * 35 + ["valid"] * 8 + ["test"] * 7) * 4
    for k in range(4):
        part = {key: v[k * 50 : (k + 1) * 50] for key, v in a.items()}
        pq.write_table(arrow_table(part, split=split[k * 50 : (k + 1) * 50]), tmp_path / f"part{k}.parquet")
    return tmp_path


def _ids(batches):
    return [i for b in batches for i in b["ids"]]


def test_stream_gives_the_in_memory_rows_in_order(folder):
    mem = build_data({"name": "features", "path": str(folder)})
    st = build_data({"name": "features", "path": str(folder), "streaming": True, "seq_len": 5, "shuffle_buffer": 32})
    assert (len(st.train), len(st.valid), len(st.test)) == (140, 32, 28)
    assert st.modalities == mem.modalities and st.task == mem.task
    batches = list(eval_batches(st.valid, 8))
    assert _ids(batches) == mem.valid.ids
    np.testing.assert_array_equal(np.concatenate([b["features"]["words"].numpy() for b in batches]),
                                  mem.valid.features["words"])
    np.testing.assert_array_equal(np.concatenate([b["masks"]["words"].numpy() for b in batches]), mem.valid.masks["words"])
    np.testing.assert_array_equal(np.concatenate([b["label"].numpy() for b in batches]), mem.valid.labels)


def test_every_training_row_once_per_epoch_in_a_seeded_order(folder):
    st = build_data({"name": "features", "path": str(folder), "streaming": True, "seq_len": 5, "shuffle_buffer": 32})
    e0 = _ids(train_batches(st.train, 16, seed=0, epoch=0))
    assert sorted(e0) == sorted(set(e0)) and len(e0) == 140
    assert e0 == _ids(train_batches(st.train, 16, seed=0, epoch=0))  # resumable: the order is (seed, epoch)'s
    assert e0 != _ids(train_batches(st.train, 16, seed=0, epoch=1))
    assert e0[16:] == _ids(train_batches(st.train, 16, seed=0, epoch=0, start_step=1))


@pytest.mark.parametrize(("shard_by", "by_file"), [("record", False), ("file", True), ("auto", False)])
def test_ranks_share_the_rows_without_overlap(folder, shard_by, by_file):
    st = build_data({"name": "features", "path": str(folder), "streaming": True, "seq_len": 5, "shard_by": shard_by})
    assert st.train.by_file(2) == by_file
    ranks = [_ids(st.train.iter_batches(16, shuffle=True, seed=1, epoch=0, rank=r, world_size=2)) for r in (0, 1)]
    assert not set(ranks[0]) & set(ranks[1])
    assert sorted(ranks[0] + ranks[1]) == sorted(build_data({"name": "features", "path": str(folder)}).train.ids)


@pytest.mark.parametrize(("keys", "message"), [
    ({"normalize": True}, "data.normalize"),
    ({}, "data.seq_len"),
])
def test_what_cannot_be_streamed_is_a_config_error(folder, keys, message):
    with pytest.raises(ConfigError, match=message):
        build_data({"name": "features", "path": str(folder), "streaming": True, **keys})


def test_streaming_needs_a_split_column_and_arrow_files(tmp_path):
    with pytest.raises(ConfigError, match="needs a split column"):
        build_data({"name": "features", "path": str(write("parquet", tmp_path / "a")), "streaming": True, "seq_len": 5})
    with pytest.raises(ConfigError, match="streams Parquet/Arrow files"):
        build_data({"name": "features", "path": str(write("npz", tmp_path / "b")), "streaming": True, "seq_len": 5})


def test_save_to_disk_folder_streams_by_its_split_folders(tmp_path):
    st = build_data({"name": "features", "path": str(write("save_to_disk", tmp_path)), "streaming": True,
                     "seq_len": 5})
    assert (len(st.train), len(st.valid), len(st.test)) == (40, 10, 10)
    assert _ids(eval_batches(st.test, 4)) == [f"r{i:03d}" for i in range(50, 60)]


@pytest.mark.slow
def test_a_streamed_table_trains(folder, tmp_path):
    from modalfuse.training.run import train

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"""data: {{name: features, path: {folder}, streaming: true, seq_len: 5, shuffle_buffer: 64}}
model: {{name: fusion, encoder: {{name: mlp, hidden_dims: [8]}}, fusion: {{name: concat}}, head: {{name: mlp, hidden_dims: [8]}}}}
train: {{epochs: 2, batch_size: 32, progress: none}}
""")
    run = train(str(cfg), out=str(tmp_path / "run"))
    import json

    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["test"]["accuracy"] <= 1
