"""Every record of the real shards in ``../shared``, parsed by modalfuse and by TensorFlow, is identical.

Reads whatever shards are there (their number has changed before). Runs only where ``tensorflow`` is
installed (``pip install tensorflow-cpu``, the ``bench`` extra)."""

from __future__ import annotations

import numpy as np
import pytest

from modalfuse.readers.yt8m import read_video_shard

tf = pytest.importorskip("tensorflow")


@pytest.mark.slow
def test_every_record_matches_tf_parse_example(shared_data):
    files = sorted(str(p) for p in (shared_data / "yt8m" / "video").glob("*.tfrecord"))
    if not files:
        pytest.skip(f"no .tfrecord shards in {shared_data / 'yt8m' / 'video'}")
    spec = {
        "id": tf.io.FixedLenFeature([], tf.string),
        "labels": tf.io.VarLenFeature(tf.int64),
        "mean_rgb": tf.io.FixedLenFeature([1024], tf.float32),
        "mean_audio": tf.io.FixedLenFeature([128], tf.float32),
    }
    ours_total = theirs_total = 0
    for path in files:
        ours = read_video_shard(path, features={"mean_rgb": 1024, "mean_audio": 128})
        theirs = [tf.io.parse_example(b, spec) for b in tf.data.TFRecordDataset([path]).batch(1 << 16)]
        assert len(theirs) == 1, f"{path}: more records than one TensorFlow batch"
        t = theirs[0]
        assert ours.ids == [x.decode() for x in t["id"].numpy()], path
        dense = tf.sparse.to_dense(t["labels"], default_value=-1).numpy()
        for i in range(len(ours)):
            assert ours.labels(i).tolist() == dense[i][dense[i] >= 0].tolist(), (path, i)
        np.testing.assert_array_equal(ours.features["mean_rgb"], t["mean_rgb"].numpy())
        np.testing.assert_array_equal(ours.features["mean_audio"], t["mean_audio"].numpy())
        ours_total += len(ours)
        theirs_total += int(t["id"].shape[0])
    # Both parsers saw every record of every shard that is there, and at least one record per shard.
    assert ours_total == theirs_total >= len(files)
