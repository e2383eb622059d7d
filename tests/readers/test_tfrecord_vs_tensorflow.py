"""Every record of the 40 real shards, parsed by modalfuse and by TensorFlow, is identical.

Runs only where ``tensorflow`` is installed (``pip install tensorflow-cpu``, the ``bench`` extra)."""

from __future__ import annotations

import numpy as np
import pytest

from modalfuse.readers.example import read_video_shard

tf = pytest.importorskip("tensorflow")


@pytest.mark.slow
def test_every_record_matches_tf_parse_example(shared_data):
    files = sorted(str(p) for p in (shared_data / "yt8m" / "video").glob("*.tfrecord"))
    assert len(files) == 40
    spec = {
        "id": tf.io.FixedLenFeature([], tf.string),
        "labels": tf.io.VarLenFeature(tf.int64),
        "mean_rgb": tf.io.FixedLenFeature([1024], tf.float32),
        "mean_audio": tf.io.FixedLenFeature([128], tf.float32),
    }
    total = 0
    for path in files:
        ours = read_video_shard(path, features={"mean_rgb": 1024, "mean_audio": 128})
        theirs = [tf.io.parse_example(b, spec) for b in tf.data.TFRecordDataset([path]).batch(1 << 16)]
        assert len(theirs) == 1
        t = theirs[0]
        assert ours.ids == [x.decode() for x in t["id"].numpy()]
        dense = tf.sparse.to_dense(t["labels"], default_value=-1).numpy()
        for i in range(len(ours)):
            assert ours.labels(i).tolist() == dense[i][dense[i] >= 0].tolist()
        np.testing.assert_array_equal(ours.features["mean_rgb"], t["mean_rgb"].numpy())
        np.testing.assert_array_equal(ours.features["mean_audio"], t["mean_audio"].numpy())
        total += len(ours)
    assert total == 11790
