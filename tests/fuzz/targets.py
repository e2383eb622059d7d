"""Fuzz targets: one per reader entry point, shared by the Hypothesis tests (``tests/fuzz``) and the
long mutation run (``bench/fuzz.py``).

A target takes a file and reads it completely through the public entry point, the way ``inspect``,
a dataset or ``train`` would. The contract under test: whatever the bytes, the only exception that
escapes is the project's ``UserError`` (``DataError``/``ConfigError``); nothing hangs; memory stays
in proportion to the input.
"""

from __future__ import annotations

import io
import pickle
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np

from modalfuse.errors import UserError


# --------------------------------------------------------------------------- readers under test

def read_tfrecord_framing(path: str) -> None:
    from modalfuse.readers.tfrecord import read_records

    for _ in read_records(path):
        pass


def read_yt8m_records(path: str) -> None:
    from modalfuse.readers.tfrecord import read_records
    from modalfuse.readers.yt8m import decode_record, read_video_shard
    from modalfuse.readers.yt8m_inspect import inspect_tfrecords

    read_video_shard(path)  # the fast batch parser (falls back to the general one per record)
    for i, data in enumerate(read_records(path)):
        decode_record(data, path=path, index=i)
    inspect_tfrecords([path], jsonl=True, out=io.StringIO())


def read_csd(path: str) -> None:
    from modalfuse.readers.csd import CsdFile, inspect_csd

    with CsdFile(path) as seq:
        for video in seq.videos():
            seq.read(video)
        seq.metadata  # noqa: B018 - reading it is the test
    inspect_csd([path], jsonl=True, out=io.StringIO())


def read_packed(path: str) -> None:
    from modalfuse.readers.packed import PackedDataset, inspect_packed

    with PackedDataset(path) as p:
        for i in range(min(len(p), 50)):
            p.segment(i)
        for m in p.modalities:
            if p.utterance_level:
                p.vectors(m)
            else:
                p.padded(m, 8)
    inspect_packed([path], out=io.StringIO())


def read_pickle(path: str) -> None:
    from modalfuse.readers.pickles import inspect_pickle, read_sentiment_pickle

    read_sentiment_pickle(path)
    inspect_pickle([path], jsonl=True, out=io.StringIO())


def read_config(path: str) -> None:
    from modalfuse.config import apply_overrides, build_config, load_yaml

    build_config(apply_overrides(load_yaml(path), []))


TARGETS: dict[str, Callable[[str], None]] = {
    "tfrecord": read_tfrecord_framing, "yt8m_records": read_yt8m_records, "csd": read_csd,
    "packed": read_packed, "pickle": read_pickle, "config": read_config,
}
SUFFIX = {"tfrecord": ".tfrecord", "yt8m_records": ".tfrecord", "csd": ".csd", "packed": ".h5",
          "pickle": ".pkl", "config": ".yaml"}


def outcome(target: str, path: str) -> str:
    """``"ok"``, ``"project_error"`` or ``"other:<ExceptionType>"`` for one input."""
    try:
        TARGETS[target](path)
    except UserError:
        return "project_error"
    except Exception as e:  # noqa: BLE001 - what the fuzzer looks for
        return f"other:{type(e).__name__}: {str(e)[:200]}"
    return "ok"


# --------------------------------------------------------------------------- small valid seeds

def _tfrecord_bytes(records: list[bytes], tmp: Path) -> bytes:
    from modalfuse.readers.tfrecord import TFRecordWriter

    path = tmp / "seed.tfrecord"
    with TFRecordWriter(path) as w:
        for r in records:
            w.write(r)
    return path.read_bytes()


