"""CMU-MultimodalSDK alignment: ``.csd`` sequences aligned to the label segments, as a packed dataset.

Used by ``modalfuse prepare cmu-sdk`` (once, into a file kept for repeated runs) and by the
``cmu-sdk`` dataset (on the fly, into a temporary file).

Alignment reproduces the SDK's ``mmdataset.align(REF, collapse_functions=[mean])`` followed by
``mmdataset.align(labels)``, video by video, with numpy instead of a Python loop per segment:

1. *Word alignment* (``--align-to NAME``): every reference interval shorter than ``EPS`` (1e-3 s) is
   dropped. Every other sequence's rows ``[s0, s1]`` are matched to a reference interval ``[r0, r1]``
   when ``r1 - s0 > -EPS`` and ``s1 - r0 > -EPS``, clipped to ``[max(s0, r0), min(s1, r1)]`` and kept
   when the clipped length exceeds ``EPS``; the kept rows collapse to their plain mean and to the
   interval ``[min, max]`` of their clipped ends. A reference step with no kept row in a sequence is
   absent from that sequence (as in the SDK).
2. *Segment alignment* (to the labels): the word-level rows of each sequence, sorted by start time
   (stable), are matched to each label segment by the same test, without collapsing. A segment is
   named ``video[k]``, ``k`` its row in the labels file.

With ``--align-to labels`` only step 2 runs, *with* the mean collapse: one vector per segment
(utterance-level features). Videos missing from any file are skipped (the SDK's ``unify``), and a
segment with no row in some sequence is dropped (counted in the summary).

The packed dataset it writes is described in ``modalfuse.readers.packed``; the ``.csd`` reader is
``modalfuse.readers.csd``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from typing import Any

import numpy as np

from ..errors import DataError, UserError
from .csd import CsdFile
from .packed import FORMAT, VERSION, PackedWriter

EPS = 1e-3  # the SDK's ``epsilon = 10e-4`` (seconds)
_MAX_PAIRS = 1 << 22  # candidate (reference, row) pairs handled at once: bounds memory per step


# ----------------------------------------------------------------------------- alignment kernels


def _match(ref: np.ndarray, sub: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (reference interval, row) that the SDK's ``__intersect_and_copy`` keeps.

    Args:
        ref: reference intervals ``[R, 2]``.
        sub: row intervals ``[S, 2]``, sorted by start time.

    Returns:
        ``(ref_index [P], sub_index [P], clipped [P, 2])``, grouped by reference (ascending) and by
        row (ascending) within each reference.
    """
    rt = np.result_type(ref.dtype, sub.dtype)
    eps = rt.type(EPS)  # the SDK compares in the arrays' own precision
    s0 = sub[:, 0]
    # Candidates by binary search on a slightly wider window (a superset), then the SDK's exact test
    # on the candidates only: O(rows) work instead of O(refs * rows).
    hi = np.searchsorted(s0, ref[:, 1].astype(np.float64) + 2 * EPS, side="right")
    reach = np.maximum.accumulate(sub[:, 1]) if len(sub) else sub[:, 1]
    lo = np.searchsorted(reach, ref[:, 0].astype(np.float64) - 2 * EPS, side="right")
    lo = np.minimum(lo, hi)
    counts = hi - lo
    outs_r, outs_s, outs_c = [], [], []
    start = 0
    total = np.cumsum(counts)
    while start < len(ref):
        # Chunk references so that a pathological file (one interval spanning the video) cannot
        # create refs * rows pairs at once.
        base = total[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(total, base + _MAX_PAIRS, side="right")))
        c = counts[start:stop]
        n = int(c.sum())
        ri = np.repeat(np.arange(start, stop), c)
        si = np.arange(n) - np.repeat(np.cumsum(c) - c, c) + np.repeat(lo[start:stop], c)
        r = ref[ri].astype(rt, copy=False)
        s = sub[si].astype(rt, copy=False)
        ok = ((r[:, 1] - s[:, 0]) > -eps) & ((s[:, 1] - r[:, 0]) > -eps)
        clipped = np.stack([np.maximum(s[:, 0], r[:, 0]), np.minimum(s[:, 1], r[:, 1])], axis=1)
        ok &= np.abs(clipped[:, 0] - clipped[:, 1]) > eps
        outs_r.append(ri[ok])
        outs_s.append(si[ok])
        outs_c.append(clipped[ok])
        start = stop
    if not outs_r:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 2), rt)
    return np.concatenate(outs_r), np.concatenate(outs_s), np.concatenate(outs_c)


