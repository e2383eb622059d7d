"""CMU-MultimodalSDK computational sequences (``.csd``), read lazily one video at a time.

Layout accepted (HDF5, as the SDK writes it)::

    /<root>/data/<video>/features    [n, D]  float  one row per interval
    /<root>/data/<video>/intervals   [n, 2]  float  start, end in seconds
    /<root>/metadata/<key>           [1]     str    e.g. "root name", "dimension names"

``<root>`` is the file's single top-level group (the sequence's root name). Nothing is loaded until a
video is asked for, so a 10 GB COVAREP file costs one video's memory at a time.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..errors import DataError


def _decode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size == 1 else [_decode(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


class CsdFile:
    """One computational sequence, opened lazily (``with CsdFile(path) as seq: seq.read(video)``).

    Args:
        path: the ``.csd`` file.
    """

    def __init__(self, path: str | Path) -> None:
        import h5py

        self.path = str(path)
        if not Path(self.path).is_file():
            raise DataError(f"{self.path}: file not found")
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as e:
            raise DataError(f"{self.path}: not an HDF5 computational sequence ({e})") from None
        roots = list(self._h5.keys())
        if len(roots) != 1 or "data" not in self._h5[roots[0]]:
            self._h5.close()
            raise DataError(
                f"{self.path}: expected one root group holding 'data' and 'metadata' "
                f"(a CMU-MultimodalSDK .csd), found top-level keys {roots[:5]}"
            )
        self.root = roots[0]
        self._data = self._h5[self.root]["data"]

    def __enter__(self) -> CsdFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "_h5", None) is not None:
            self._h5.close()
            self._h5 = None

    def videos(self) -> list[str]:
        """Video ids in file order (HDF5 stores them sorted by name)."""
        return list(self._data.keys())

    def __contains__(self, video: str) -> bool:
        return video in self._data

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self._h5[self.root].get("metadata")
        return {k: _decode(meta[k][()]) for k in meta} if meta is not None else {}

    @property
    def dim(self) -> int:
        """Feature size, read from the first video."""
        for video in self._data:
            return int(self._data[video]["features"].shape[-1])
        return 0

    def read(self, video: str) -> tuple[np.ndarray, np.ndarray]:
        """One video's rows.

        Returns:
            ``(intervals [n, 2], features [n, D])`` in the file's dtypes and row order.
        """
        if video not in self._data:
            raise DataError(f"{self.path}: video '{video}' not found")
        group = self._data[video]
        try:
            intervals = group["intervals"][()]
            features = group["features"][()]
        except KeyError as e:
            raise DataError(
                f"{self.path}: video '{video}': expected datasets 'features' and 'intervals', "
                f"found {sorted(group.keys())}"
            ) from e
        if features.ndim == 1:
            features = features[:, None]
        if intervals.ndim != 2 or intervals.shape[1] != 2 or len(intervals) != len(features):
            raise DataError(
                f"{self.path}: video '{video}': expected intervals [n, 2] matching features [n, D], "
                f"found intervals {intervals.shape} and features {features.shape}"
            )
        return intervals, features


def inspect_csd(
    paths: Sequence[str], jsonl: bool = False, limit: int | None = None, out: TextIO | None = None
) -> None:
    """Describe ``.csd`` files: root name, videos, rows, feature size, time span, non-finite values.

    Args:
        paths: ``.csd`` files.
        jsonl: print one JSON object per video (``{"file", "video", "rows", "dim", "start", "end",
            "nonfinite"}``) instead of a summary.
        limit: at most this many videos per file (all when None).
        out: where to write (stdout by default).
    """
    out = out or sys.stdout
    for path in paths:
        with CsdFile(path) as seq:
            videos = seq.videos()
            shown = videos if limit is None else videos[:limit]
            rows = 0
            nonfinite = 0
            for video in shown:
                intervals, features = seq.read(video)
                bad = int(np.size(features) - np.count_nonzero(np.isfinite(features)))
                rows += len(features)
                nonfinite += bad
                if jsonl:
                    record = {
                        "file": path,
                        "video": video,
                        "rows": len(features),
                        "dim": int(features.shape[1]),
                        "start": float(intervals[:, 0].min()) if len(intervals) else None,
                        "end": float(intervals[:, 1].max()) if len(intervals) else None,
                        "nonfinite": bad,
                    }
                    out.write(json.dumps(record) + "\n")
            if not jsonl:
                meta = seq.metadata
                note = "" if len(shown) == len(videos) else f" (first {len(shown)} read)"
                out.write(
                    f"{path}: CMU-MultimodalSDK computational sequence '{seq.root}'\n"
                    f"  videos: {len(videos)}{note}\n  rows: {rows}\n  dim: {seq.dim}\n"
                    f"  non-finite values: {nonfinite}\n"
                    f"  description: {meta.get('computational sequence description', '')}\n"
                )


def iter_videos(path: str) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield ``(video, intervals [n, 2], features [n, D])`` for every video of one file."""
    with CsdFile(path) as seq:
        for video in seq.videos():
            yield (video, *seq.read(video))