def small_seeds(tmp: Path) -> dict[str, list[bytes]]:
    """Small valid inputs for every target, made here (no data files needed)."""
    import h5py

    from modalfuse.readers.example import encode_example, encode_sequence_example
    from modalfuse.readers.packed import FORMAT

    rng = np.random.default_rng(0)
    video = [encode_example({"id": f"v{i:03d}", "labels": np.array([i, 7]),
                             "mean_rgb": rng.normal(size=16).astype(np.float32),
                             "mean_audio": rng.normal(size=4).astype(np.float32)}) for i in range(3)]
    frame = [encode_sequence_example({"id": b"f001", "labels": np.array([2])},
                                     {"rgb": [bytes(range(16)), bytes(range(16, 32))], "audio": [b"\x01" * 4, b"\x02" * 4]})]
    seeds = {"tfrecord": [_tfrecord_bytes(video, tmp)],
             "yt8m_records": [_tfrecord_bytes(video, tmp), _tfrecord_bytes(frame, tmp)]}

    csd = tmp / "seed.csd"
    with h5py.File(csd, "w") as h:
        for v in ("a", "b"):
            h[f"seq/data/{v}/features"] = rng.normal(size=(3, 2)).astype(np.float32)
            h[f"seq/data/{v}/intervals"] = np.array([[0, 1], [1, 2], [2, 3]], np.float64)
        h["seq/metadata/root name"] = "seq"
    seeds["csd"] = [csd.read_bytes()]

    packed = tmp / "seed.h5"
    with h5py.File(packed, "w") as h:
        h.attrs.update({"format": FORMAT, "modalities": '["text"]', "utterance_level": False, "align_to": "text"})
        h["ids"] = np.array([b"v[0]", b"v[1]"])
        h["videos"] = np.array([b"v", b"v"])
        h["intervals"] = np.zeros((2, 2))
        h["labels"] = np.array([[0.5], [-1.0]], np.float32)
        h["features/text/data"] = rng.normal(size=(5, 3)).astype(np.float32)
        h["features/text/offsets"] = np.array([0, 2, 5], np.int64)
    seeds["packed"] = [packed.read_bytes()]

    split = {"text": rng.normal(size=(2, 3, 2)).astype(np.float32), "audio": rng.normal(size=(2, 3, 2)).astype(np.float32),
             "regression_labels": np.array([0.5, -1.0], np.float32), "id": np.array(["a$_$0", "a$_$1"], dtype=object),
             "audio_lengths": [3, 1]}
    seeds["pickle"] = [pickle.dumps({"train": split, "test": split}, protocol=p) for p in (2, 4, 5)]

    seeds["config"] = [b"data: {name: synthetic, n_train: 64}\nmodel: {name: fusion, encoder: {name: mlp}}\n"
                       b"train: {epochs: 1, learning_rate: 0.001}\n"]
    return seeds


# --------------------------------------------------------------------------- mutations

INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff\xff\xff", b"\x00\x00\x00\x80",
               b"\xff\xff\xff\xff\xff\xff\xff\x7f", b"\x01\x00\x00\x00\x00\x00\x00\x00"]


def mutate(data: bytes, rng: random.Random, n_ops: int | None = None) -> bytes:
    """A few random edits of ``data``: bit flips, interesting values, inserts, deletes, duplicated
    slices, truncation. The seed's structure mostly survives, so the edits reach deep into parsers."""
    b = bytearray(data)
    for _ in range(n_ops or rng.randint(1, 4)):
        if not b:
            b += rng.randbytes(rng.randint(1, 16))
            continue
        op = rng.randrange(7)
        i = rng.randrange(len(b))
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            v = rng.choice(INTERESTING)
            b[i:i + len(v)] = v
        elif op == 2:
            b[i:i] = rng.randbytes(rng.randint(1, 16))
        elif op == 3:
            del b[i:i + rng.randint(1, 64)]
        elif op == 4:
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randint(1, 256)]
        elif op == 5:
            del b[i:]
        else:
            b[i] = rng.randrange(256)
    return bytes(b)


def mutate_payloads(data: bytes, rng: random.Random) -> bytes:
    """Mutate the payload of one record of a TFRecord file and frame it again with valid CRCs, so the
    edit reaches the protobuf and YouTube-8M parsers instead of stopping at the checksum."""
    import struct

    from modalfuse.readers.tfrecord import masked_crc

    records, off = [], 0
    while off + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, off)
        if off + 16 + length > len(data):
            break
        records.append(data[off + 12: off + 12 + length])
        off += 16 + length
    if not records:
        return mutate(data, rng)
    i = rng.randrange(len(records))
    records[i] = mutate(records[i], rng)
    out = bytearray()
    for r in records:
        header = struct.pack("<Q", len(r))
        out += header + struct.pack("<I", masked_crc(header)) + r + struct.pack("<I", masked_crc(r))
    return bytes(out)


def mutate_for(target: str, data: bytes, rng: random.Random) -> bytes:
    """The mutation that reaches deepest for ``target``: record payloads for YouTube-8M records (half
    the time; the framing the other half), byte edits of the whole file otherwise."""
    if target == "yt8m_records" and rng.random() < 0.5:
        return mutate_payloads(data, rng)
    return mutate(data, rng)
