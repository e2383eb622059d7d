"""CMU-MultimodalSDK computational sequences (``.csd``), read lazily one video at a time.

Layout accepted (HDF5, as the SDK writes it)::

    /<root>/data/<video>/features    [n, D]  float  one row per interval
    /<root>/data/<video>/intervals   [n, 2]  float  start, end in seconds
    /<root>/metadata/<key>           [1]     str    e.g. "root name", "dimension names"

``<root>`` is the file's single top-level group (the sequence's root name). Nothing is loaded until a
video is asked for, so a 10 GB COVAREP file costs one video's memory at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..errors import DataError
from .hdf5 import open_hdf5
from .jsonl import json_line


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:120]}" if text else type(e).__name__


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
        self._h5 = open_hdf5(self.path, "a CMU-MultimodalSDK computational sequence (.csd)")
        try:
            roots = list(self._h5.keys())
            ok = len(roots) == 1 and isinstance(self._h5[roots[0]], h5py.Group) \
                and isinstance(self._h5[roots[0]].get("data"), h5py.Group)
        except Exception as e:  # noqa: BLE001 - a damaged file fails inside h5py with many types
            self.close()
            raise DataError(f"{self.path}: corrupt .csd file ({_reason(e)})") from None
        if not ok:
            self.close()
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
        try:
            return list(self._data.keys())
        except Exception as e:  # noqa: BLE001
            raise DataError(f"{self.path}: corrupt .csd file: cannot list its videos ({_reason(e)})") from None

    def __contains__(self, video: str) -> bool:
        try:
            return video in self._data
        except Exception:  # noqa: BLE001 - a damaged index: treated as absent, read() names the problem
            return False

    @property
    def metadata(self) -> dict[str, Any]:
        try:
            meta = self._h5[self.root].get("metadata")
            return {k: _decode(meta[k][()]) for k in meta} if meta is not None else {}
        except Exception as e:  # noqa: BLE001
            raise DataError(f"{self.path}: corrupt .csd metadata ({_reason(e)})") from None

    @property
    def dim(self) -> int:
        """Feature size, read from the first video."""
        for video in self.videos():
            _, features = self.read(video)
            return int(features.shape[-1])
        return 0

    def read(self, video: str) -> tuple[np.ndarray, np.ndarray]:
        """One video's rows.

        Returns:
            ``(intervals [n, 2], features [n, D])`` in the file's dtypes and row order.

        Raises:
            DataError: the video is missing, or its datasets are missing, damaged or mis-shaped.
        """
        import h5py

        if video not in self:
            raise DataError(f"{self.path}: video '{video}' not found")
        try:
            group = self._data[video]
            if not isinstance(group, h5py.Group) or not all(isinstance(group.get(k), h5py.Dataset)
                                                             for k in ("intervals", "features")):
                found = sorted(group.keys()) if isinstance(group, h5py.Group) else type(group).__name__
                raise DataError(f"{self.path}: video '{video}': expected datasets 'features' and 'intervals', "
                                f"found {found}")
            intervals = group["intervals"][()]
            features = group["features"][()]
        except DataError:
            raise
        except Exception as e:  # noqa: BLE001 - damaged chunks, bad filters, truncated data
            raise DataError(f"{self.path}: video '{video}': unreadable ({_reason(e)})") from None
        if features.dtype.kind not in "fiub" or intervals.dtype.kind not in "fiu":
            raise DataError(f"{self.path}: video '{video}': expected numeric features and intervals, found "
                            f"{features.dtype} and {intervals.dtype}")
        if features.ndim == 1:
            features = features[:, None]
        if intervals.ndim != 2 or intervals.shape[1] != 2 or features.ndim != 2 or len(intervals) != len(features):
            raise DataError(
                f"{self.path}: video '{video}': expected intervals [n, 2] matching features [n, D], "
                f"found intervals {intervals.shape} and features {features.shape}"
            )
        return intervals, features


def inspect_csd(paths: Sequence[str], *, jsonl: bool = False, limit: int | None = None, out: TextIO) -> None:
    """Describe ``.csd`` files: root name, videos, rows, feature size, time span, non-finite values.

    Args:
        paths: ``.csd`` files.
        jsonl: print one JSON object per video (``{"file", "video", "rows", "dim", "start", "end",
            "nonfinite"}``) instead of a summary.
        limit: at most this many videos per file (all when None).
        out: where to write.
    """
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
                    out.write(json_line(record))
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