def _sort_rows(intervals: np.ndarray, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # The SDK sorts each video's rows by start time with Python's (stable) ``sorted``.
    order = np.argsort(intervals[:, 0], kind="stable")
    if np.all(order[1:] > order[:-1]):
        return intervals, features
    return intervals[order], features[order]


def _collapse(
    n_ref: int, ri: np.ndarray, si: np.ndarray, clipped: np.ndarray, features: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of the matched rows per reference interval and ``[min, max]`` of their clipped ends.

    Returns:
        ``(present [R] bool, intervals [R, 2], means [R, D] float32)``; rows of absent references
        are undefined.
    """
    counts = np.bincount(ri, minlength=n_ref)
    present = counts > 0
    dim = features.shape[1]
    means = np.zeros((n_ref, dim), np.float32)
    spans = np.zeros((n_ref, 2), np.float64)
    if len(ri):
        starts = np.flatnonzero(np.r_[True, ri[1:] != ri[:-1]])
        # reduceat over contiguous groups, summed in float64: +-inf and NaN propagate exactly as in
        # numpy.average (which the SDK calls), with no cumulative-sum cancellation.
        sums = np.add.reduceat(features[si], starts, axis=0, dtype=np.float64)
        means[present] = (sums / counts[present][:, None]).astype(np.float32)
        spans[present, 0] = np.minimum.reduceat(clipped.min(axis=1), starts)
        spans[present, 1] = np.maximum.reduceat(clipped.max(axis=1), starts)
    return present, spans, means


def _keep_reference(intervals: np.ndarray) -> np.ndarray:
    # The SDK skips reference intervals shorter than epsilon (compared in their own precision).
    return np.abs(intervals[:, 0] - intervals[:, 1]) >= intervals.dtype.type(EPS)


def align_video(
    sequences: dict[str, tuple[np.ndarray, np.ndarray]],
    labels: tuple[np.ndarray, np.ndarray],
    align_to: str,
) -> dict[str, Any]:
    """Align one video's sequences to its label segments (through ``align_to`` unless "labels").

    Args:
        sequences: ``{name: (intervals [n, 2], features [n, D])}``.
        labels: ``(intervals [K, 2], values [K, L])`` from the labels file.
        align_to: a name in ``sequences`` (word-level, then segments) or ``"labels"``.

    Returns:
        ``{"segments": int64 [N] (label rows kept), "labels": [N, L], "intervals": [N, 2],
        "features": {name: (rows [sum T_i, D] float32, lengths [N] int64)},
        "short": segments dropped for length, "missing": segments dropped for a missing sequence}``.
    """
    # Step 1: word-level sequences (collapsed to the reference's steps).
    if align_to == "labels":
        words = {name: _sort_rows(*seq) for name, seq in sequences.items()}
        collapse = True
    else:
        ref_iv, ref_ft = sequences[align_to]
        keep = _keep_reference(ref_iv)
        ref_iv = ref_iv[keep]
        words = {}
        for name, (iv, ft) in sequences.items():
            if name == align_to:
                # The SDK copies the reference's own row; collapsing one row spans [min, max].
                span = np.stack([ref_iv.min(axis=1), ref_iv.max(axis=1)], axis=1)
                words[name] = _sort_rows(span, ref_ft[keep].astype(np.float32))
                continue
            iv, ft = _sort_rows(iv, ft)
            present, spans, means = _collapse(len(ref_iv), *_match(ref_iv, iv), ft)
            # Word entries enter the next step in word order, then sorted by start (stable).
            words[name] = _sort_rows(spans[present], means[present])
        collapse = False

    # Step 2: label segments.
    seg_iv, seg_values = labels
    keep = np.flatnonzero(_keep_reference(seg_iv))
    seg_ref = seg_iv[keep]
    have = np.ones(len(keep), bool)
    parts: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for name, (iv, ft) in words.items():
        ri, si, clipped = _match(seg_ref, iv)
        if collapse:
            present, _, means = _collapse(len(seg_ref), ri, si, clipped, ft)
            parts[name] = (present, means, present.astype(np.int64))
        else:
            lengths = np.bincount(ri, minlength=len(seg_ref))
            parts[name] = (lengths > 0, ft[si].astype(np.float32, copy=False), lengths)
        have &= parts[name][0]
    out_features = {}
    for name, (present, rows, lengths) in parts.items():
        if collapse:
            out_features[name] = (rows[have], np.ones(int(have.sum()), np.int64))
        else:
            # Rows are grouped by segment; keep the groups of segments every sequence covers.
            row_seg = np.repeat(np.arange(len(seg_ref)), lengths)
            out_features[name] = (rows[have[row_seg]], lengths[have].astype(np.int64))
    return {
        "segments": keep[have],
        "labels": np.asarray(seg_values, np.float32).reshape(len(seg_iv), -1)[keep[have]],
        "intervals": np.asarray(seg_iv[keep[have]], np.float64),
        "features": out_features,
        "short": int(len(seg_iv) - len(keep)),
        "missing": int((~have).sum()),
    }


# ----------------------------------------------------------------------------- per-video workers

_OPEN: dict[str, CsdFile] = {}


def _open(path: str) -> CsdFile:
    # One handle per file per process, opened on first use (h5py handles do not survive fork).
    if path not in _OPEN:
        _OPEN[path] = CsdFile(path)
    return _OPEN[path]


def _close_all() -> None:
    for f in _OPEN.values():
        f.close()
    _OPEN.clear()


def _work(task: tuple[str, dict[str, str], str, str]) -> tuple[str, dict[str, Any]]:
    video, sequences, labels, align_to = task
    seqs = {name: _open(path).read(video) for name, path in sequences.items()}
    result = align_video(seqs, _open(labels).read(video), align_to)
    return video, result


def _shared_videos(sequences: dict[str, str], labels: str) -> tuple[list[str], int, dict[str, int], int]:
    """``(videos in the labels and every sequence, sorted; how many videos are not in all; the
    sequences' feature sizes; the labels' size)``. Every handle is closed again before workers fork.

    Raises:
        DataError: no video is shared by all files.
    """
    video_sets = []
    dims = {}
    for name, path in sequences.items():
        with CsdFile(path) as seq:
            video_sets.append(set(seq.videos()))
            dims[name] = seq.dim
    with CsdFile(labels) as lab:
        label_videos = lab.videos()
        label_dim = lab.dim
    shared = set(label_videos).intersection(*video_sets)
    every = set(label_videos).union(*video_sets)
    if not shared:
        raise DataError(
            f"{labels}: no video is shared by the labels and every sequence "
            f"({', '.join(f'{n}={p}' for n, p in sequences.items())})"
        )
    return sorted(shared), len(every - shared), dims, label_dim


def _write_videos(writer: Any, results: Any, dims: dict[str, int], sequences: dict[str, str],
                  counts: dict[str, int]) -> None:
    """Add each aligned video to the packed file, checking its feature sizes, and count what was dropped."""
    for video, result in results:
        for name, (rows, _) in result["features"].items():
            if rows.shape[1] != dims[name]:
                raise DataError(
                    f"{sequences[name]}: video '{video}': expected {dims[name]} features per row "
                    f"(as in the file's first video), found {rows.shape[1]}"
                )
        writer.add(video, result)
        counts["short_segment"] += result["short"]
        counts["missing_modality"] += result["missing"]


def align_csd(
    sequences: dict[str, str],
    labels: str,
    align_to: str,
    out: str,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Align ``.csd`` sequences to the label segments and write a packed dataset to ``out``.

    Args:
        sequences: ``{name: path.csd}``, e.g. ``{"text": "glove.csd", "audio": "covarep.csd"}``.
        labels: the labels ``.csd`` (one row per opinion segment; column 0 the sentiment score).
        align_to: a name in ``sequences`` for word-level sequences, or ``"labels"`` for one collapsed
            vector per segment.
        out: the packed file to write (``prepare cmu-sdk`` passes a temporary name it renames).
        workers: processes aligning videos in parallel (memory grows with one video per worker).
        progress: show a progress bar over videos.

    Returns:
        A summary: ``{"out", "segments", "videos", "modalities": {name: dim}, "align_to",
        "dropped": {"short_segment", "missing_modality", "videos_not_shared"}, "seconds"}``.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    if not sequences:
        raise UserError("prepare cmu-sdk: give at least one --sequences NAME=FILE.csd")
    if align_to != "labels" and align_to not in sequences:
        raise UserError(
            f"--align-to '{align_to}': expected 'labels' or one of the sequence names "
            f"({', '.join(sorted(sequences))})"
        )
    if "labels" in sequences:
        raise UserError("--sequences: the name 'labels' is reserved for the label file")
    sequences = {name: str(p) for name, p in sequences.items()}
    labels = str(labels)
    videos, not_shared, dims, label_dim = _shared_videos(sequences, labels)
    counts = {"short_segment": 0, "missing_modality": 0, "videos_not_shared": not_shared}
    tasks = [(v, sequences, labels, align_to) for v in videos]
    writer = PackedWriter(str(out), dims, label_dim)
    pool = None
    try:
        if workers > 1:
            method = "fork" if "fork" in mp.get_all_start_methods() else None
            pool = mp.get_context(method).Pool(workers)
            results = pool.imap(_work, tasks, chunksize=1)
        else:
            results = map(_work, tasks)
        _write_videos(writer, tqdm(results, total=len(tasks), unit="video", desc="aligning", disable=not progress),
                      dims, sequences, counts)
        writer.close({
            "format": FORMAT,
            "version": VERSION,
            "align_to": align_to,
            "utterance_level": align_to == "labels",
            "modalities": json.dumps(sorted(dims)),
            "sources": json.dumps({**sequences, "labels": labels}),
        })
    except BaseException:
        if writer.h5.id.valid:
            writer.h5.close()
        raise
    finally:
        if pool is not None:
            pool.terminate()
        _close_all()
    return {
        "out": str(out),
        "segments": writer.n,
        "videos": len(videos),
        "modalities": dims,
        "align_to": align_to,
        "dropped": counts,
        "seconds": round(time.perf_counter() - t0, 3),
    }
