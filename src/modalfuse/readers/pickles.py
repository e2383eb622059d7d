"""MMSA and MulT sentiment pickles, read through a restricted unpickler.

A pickle can run any code while it loads. ``safe_load`` resolves only numpy arrays, dtypes and
scalars and plain containers (dict, list, tuple, set, str, bytes, numbers); any other global (e.g.
``os.system`` in a ``__reduce__``) raises ``DataError`` *before* it is called, so nothing runs.

Layouts accepted (``N`` segments, ``T`` steps, any ``D``)::

    MMSA (aligned_50.pkl, unaligned_50.pkl)
      {"train" | "valid" | "test": {
          "text": [N, T, D], "audio": [N, T, D], "vision": [N, T, D],   float
          "regression_labels": [N],                                      float in [-3, 3]
          "id": [N] str "video$_$clip",
          "audio_lengths", "vision_lengths": [N] (optional: real steps, padding after them),
          "text_bert": [N, 3, T] (optional: row 1 is the text attention mask),
          ... other keys ignored (raw_text, annotations, classification_labels, ...)}}

    MulT (mosei_senti_data.pkl, mosi_data.pkl)
      {"train" | "valid" | "test": {
          "text": [N, T, D], "audio": [N, T, D], "vision": [N, T, D],   float
          "labels": [N, 1, 1] (or [N, ...]; element 0 is the sentiment score),
          "id": [N, 3] (video, start, end) or [N] str}}

``vision`` becomes the modality ``video``. Steps are real where a ``*_lengths`` entry or the text
attention mask says so, otherwise where the row is not all zeros (MulT pads with zero rows).
Segment ids become ``video[clip]`` (MMSA) or ``video[start:end]`` (MulT).
"""

from __future__ import annotations

import json
import pickle
import sys
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..errors import DataError

SPLITS = ("train", "valid", "test")
MODALITIES = {"text": "text", "audio": "audio", "vision": "video"}


def _allowed() -> dict[tuple[str, str], Any]:
    import codecs

    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 / numpy 1
    multiarray = core.multiarray
    found = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # protocol-2 pickles carry bytes as latin-1 text
        ("collections", "OrderedDict"): OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "bytearray"): bytearray,
        ("builtins", "complex"): complex,
    }
    for module in ("numpy.core", "numpy._core"):  # written by numpy 1 or numpy 2
        found[(f"{module}.multiarray", "_reconstruct")] = multiarray._reconstruct
        found[(f"{module}.multiarray", "scalar")] = multiarray.scalar
        found[(f"{module}.numeric", "_frombuffer")] = core.numeric._frombuffer
    return found


class _Restricted(pickle.Unpickler):
    def __init__(self, file: Any, path: str) -> None:
        super().__init__(file, encoding="latin1")  # latin1: Python 2 pickles of numpy arrays
        self.path = path
        self.allowed = _allowed()

    def find_class(self, module: str, name: str) -> Any:
        obj = self.allowed.get((module, name))
        if obj is None:
            raise DataError(
                f"{self.path}: refused to unpickle: it references '{module}.{name}'; only numpy "
                f"arrays and plain containers are accepted (nothing in the file was run)"
            )
        return obj


def safe_load(path: str | Path) -> Any:
    """Unpickle ``path`` allowing only numpy arrays and plain containers.

    Raises:
        DataError: the file is missing, not a pickle, or references anything else.
    """
    path = str(path)
    if not Path(path).is_file():
        raise DataError(f"{path}: file not found")
    with open(path, "rb") as f:
        try:
            return _Restricted(f, path).load()
        except DataError:
            raise
        except Exception as e:  # truncated or not a pickle at all
            raise DataError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _ids(raw: Any, n: int, path: str, split: str) -> tuple[list[str], list[str]]:
    arr = np.asarray(raw, dtype=object)
    if len(arr) != n:
        raise DataError(f"{path}: '{split}/id' has {len(arr)} entries, labels have {n}")
    ids, videos = [], []
    for row in arr:
        if np.ndim(row) == 0:
            text = _text(row)
            video, sep, clip = text.partition("$_$")  # MMSA: "video$_$clip"
            ids.append(f"{video}[{clip}]" if sep else text)
            videos.append(video)
        else:  # MulT: (video, start, end)
            parts = [_text(v) for v in np.asarray(row, dtype=object).reshape(-1)]
            ids.append(f"{parts[0]}[{':'.join(parts[1:])}]" if len(parts) > 1 else parts[0])
            videos.append(parts[0])
    return ids, videos


