"""YouTube-8M video-level features (TFRecord shards, no TensorFlow needed), as the ``yt8m`` dataset.

Modalities: ``rgb`` (``mean_rgb``, with ``std_rgb`` appended when present: 1024 or 2048-d) and
``audio`` (128 or 256-d), float32; with ``statistics: split`` each statistic is its own modality
(``mean_rgb``, ``std_rgb``, ``mean_audio``, ``std_audio``), so a fusion can take them as separate tokens. Labels: multi-hot float32 ``[C]``. Splits are cached in memory
(``ArrayDataset``) or streamed shard by shard (``Yt8mStream``, a ``BatchStream``). The default splits
are the real sample bundled with the package (validation shards 0000-0003 / 0032 / 0033).
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator
from importlib import resources
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from ..config import Params
from ..errors import ConfigError, DataError
from ..readers.yt8m import VIDEO_FEATURE_SIZES, VideoBatch, decode_record, read_video_shard
from ..readers.tfrecord import ReadStats, expand_paths, frames, masked_crc, open_buffer, read_records
from ..registry import DATASETS
from .base import ArrayDataset, Batch, DataBundle, ModalitySpec, TaskSpec

log = logging.getLogger(__name__)

BUNDLED = {"train": [f"validate{i:04d}.tfrecord" for i in range(4)], "valid": ["validate0032.tfrecord"],
           "test": ["validate0033.tfrecord"]}
MODALITY_FEATURES = {"rgb": ("mean_rgb", "std_rgb"), "audio": ("mean_audio", "std_audio")}
# With this many shards per process, splitting by file leaves ranks within a few percent of one
# another in records (the uneven training tail, below one batch per rank, is dropped each epoch).
FILES_PER_RANK = 8
_HEADER = struct.Struct("<QI")  # a TFRecord header: payload length, masked CRC32C of those 8 bytes


class Yt8mParams(Params):
    """``data:`` keys of the ``yt8m`` dataset."""

    train: str | list[str] = "bundled"  # glob, comma-separated globs or a list; "bundled" = the sample
    valid: str | list[str] = "bundled"
    test: str | list[str] | None = "bundled"  # null: no test split
    features: Literal["auto"] | list[str] = "auto"  # auto: mean_*, plus std_* when the records have them
    num_classes: int = Field(3862, ge=2)  # 3862 for the 2018 release, 4716 for 2017
    id_key: str = "id"  # the 2017 release's "video_id" is accepted as well
    streaming: bool = False  # False: cached in memory; True: read shard by shard each epoch
    # Records shuffled together when streaming. The first batch waits for one such block, so it is
    # kept small: YouTube-8M shards are random samples of videos and the shard order is reshuffled
    # every epoch, so a block of a few shards mixes as well as a larger one (bench/stream_start.py).
    shuffle_buffer: int = Field(1024, ge=1)
    # How a streamed split is divided among torchrun processes: "file" (each reads only its own
    # shards; by record when a split has fewer shards than processes), "record" (each reads every
    # shard and keeps every world_size-th record), or "auto": by file when every process gets at
    # least FILES_PER_RANK (8) shards, by record otherwise.
    shard_by: Literal["auto", "file", "record"] = "auto"
    skip_corrupt: bool = False  # skip (and count) records with a bad CRC instead of failing
    vocabulary: str | None = None  # vocabulary CSV for class names; None: the bundled 2018 one
    # Per-video input scaling: "l2" divides each modality's vector by its L2 norm; "l2-joint" divides
    # the concatenation of all modalities by its norm, as the YouTube-8M starter code does.
    input_norm: Literal["none", "l2", "l2-joint"] = "none"
    # NaN/+-inf feature values: "zero" replaces them by 0 and counts them (a warning names the file
    # and the first record of each shard that has them), "error" refuses the shard.
    nonfinite: Literal["zero", "error"] = "zero"
    # Train on the first N training videos of a fixed order (a permutation seeded by subset_seed):
    # subsets for different N are nested, and the same for every training seed (scaling studies).
    train_limit: int | None = Field(None, ge=1)
    subset_seed: int = 0
    # "concat": a modality is its statistics side by side (rgb = [mean_rgb; std_rgb]); "split": every
    # feature is its own modality, named as the feature (needs the std_* features: MF+STD shards).
    statistics: Literal["concat", "split"] = "concat"


def _bundled_files(split: str) -> list[str]:
    root = resources.files("modalfuse") / "data_files" / "yt8m"
    return [str(root / name) for name in BUNDLED[split]]


def _files(spec: str | list[str], split: str) -> list[str]:
    if spec == "bundled":
        return _bundled_files(split)
    try:
        return expand_paths(spec)
    except DataError as e:
        raise ConfigError(f"config key 'data.{split}': {e}") from None


def _detect_features(files: list[str], id_key: str, skip_corrupt: bool) -> dict[str, int]:
    """Float features that make up the modalities, name -> size, from the first readable record.

    Corrupt records (and shards with no good record) are passed over when ``skip_corrupt`` is set.
    A feature of a known name whose size is not the official one (``VIDEO_FEATURE_SIZES``) is an error
    naming the file and record here, rather than a mismatch blamed on the next, correct, shard.
    """
    for path in files:
        for index, data in enumerate(read_records(path, skip_corrupt=skip_corrupt)):
            rec = decode_record(data, path=path, index=index, id_key=id_key)
            floats = {k: len(v) for k, (kind, v) in rec.features.items() if kind == "float"}
            if "mean_rgb" not in floats or "mean_audio" not in floats:
                raise DataError(f"{path}: record {index} (id '{rec.id}') has no mean_rgb/mean_audio float features "
                                f"(found: {sorted(floats)})")
            std = "std_rgb" in floats and "std_audio" in floats
            names = ["mean_rgb", "std_rgb", "mean_audio", "std_audio"] if std else ["mean_rgb", "mean_audio"]
            for name in names:
                if floats[name] != VIDEO_FEATURE_SIZES[name]:
                    raise DataError(f"{path}: record {index} (id '{rec.id}'): feature '{name}' has {floats[name]} "
                                    f"values, expected the official {VIDEO_FEATURE_SIZES[name]}")
            log.info("yt8m: features detected in %s: %s", path, ", ".join(names))
            return {k: floats[k] for k in names}
    raise DataError(f"{files[0]}: no readable records" + (f" in any of {len(files)} shards" if len(files) > 1 else ""))


def _modalities(features: dict[str, int]) -> dict[str, list[str]]:
    """Which features make each modality, in order (mean first, then std)."""
    out = {m: [f for f in features if any(f == n for n in names)] for m, names in MODALITY_FEATURES.items()}
    unknown = [f for f in features if not any(f in names for names in MODALITY_FEATURES.values())]
    if unknown:
        raise ConfigError(
            f"config key 'data.features': unknown feature {unknown[0]!r}; valid: "
            f"{', '.join(n for names in MODALITY_FEATURES.values() for n in names)}"
        )
    return {m: fs for m, fs in out.items() if fs}


def _to_arrays(batch: VideoBatch, groups: dict[str, list[str]], num_classes: int,
               input_norm: str = "none") -> tuple[dict[str, np.ndarray], np.ndarray]:
    feats = {m: np.concatenate([batch.features[f] for f in fs], axis=1) if len(fs) > 1 else batch.features[fs[0]]
             for m, fs in groups.items()}
    return l2_normalize(feats, input_norm), batch.multi_hot(num_classes)


def l2_normalize(feats: dict[str, np.ndarray], how: str) -> dict[str, np.ndarray]:
    """Scale each video's vectors ``[N, D_m]`` to unit L2 norm: per modality (``"l2"``) or over the
    concatenation of all modalities (``"l2-joint"``); ``"none"`` returns them unchanged. A zero
    vector stays zero."""
    if how == "none":
        return feats
    if how == "l2":
        norms = {m: np.linalg.norm(v, axis=1, keepdims=True) for m, v in feats.items()}
    else:
        joint = np.sqrt(sum(np.square(v).sum(axis=1, keepdims=True) for v in feats.values()))
        norms = dict.fromkeys(feats, joint)
    return {m: (v / np.maximum(norms[m], 1e-12)).astype(np.float32, copy=False) for m, v in feats.items()}


def count_records(path: str, skip_corrupt: bool = False) -> int:
    """Records in one shard from its framing alone: each 12-byte header (length and its CRC) is read
    and the payload skipped, so counting costs one small read per record instead of a pass over every
    byte (payload CRCs are checked when the records are read). A header that fails its CRC, or a
    truncated tail, is an error naming the byte offset, unless ``skip_corrupt``: then the shard is
    counted by a full checked walk (``frames``), which can resynchronise.
    """
    try:
        size = os.path.getsize(path)
        f = open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a TFRecord file") from None
    n = off = 0
    with f:
        fd = f.fileno()
        while off < size:
            head = os.pread(fd, 12, off)
            problem = None
            if len(head) < 12:
                problem = f"truncated record header ({len(head)} of 12 bytes)"
            else:
                length, hcrc = _HEADER.unpack(head)
                if masked_crc(head[:8]) != hcrc:
                    problem = "length CRC mismatch"
                elif off + 16 + length > size:
                    problem = f"truncated record (needs {length + 16} bytes, {size - off} left)"
            if problem:
                if skip_corrupt:
                    stats = ReadStats()
                    for _ in frames(open_buffer(path), path, skip_corrupt=True, stats=stats):
                        pass
                    return stats.records
                raise DataError(f"{path}: corrupt record at byte offset {off}: {problem} "
                                "(use skip_corrupt / --skip-corrupt to skip such records)")
            n += 1
            off += 16 + length
    return n


def _count_records(files: list[str], skip_corrupt: bool) -> int:
    return sum(count_records(path, skip_corrupt) for path in files)


def estimate_records(files: list[str], skip_corrupt: bool) -> int:
    """The records of a streamed split, from its first shard alone: that shard is counted
    (``count_records``) and the others are assumed to hold as many records per byte.

    A count of every shard touches nearly every page of the split (a video-level record is about one
    page long), i.e. a full pass before step 1; this reads one shard. YouTube-8M video-level records
    differ in size only by their number of labels, so the estimate is within a fraction of a percent;
    it only sizes the learning-rate schedule and the progress display: every epoch still reads every
    record, and the stream reports what it read (``Yt8mStream.records_read``).
    """
    sizes = [os.path.getsize(f) if os.path.isfile(f) else 0 for f in files]
    first = next((i for i, size in enumerate(sizes) if size), None)
    if first is None:
        return 0
    n = count_records(files[first], skip_corrupt)
    if len(files) == 1 or n == 0:
        return n if len(files) == 1 else _count_records(files, skip_corrupt)
    return int(round(n * sum(sizes) / sizes[first]))


def replace_nonfinite(batch: VideoBatch, how: str) -> int:
    """Replace NaN/+-inf feature values of one shard's records by 0 in place, and count them.

    Args:
        batch: records of one shard (``batch.path`` names it); features float32 ``[N, D]``.
        how: ``"zero"`` (replace, count, warn naming the file and the first record affected) or
            ``"error"`` (raise).

    Returns:
        The number of values replaced.

    Raises:
        DataError: ``how == "error"`` and a value is not finite, naming the file, record and feature.
    """
    total = 0
    for name, arr in batch.features.items():
        bad = ~np.isfinite(arr)
        count = int(bad.sum())
        if not count:
            continue
        rows = np.flatnonzero(bad.any(axis=1))
        first = f"record {int(rows[0])} (id '{batch.ids[rows[0]]}')"
        if how == "error":
            raise DataError(f"{batch.path}: {first}: feature '{name}' holds {count} non-finite values "
                            f"in {len(rows)} records (data.nonfinite: zero replaces them by 0)")
        if not arr.flags.writeable:
            arr = batch.features[name] = arr.copy()
        arr[bad] = 0.0
        log.warning("yt8m: %s: %d non-finite values of '%s' in %d records (first: %s) replaced by 0",
                    batch.path, count, name, len(rows), first)
        total += count
    return total


class Yt8mStream:
    """A streamed split: shards are read one at a time, so memory stays flat whatever the split size.

    Every rank draws the same (seeded) shard order. Split by file, rank ``r`` reads only shards
    ``r, r + world_size, ...`` of that order; split by record, every rank reads every shard and keeps
    records ``rank, rank + world_size, ...`` of the stream. Either way each record is seen exactly
    once per epoch across ranks; records are then shuffled within blocks of ``shuffle_buffer``. The
    order depends only on ``(seed, epoch)``.

    Args:
        files: the shards.
        features: float features to read, name -> size.
        groups: modality -> the features concatenated into it.
        num_classes: size of the multi-hot labels.
        shuffle_buffer: records shuffled together.
        skip_corrupt: skip records with a bad CRC (counted in ``skipped``).
        num_records: records in the split (for ``len``; may be an estimate, see ``estimate_records``).
        id_key: see ``read_video_shard``.
        input_norm: see ``Yt8mParams``.
        shard_by: ``"file"``, ``"record"`` or ``"auto"`` (see ``Yt8mParams``).
        nonfinite: ``"zero"`` or ``"error"`` (see ``replace_nonfinite``); replaced values are counted
            in ``nonfinite``.
    """

    def __init__(self, files: list[str], features: dict[str, int], groups: dict[str, list[str]], num_classes: int,
                 shuffle_buffer: int, skip_corrupt: bool, num_records: int, id_key: str = "auto",
                 input_norm: str = "none", shard_by: str = "auto", nonfinite: str = "zero") -> None:
        self.files = list(files)
        self.features = dict(features)
        self.groups = groups
        self.num_classes = num_classes
        self.shuffle_buffer = shuffle_buffer
        self.skip_corrupt = skip_corrupt
        self.num_records = num_records
        self.id_key = id_key
        self.input_norm = input_norm
        self.shard_by = shard_by
        self.nonfinite_mode = nonfinite
        self.skipped = 0
        self.nonfinite = 0
        self.records_read = 0  # in the last epoch started (num_records may be an estimate)

    def __len__(self) -> int:
        return self.num_records

    def by_file(self, world_size: int) -> bool:
        """Whether ``world_size`` ranks split this stream by shard file."""
        if world_size == 1 or self.shard_by == "record":
            return False
        # Fewer shards than ranks would leave a rank with nothing to read: then by record.
        return len(self.files) >= (world_size if self.shard_by == "file" else FILES_PER_RANK * world_size)

    def _records(self, order: list[str], rank: int, world_size: int) -> Iterator[VideoBatch]:
        """This rank's records, one shard at a time: modality features ``[k, D_m]``, labels kept in
        CSR form (a dense multi-hot row is 4 * num_classes bytes, three times the features, so it is
        made only for the rows of each batch)."""
        if self.by_file(world_size):
            order, rank, world_size = order[rank::world_size], 0, 1
        seen = 0  # position in the global stream, which decides the rank of each record
        for path in order:
            batch = read_video_shard(path, features=self.features, id_key=self.id_key,
                                     skip_corrupt=self.skip_corrupt)
            self.skipped += batch.skipped
            self.nonfinite += replace_nonfinite(batch, self.nonfinite_mode)
            self.records_read += len(batch)
            _check_labels(batch, self.num_classes)
            first = (rank - seen) % world_size
            seen += len(batch)
            keep = np.arange(first, len(batch), world_size)
            if not keep.size:
                continue
            feats = {m: np.concatenate([batch.features[f] for f in fs], axis=1) if len(fs) > 1 else batch.features[fs[0]]
                     for m, fs in self.groups.items()}
            batch.features = l2_normalize(feats, self.input_norm)
            yield batch if keep.size == len(batch) else _take(batch, keep)

    def iter_batches(self, batch_size: int, *, shuffle: bool, seed: int, epoch: int, rank: int = 0,
                     world_size: int = 1, drop_last: bool = False) -> Iterator[Batch]:
        """Batches ``{"features": {m: FloatTensor[B, D]}, "masks": {}, "label": FloatTensor[B, C],
        "ids": list[str]}`` of this rank's share of the split."""
        rng = np.random.default_rng([seed, epoch])
        order = [self.files[i] for i in rng.permutation(len(self.files))] if shuffle else self.files
        self.skipped = self.nonfinite = self.records_read = 0
        pending: list[VideoBatch] = []
        size = 0
        block = self.shuffle_buffer if shuffle else batch_size

        def flush(final: bool) -> Iterator[Batch]:
            nonlocal pending, size
            records = VideoBatch.concat(pending) if len(pending) > 1 else pending[0]
            n = len(records)
            idx = rng.permutation(n) if shuffle else np.arange(n)
            cut = n if final else n - n % batch_size
            for a in range(0, cut, batch_size):
                sel = idx[a : a + batch_size]
                if len(sel) < batch_size and drop_last:
                    break
                part = _take(records, sel)
                yield {"features": {m: torch.from_numpy(v) for m, v in part.features.items()}, "masks": {},
                       "label": torch.from_numpy(part.multi_hot(self.num_classes)), "ids": part.ids}
            pending = [_take(records, idx[cut:])]  # carried into the next block
            size = n - cut

        for item in self._records(order, rank, world_size):
            pending.append(item)
            size += len(item)
            if size >= max(block, batch_size):
                yield from flush(final=False)
        if size:
            yield from flush(final=True)


