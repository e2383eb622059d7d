"""``modalfuse prepare yt8m-frames``: frame-level YouTube-8M shards -> video-level MF+STD shards.

The Attend-Fusion paper trains on the per-video mean and standard deviation of the frame features
(MF+STD), which the official video-level release does not contain. Each frame-level
``SequenceExample`` (context ``id``/``labels``, feature lists ``rgb`` and ``audio`` of uint8 frames)
becomes one ``Example`` with ``id``, ``labels``, ``mean_rgb``, ``std_rgb``, ``mean_audio``,
``std_audio``: the mean and the population standard deviation (ddof=0) over all frames of the
dequantized features (``x = q * 4/255 - 2 + 4/512``, as the official starter code).

One output shard per input shard, written under a temporary name and renamed when complete, so an
interrupted run leaves no half-written shard and a re-run skips the finished ones.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..readers.example import encode_example
from ..readers.yt8m import decode_record
from ..training.runfolder import atomic_write, clean_stale_temporaries, folder_lock
from ..readers.tfrecord import ReadStats, TFRecordWriter, expand_paths, read_records

FRAME_SIZES = {"rgb": 1024, "audio": 128}
_SCALE = 4.0 / 255.0
_BIAS = 4.0 / 512.0 - 2.0


def mf_std(frames_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std over frames of the dequantized features.

    Dequantization is affine, so both are computed on the uint8 values in float64 and mapped once.

    Args:
        frames_u8: uint8 ``[T, D]``, ``T >= 1``.

    Returns:
        ``(mean, std)``, float32 ``[D]`` each.
    """
    q = frames_u8.astype(np.float64)
    return (q.mean(0) * _SCALE + _BIAS).astype(np.float32), (q.std(0) * _SCALE).astype(np.float32)


def _convert_shard(src: str, dst: str, skip_corrupt: bool) -> dict[str, int]:
    """Write the MF+STD shard of one frame-level shard; returns its counts."""
    stats = ReadStats()
    written = 0

    def write(tmp: Path) -> None:
        nonlocal written
        with TFRecordWriter(tmp) as out:
            for index, data in enumerate(read_records(src, skip_corrupt=skip_corrupt, stats=stats)):
                rec = decode_record(data, path=src, index=index)
                feats: dict[str, Any] = {"id": rec.id, "labels": rec.labels}
                for name, size in FRAME_SIZES.items():
                    frames = rec.frames.get(name)
                    if frames is None or len(frames) == 0:
                        raise DataError(f"{src}: record id '{rec.id}': feature list '{name}' has no frames")
                    if frames.shape[1] != size:
                        raise DataError(
                            f"{src}: record id '{rec.id}': feature '{name}' has {frames.shape[1]} values per frame, "
                            f"expected {size}"
                        )
                    feats[f"mean_{name}"], feats[f"std_{name}"] = mf_std(frames)
                out.write(encode_example({k: feats[k] for k in
                                          ("id", "labels", "mean_rgb", "std_rgb", "mean_audio", "std_audio")}))
                written += 1

    atomic_write(dst, write)  # a finished name always holds a finished shard
    return {"records": written, "skipped_corrupt": stats.skipped}


def prepare_yt8m_frames(inputs: list[str], out_dir: str, workers: int = 1, skip_corrupt: bool = False) -> dict:
    """Convert frame-level shards to video-level MF+STD shards, in parallel and resumably.

    Args:
        inputs: frame-level TFRecord files or globs.
        out_dir: output folder; each output shard has its input's file name.
        workers: shards converted at once (processes).
        skip_corrupt: skip (and count) records with a bad CRC instead of failing.

    Returns:
        Summary: ``{"out", "shards", "converted", "already_done", "records", "skipped_corrupt"}``.

    Raises:
        DataError: a corrupt record (without ``skip_corrupt``), a frame of the wrong size or a record
            without frames, naming the file and the record.
    """
    files = expand_paths(inputs)
    names = [Path(f).name for f in files]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise DataError(f"two inputs share the file name '{sorted(dupes)[0]}': outputs would collide")
    out = Path(out_dir)
    with folder_lock(out, "output folder"):  # two conversions into one folder would race on its shards
        clean_stale_temporaries(out)  # shards of an interrupted run: converted again below
        return _convert_all(files, names, out, workers, skip_corrupt)


def _convert_all(files: list[str], names: list[str], out: Path, workers: int, skip_corrupt: bool) -> dict:
    from tqdm import tqdm

    todo = [(f, str(out / n)) for f, n in zip(files, names) if not (out / n).exists()]
    summary = {"out": str(out), "shards": len(files), "converted": 0, "already_done": len(files) - len(todo),
               "records": 0, "skipped_corrupt": 0}
    bar = tqdm(total=len(files), initial=summary["already_done"], unit="shard", desc="yt8m-frames", leave=False)
    try:
        if workers <= 1 or len(todo) <= 1:
            results = (_convert_shard(src, dst, skip_corrupt) for src, dst in todo)
            for r in results:
                _add(summary, r, bar)
        else:
            with ProcessPoolExecutor(min(workers, len(todo))) as pool:
                futures = [pool.submit(_convert_shard, src, dst, skip_corrupt) for src, dst in todo]
                try:
                    for fut in as_completed(futures):
                        _add(summary, fut.result(), bar)
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    raise
    finally:
        bar.close()
    return summary


def _add(summary: dict[str, Any], result: dict[str, int], bar: Any) -> None:
    summary["converted"] += 1
    summary["records"] += result["records"]
    summary["skipped_corrupt"] += result["skipped_corrupt"]
    bar.update(1)
