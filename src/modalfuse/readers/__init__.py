"""Readers: turn files on disk (TFRecord shards, .csd and pickle files) into numpy arrays."""