def _take(batch: VideoBatch, idx: np.ndarray) -> VideoBatch:
    """Rows ``idx`` of ``batch`` (features ``[k, D]`` gathered, CSR labels re-packed)."""
    counts = np.diff(batch.label_offsets)[idx]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    src = np.repeat(batch.label_offsets[idx] - offsets[:-1], counts) + np.arange(offsets[-1])
    return VideoBatch([batch.ids[i] for i in idx.tolist()], batch.label_values[src], offsets,
                      {k: v[idx] for k, v in batch.features.items()}, batch.path)


def _check_labels(batch: VideoBatch, num_classes: int) -> None:
    """Raise the error ``VideoBatch.multi_hot`` would, without building the dense rows."""
    if batch.label_values.size and (batch.label_values.min() < 0 or batch.label_values.max() >= num_classes):
        bad = _take(batch, np.flatnonzero([((batch.labels(i) < 0) | (batch.labels(i) >= num_classes)).any()
                                           for i in range(len(batch))])[:1])
        bad.multi_hot(num_classes)


@DATASETS.register("yt8m", params=Yt8mParams, task="yt8m",
                   description="YouTube-8M video-level features from TFRecord shards (bundled real sample by default)")
def build_yt8m(p: Yt8mParams) -> DataBundle:
    """Build the splits; see ``Yt8mParams``. ``info`` holds records per split, the features used, the
    corrupt records skipped and the non-finite values replaced (cached splits; a stream counts them
    as it reads, in ``Yt8mStream.skipped`` / ``.nonfinite``)."""
    from ..readers.vocabulary import load_bundled_vocabulary, load_vocabulary

    split_files = {"train": _files(p.train, "train"), "valid": _files(p.valid, "valid")}
    if p.test is not None:
        split_files["test"] = _files(p.test, "test")
    if p.train_limit is not None and p.streaming:
        raise ConfigError("config key 'data.train_limit': needs data.streaming: false (the subset is drawn from the "
                          "cached training split), found streaming: true")
    id_key = "auto" if p.id_key in ("id", "video_id") else p.id_key
    if p.features == "auto":
        features = _detect_features(split_files["train"], id_key, p.skip_corrupt)
    else:
        first = _detect_features(split_files["train"], id_key, p.skip_corrupt) if any(
            f not in VIDEO_FEATURE_SIZES for f in p.features) else {}
        features = {f: VIDEO_FEATURE_SIZES.get(f) or first[f] for f in p.features}
    groups = _modalities(features)
    if p.statistics == "split":
        if not any(f.startswith("std_") for f in features):
            raise ConfigError(f"config key 'data.statistics': split needs the std_* features (MF+STD shards); "
                              f"{split_files['train'][0]} has {', '.join(features)}")
        groups = {f: [f] for f in features}
    splits: dict[str, Any] = {}
    records: dict[str, int] = {}
    skipped: dict[str, int] = {}
    nonfinite: dict[str, int] = {}
    for split, files in split_files.items():
        if p.streaming:
            # One shard is counted and the rest estimated (see estimate_records): streams start at once.
            n, bad, nf = estimate_records(files, p.skip_corrupt), 0, 0
            splits[split] = Yt8mStream(files, features, groups, p.num_classes, p.shuffle_buffer, p.skip_corrupt, n,
                                       id_key, p.input_norm, p.shard_by, p.nonfinite)
        else:
            shards = [read_video_shard(f, features=features, id_key=id_key, skip_corrupt=p.skip_corrupt) for f in files]
            nf = sum(replace_nonfinite(shard, p.nonfinite) for shard in shards)
            batch = VideoBatch.concat(shards)
            feats, labels = _to_arrays(batch, groups, p.num_classes, p.input_norm)
            ds = ArrayDataset(feats, labels, batch.ids)
            n, bad = len(batch), batch.skipped
            if split == "train" and p.train_limit is not None:
                if p.train_limit > n:
                    raise ConfigError(f"config key 'data.train_limit': at most the {n} training records, "
                                      f"found {p.train_limit}")
                # The first N of one seeded permutation of the whole split: nested for growing N.
                order = np.random.default_rng(p.subset_seed).permutation(n)
                ds = ds.subset(np.sort(order[: p.train_limit]))
                log.info("yt8m: training on %d of %d records (data.train_limit, subset_seed %d)",
                         p.train_limit, n, p.subset_seed)
                n = p.train_limit
            splits[split] = ds
        records[split] = n
        skipped[split] = bad
        nonfinite[split] = nf
        if bad:
            log.warning("yt8m: skipped %d corrupt records in the %s split", bad, split)
    names = load_vocabulary(p.vocabulary) if p.vocabulary else load_bundled_vocabulary()
    class_names = tuple(names) if len(names) == p.num_classes else None
    return DataBundle(
        splits["train"], splits["valid"], splits.get("test"),
        modalities={m: ModalitySpec(sum(features[f] for f in fs)) for m, fs in groups.items()},
        task=TaskSpec("multilabel", p.num_classes, class_names),
        info={"records": records, "features": list(features), "input_norm": p.input_norm, "skipped_corrupt": skipped,
              "nonfinite_replaced": nonfinite, "files": {k: len(v) for k, v in split_files.items()}, "streaming": p.streaming,
              "records_estimated": p.streaming,
              "train_limit": p.train_limit},
    )