def _mask(split_data: dict[str, Any], key: str, x: np.ndarray) -> np.ndarray:
    t = x.shape[1]
    if f"{key}_lengths" in split_data:
        lengths = np.asarray(split_data[f"{key}_lengths"]).reshape(-1)
        return np.arange(t)[None, :] < lengths[:, None]
    if key == "text" and "text_bert" in split_data:
        bert = np.asarray(split_data["text_bert"])
        if bert.ndim == 3 and bert.shape[1] == 3 and bert.shape[2] == t:
            return bert[:, 1, :] > 0
    return np.any(x != 0, axis=-1)


def read_sentiment_pickle(path: str, layout: str | None = None) -> dict[str, dict[str, Any]]:
    """Read an MMSA or MulT pickle into per-split arrays.

    Args:
        path: the pickle.
        layout: ``"mmsa"`` (needs ``regression_labels``), ``"mult"`` (needs ``labels``) or None to
            tell from the keys.

    Returns:
        ``{split: {"features": {m: [N, T, D] float32}, "masks": {m: [N, T] bool},
        "scores": [N] float32, "ids": [N], "videos": [N]}}`` for the splits present.
    """
    data = safe_load(path)
    if not isinstance(data, dict) or not any(s in data for s in SPLITS):
        found = list(data)[:5] if isinstance(data, dict) else type(data).__name__
        raise DataError(f"{path}: expected a dict with splits train/valid/test, found {found}")
    out = {}
    for split in SPLITS:
        if split not in data:
            continue
        d = data[split]
        if not isinstance(d, dict):
            raise DataError(f"{path}: '{split}' should be a dict of arrays, found {type(d).__name__}")
        label_key = {"mmsa": "regression_labels", "mult": "labels"}.get(layout or "")
        if label_key is None:
            label_key = "regression_labels" if "regression_labels" in d else "labels"
        if label_key not in d:
            raise DataError(
                f"{path}: '{split}' has no '{label_key}' (keys: {', '.join(sorted(map(str, d)))})"
            )
        labels = np.asarray(d[label_key], np.float32)
        scores = labels.reshape(len(labels), -1)[:, 0]
        feats, masks = {}, {}
        for key, name in MODALITIES.items():
            if key not in d:
                continue
            x = np.asarray(d[key], np.float32)
            if x.ndim == 2:  # one vector per segment: a sequence of one step
                x = x[:, None, :]
            if x.ndim != 3 or len(x) != len(scores):
                raise DataError(
                    f"{path}: '{split}/{key}': expected [N={len(scores)}, T, D], found {x.shape}"
                )
            feats[name] = x
            masks[name] = _mask(d, key, x)
        if not feats:
            raise DataError(f"{path}: '{split}' has none of the keys text, audio, vision")
        if "id" in d:
            ids, videos = _ids(d["id"], len(scores), path, split)
        else:
            ids = [f"{split}[{i}]" for i in range(len(scores))]
            videos = list(ids)
        out[split] = {"features": feats, "masks": masks, "scores": scores, "ids": ids, "videos": videos}
    return out


def inspect_pickle(
    paths: Sequence[str], jsonl: bool = False, limit: int | None = None, out: TextIO | None = None
) -> None:
    """Describe MMSA/MulT pickles (safely): splits, keys and shapes; with ``jsonl`` one object per
    segment ``{"id", "split", "label", "lengths": {m: real steps}}``.

    Args:
        paths: pickle files.
        jsonl: one JSON object per segment instead of a summary.
        limit: at most this many segments per split (all when None).
        out: where to write (stdout by default).
    """
    out = out or sys.stdout
    for path in paths:
        splits = read_sentiment_pickle(path)
        if not jsonl:
            out.write(f"{path}: sentiment pickle (MMSA/MulT layout)\n")
            for split, d in splits.items():
                shapes = ", ".join(f"{m} {list(x.shape)}" for m, x in d["features"].items())
                out.write(f"  {split}: {len(d['scores'])} segments; {shapes}\n")
            continue
        for split, d in splits.items():
            n = len(d["scores"]) if limit is None else min(limit, len(d["scores"]))
            for i in range(n):
                record = {
                    "id": d["ids"][i],
                    "split": split,
                    "label": float(d["scores"][i]),
                    "lengths": {m: int(mk[i].sum()) for m, mk in d["masks"].items()},
                }
                out.write(json.dumps(record) + "\n")
