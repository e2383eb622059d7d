"""Per-example predictions of a run, kept compactly in ``predictions.npz`` beside its metrics.

Reports recompute metrics and their intervals from this file, so ``modalfuse report`` needs no
model and no data. One array set per split (``<split>/<key>`` in the archive):

- ``ids``: example ids, unicode ``[N]``;
- multiclass: ``scores`` float32 ``[N, C]`` (the model's logits) and ``labels`` int64 ``[N]``;
- regression: ``scores`` float32 ``[N]`` (predicted values) and ``labels`` float32 ``[N]``;
- multilabel (YouTube-8M: ``[N, 3862]`` probabilities would be ~15 KiB per video): the top ``K``
  scores per example, ``top_index`` int32 ``[N, K]`` and ``top_score`` float32 ``[N, K]`` (descending),
  with ``K`` the largest of ``eval.top_k``, any example's label count and its count of scores at or
  above the decision threshold, so GAP, mAP, Hit@1, PERR and the F1 scores are exact; the labels as
  CSR: ``label_index`` int32 and ``label_ptr`` int64 ``[N + 1]``; ``num_classes``. Scored in batches
  (``metrics.streaming``), a row may end in padding entries (class -1, score -inf) that no metric reads.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write
from ..metrics.streaming import sorted_top


def compact(kind: str, pred: dict[str, Any], *, top_k: int = 20, threshold: float = 0.5) -> dict[str, np.ndarray]:
    """The arrays kept for one split.

    Args:
        kind: ``multiclass``, ``multilabel`` or ``regression``.
        pred: ``{"scores", "labels", "ids"}`` as the training loop's ``predict_split`` returns them
            (multiclass logits ``[N, C]``, multilabel probabilities ``[N, C]``, regression ``[N]``).
        top_k: scores per example that GAP/mAP read (multilabel).
        threshold: the F1 decision threshold (multilabel).

    Returns:
        ``{key: array}`` as described in the module docstring.
    """
    if "accumulator" in pred:  # a multilabel split scored batch by batch (training.evaluation)
        return pred["accumulator"].arrays()
    scores, labels = np.asarray(pred["scores"]), np.asarray(pred["labels"])
    out = {"ids": np.asarray([str(i) for i in pred["ids"]], dtype=np.str_)}
    if kind == "multiclass":
        return {**out, "scores": scores.astype(np.float32), "labels": labels.astype(np.int64)}
    if kind == "regression":
        return {**out, "scores": scores.reshape(-1).astype(np.float32), "labels": labels.reshape(-1).astype(np.float32)}
    n, c = scores.shape
    positive = labels > 0.5
    k = max(top_k, int(positive.sum(1).max(initial=0)), int((scores >= threshold).sum(1).max(initial=0)))
    k = min(max(k, 1), c)
    top, top_score = sorted_top(scores, k)
    rows, cols = np.nonzero(positive)
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=ptr[1:])
    return {**out, "top_index": top, "top_score": top_score,
            "label_index": cols.astype(np.int32), "label_ptr": ptr, "num_classes": np.int64(c)}


def label_arrays(kind: str, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Labels alone, compact (the training split's, for the label-prior baseline): ``labels``, or for
    multilabel ``label_index``/``label_ptr``/``num_classes``."""
    labels = np.asarray(labels)
    if kind == "multiclass":
        return {"labels": labels.astype(np.int64)}
    if kind == "regression":
        return {"labels": labels.reshape(-1).astype(np.float32)}
    rows, cols = np.nonzero(labels > 0.5)
    ptr = np.zeros(len(labels) + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=len(labels)), out=ptr[1:])
    return {"label_index": cols.astype(np.int32), "label_ptr": ptr, "num_classes": np.int64(labels.shape[1])}


def split_labels(ds: Any) -> np.ndarray | None:
    """An in-memory split's labels (``ArrayDataset.labels``); None for a streamed split, which would
    have to be read once more just for them."""
    labels = getattr(ds, "labels", None)
    return None if labels is None else np.asarray(labels)


def dense_labels(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Multi-hot ``[N, C]`` float32 from the CSR label arrays."""
    ptr, n = arrays["label_ptr"], len(arrays["label_ptr"]) - 1
    out = np.zeros((n, int(arrays["num_classes"])), np.float32)
    out[np.repeat(np.arange(n), np.diff(ptr)), arrays["label_index"]] = 1
    return out


def save_predictions(path: str | Path, kind: str, splits: dict[str, dict[str, Any]], *, top_k: int = 20,
                     threshold: float = 0.5, train_labels: np.ndarray | None = None) -> None:
    """Write ``{split: pred}`` (and the training labels, when given, as ``train/...``) to ``path``
    (compressed npz, temporary name then rename)."""
    arrays = {"kind": np.asarray(kind)}
    for split, pred in splits.items():
        for key, value in compact(kind, pred, top_k=top_k, threshold=threshold).items():
            arrays[f"{split}/{key}"] = value
    if train_labels is not None:
        for key, value in label_arrays(kind, train_labels).items():
            arrays[f"train/{key}"] = value
    path = Path(path)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write(path, buf.getvalue())


def load_predictions(path: str | Path) -> tuple[str, dict[str, dict[str, np.ndarray]]]:
    """``(kind, {split: {key: array}})`` from a ``predictions.npz`` (no pickles are loaded)."""
    with np.load(path, allow_pickle=False) as z:
        kind = str(z["kind"])
        splits: dict[str, dict[str, np.ndarray]] = {}
        for name in z.files:
            if "/" in name:
                split, key = name.split("/", 1)
                splits.setdefault(split, {})[key] = z[name]
    return kind, splits
