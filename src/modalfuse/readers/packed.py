"""The packed dataset format (HDF5) that ``modalfuse prepare cmu-sdk`` writes: read, write, inspect.

Layout (``attrs["format"] == "modalfuse-packed"``)::

    ids        [N]        str      "video[k]"
    videos     [N]        str      video id of each segment
    intervals  [N, 2]     float64  the label segment's start and end (orders context neighbours)
    labels     [N, L]     float32  the label row (column 0: sentiment in [-3, 3])
    features/<name>/data     [sum T_i, D]  float32  aligned rows of every segment, concatenated
    features/<name>/offsets  [N + 1]       int64    segment i is data[offsets[i]:offsets[i+1]]
    attrs: format, version, align_to, utterance_level, modalities (JSON list), sources (JSON)

Values are stored as aligned, unnormalised, non-finite values included; cleaning is the dataset's
job. Opening a file checks the whole layout (every dataset present, shapes consistent, offsets
starting at 0, never decreasing, ending at the data's row count), so a corrupt or hand-edited file is
one ``DataError`` naming the file and what is wrong, never an h5py or numpy exception.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..errors import DataError
from .hdf5 import open_hdf5
from .jsonl import json_line

FORMAT = "modalfuse-packed"
VERSION = 1


def _strings(values: np.ndarray) -> list[str]:
    return [s.decode("utf-8", "replace") if isinstance(s, bytes) else str(s) for s in values]


class PackedDataset:
    """A packed dataset opened for reading (``with PackedDataset(path) as p: p.segment(i)``).

    Raises:
        DataError: not a packed dataset, or its layout is inconsistent (naming what).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.h5 = open_hdf5(self.path, "a modalfuse packed dataset")
        try:
            self._load()
        except DataError:
            self.h5.close()
            raise
        except Exception as e:  # noqa: BLE001 - damaged datasets raise from h5py and numpy alike
            self.h5.close()
            raise DataError(f"{self.path}: corrupt packed dataset ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:120] if str(e) else ''})") from None

    def _need(self, key: str) -> Any:
        import h5py

        obj = self.h5.get(key)
        if not isinstance(obj, h5py.Dataset):
            raise DataError(f"{self.path}: packed dataset without '{key}' (expected the layout of "
                            f"`modalfuse prepare cmu-sdk`)")
        return obj

    def _load(self) -> None:
        fmt = self.h5.attrs.get("format")
        if isinstance(fmt, bytes):
            fmt = fmt.decode("utf-8", "replace")
        if fmt != FORMAT:
            raise DataError(f"{self.path}: expected a modalfuse packed dataset, found format {fmt!r}")
        try:
            modalities = json.loads(self.h5.attrs["modalities"])
        except (KeyError, ValueError, TypeError):
            raise DataError(f"{self.path}: attribute 'modalities' should be a JSON list of names") from None
        if not isinstance(modalities, list) or not modalities or not all(isinstance(m, str) and m for m in modalities):
            raise DataError(f"{self.path}: attribute 'modalities' should be a non-empty JSON list of names, "
                            f"found {str(modalities)[:60]}")
        self.modalities: list[str] = modalities
        self.utterance_level = bool(self.h5.attrs.get("utterance_level", False))
        self.align_to = str(self.h5.attrs.get("align_to", "?"))
        self.ids = _strings(self._need("ids")[()])
        n = len(self.ids)
        self.videos = _strings(self._need("videos")[()])
        self.intervals = np.asarray(self._need("intervals")[()], np.float64)
        self.labels = np.asarray(self._need("labels")[()], np.float32)
        if len(self.videos) != n or self.intervals.shape != (n, 2) or self.labels.ndim != 2 or len(self.labels) != n \
                or self.labels.shape[1] < 1:
            raise DataError(f"{self.path}: inconsistent packed dataset: {n} ids, {len(self.videos)} videos, "
                            f"intervals {self.intervals.shape} (expected [{n}, 2]), labels {self.labels.shape} "
                            f"(expected [{n}, L])")
        self.offsets, self.dims = {}, {}
        for m in self.modalities:
            data = self._need(f"features/{m}/data")
            offsets = np.asarray(self._need(f"features/{m}/offsets")[()])
            if data.ndim != 2:
                raise DataError(f"{self.path}: 'features/{m}/data' should be [rows, D], found shape {data.shape}")
            if offsets.dtype.kind not in "iu" or offsets.shape != (n + 1,):
                raise DataError(f"{self.path}: 'features/{m}/offsets' should be {n + 1} integers, found "
                                f"{offsets.shape} {offsets.dtype}")
            offsets = offsets.astype(np.int64)
            steps = np.diff(offsets)
            if n and (offsets[0] != 0 or (steps < 0).any() or offsets[-1] != data.shape[0]):
                bad = int(np.flatnonzero(steps < 0)[0]) if (steps < 0).any() else None
                where = f"segment {bad} ('{self.ids[bad]}') would have {int(steps[bad])} rows" if bad is not None \
                    else f"they run from {int(offsets[0])} to {int(offsets[-1])}, the data has {data.shape[0]} rows"
                raise DataError(f"{self.path}: inconsistent 'features/{m}/offsets' ({where}); expected 0 .. rows, "
                                f"never decreasing")
            if self.utterance_level and n and (steps != 1).any():
                raise DataError(f"{self.path}: an utterance-level dataset needs one row per segment in '{m}'")
            self.offsets[m] = offsets
            self.dims[m] = int(data.shape[1])

    def __enter__(self) -> PackedDataset:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.h5.close()

    def __len__(self) -> int:
        return len(self.ids)

    def _read(self, name: str, a: int, b: int) -> np.ndarray:
        try:
            return self.h5[f"features/{name}/data"][a:b]
        except Exception as e:  # noqa: BLE001 - a damaged chunk
            raise DataError(f"{self.path}: cannot read rows {a}..{b} of '{name}' ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:100] if str(e) else ''})") from None

    def segment(self, i: int) -> dict[str, np.ndarray]:
        """The aligned rows of segment ``i``: ``{name: [T_i, D]}``."""
        return {m: self._read(m, int(self.offsets[m][i]), int(self.offsets[m][i + 1])) for m in self.modalities}

    def padded(self, name: str, seq_len: int, chunk_rows: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
        """One modality as a padded array: the first ``seq_len`` rows of every segment.

        Returns:
            ``(features [N, seq_len, D] float32, mask [N, seq_len] bool)``.
        """
        offsets = self.offsets[name]
        n = len(self)
        lengths = np.minimum(np.diff(offsets), seq_len)
        feats = np.zeros((n, seq_len, self.dims[name]), np.float32)
        mask = np.arange(seq_len)[None, :] < lengths[:, None]
        start = 0
        while start < n:
            # Read contiguous slabs of segments (fast HDF5 reads), scatter with fancy indexing.
            stop = max(start + 1, int(np.searchsorted(offsets, offsets[start] + chunk_rows)) - 1)
            stop = min(stop, n)
            slab = self._read(name, int(offsets[start]), int(offsets[stop]))
            seg = np.repeat(np.arange(start, stop), lengths[start:stop])
            step = np.arange(len(seg)) - np.repeat(np.cumsum(lengths[start:stop]) - lengths[start:stop], lengths[start:stop])
            feats[seg, step] = slab[offsets[seg] - offsets[start] + step]
            start = stop
        return feats, mask

    def vectors(self, name: str) -> np.ndarray:
        """Utterance-level modality: ``[N, D]`` (one row per segment)."""
        if not self.utterance_level:
            raise DataError(f"{self.path}: '{name}' holds sequences, not one vector per segment")
        return self._read(name, 0, int(self.offsets[name][-1]))


class PackedWriter:
    """Appends aligned videos to resizable HDF5 datasets, buffering up to ``FLUSH_BYTES``.

    Args:
        path: the file to create (``prepare`` writes a temporary name and renames it when complete).
        dims: modality -> feature size.
        label_dim: columns of the label rows.
    """

    FLUSH_BYTES = 16 << 20

    def __init__(self, path: str, dims: dict[str, int], label_dim: int) -> None:
        import h5py

        self.h5 = h5py.File(path, "w")
        text = h5py.string_dtype("utf-8")
        self.ids = self.h5.create_dataset("ids", (0,), text, maxshape=(None,), chunks=(4096,))
        self.videos = self.h5.create_dataset("videos", (0,), text, maxshape=(None,), chunks=(4096,))
        self.intervals = self.h5.create_dataset(
            "intervals", (0, 2), np.float64, maxshape=(None, 2), chunks=(4096, 2)
        )
        self.labels = self.h5.create_dataset(
            "labels", (0, label_dim), np.float32, maxshape=(None, label_dim), chunks=(4096, label_dim)
        )
        self.data = {}
        self.offsets = {}
        for name, dim in dims.items():
            g = self.h5.create_group(f"features/{name}")
            rows = max(1, (1 << 20) // (4 * dim))  # ~1 MB chunks
            self.data[name] = g.create_dataset(
                "data", (0, dim), np.float32, maxshape=(None, dim), chunks=(rows, dim)
            )
            self.offsets[name] = g.create_dataset(
                "offsets", (1,), np.int64, maxshape=(None,), chunks=(4096,), data=np.zeros(1)
            )
        self.n = 0
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._pending_bytes = 0

    @staticmethod
    def _append(ds: Any, values: np.ndarray) -> None:
        n = ds.shape[0]
        ds.resize(n + len(values), axis=0)
        ds[n:] = values

    def add(self, video: str, result: dict[str, Any]) -> int:
        """Queue one aligned video (``segments``, ``intervals``, ``labels``, ``features``); returns its segments."""
        n = len(result["segments"])
        if n == 0:
            return 0
        self._pending.append((video, result))
        self._pending_bytes += sum(rows.nbytes for rows, _ in result["features"].values())
        self.n += n
        if self._pending_bytes > self.FLUSH_BYTES:
            self.flush()
        return n

    def flush(self) -> None:
        # Videos are written in batches: each HDF5 append costs ~0.1 ms however small, which for
        # thousands of short videos would cost more than aligning them.
        if not self._pending:
            return
        pend = self._pending
        self._append(self.ids, np.array([f"{v}[{k}]" for v, r in pend for k in r["segments"]], object))
        self._append(self.videos, np.array([v for v, r in pend for _ in r["segments"]], object))
        self._append(self.intervals, np.concatenate([r["intervals"] for _, r in pend]))
        self._append(self.labels, np.concatenate([r["labels"] for _, r in pend]))
        for name in self.data:
            last = self.offsets[name][-1]
            lengths = np.concatenate([r["features"][name][1] for _, r in pend])
            self._append(self.data[name], np.concatenate([r["features"][name][0] for _, r in pend]))
            self._append(self.offsets[name], last + np.cumsum(lengths))
        self._pending = []
        self._pending_bytes = 0

    def close(self, attrs: dict[str, Any]) -> None:
        self.flush()
        for key, value in attrs.items():
            self.h5.attrs[key] = value
        self.h5.close()


def inspect_packed(paths: Sequence[str], *, jsonl: bool = False, limit: int | None = None, out: TextIO) -> None:
    """Describe packed datasets, or with ``jsonl`` write one object per segment:
    ``{"id": "video[k]", "label": float, "features": {name: [[...], ...]}}`` (aligned rows, unpadded,
    unnormalised; non-finite values as null).

    Args:
        paths: packed dataset files.
        jsonl: one JSON object per segment instead of a summary.
        limit: at most this many segments per file (all when None).
        out: where to write.
    """
    for path in paths:
        with PackedDataset(path) as p:
            n = len(p) if limit is None else min(limit, len(p))
            if not jsonl:
                lengths = {m: np.diff(p.offsets[m]) for m in p.modalities}
                out.write(
                    f"{path}: modalfuse packed dataset (aligned to '{p.align_to}'"
                    f"{', one vector per segment' if p.utterance_level else ''})\n"
                    f"  segments: {len(p)}\n  videos: {len(set(p.videos))}\n"
                )
                for m in p.modalities:
                    ln = lengths[m]
                    out.write(
                        f"  {m}: dim {p.dims[m]}, rows per segment {ln.min() if len(ln) else 0}"
                        f"..{ln.max() if len(ln) else 0} (mean {ln.mean() if len(ln) else 0:.1f})\n"
                    )
                if len(p):
                    lab = p.labels[:, 0]
                    out.write(f"  label: min {np.nanmin(lab):.3f}, max {np.nanmax(lab):.3f}, "
                              f"mean {np.nanmean(lab):.3f}, non-finite {int((~np.isfinite(lab)).sum())}\n"
                              if np.isfinite(lab).any() else "  label: no finite values\n")
                continue
            for i in range(n):
                seg = p.segment(i)
                label = p.labels[i, 0]
                out.write(json_line({
                    "id": p.ids[i],
                    "label": float(str(label)) if np.isfinite(label) else None,  # float32 shortest repr: 2.6666667
                    "features": {m: seg[m].astype(np.float64) for m in p.modalities},
                }))


__all__ = ["FORMAT", "VERSION", "PackedDataset", "PackedWriter", "inspect_packed"]
