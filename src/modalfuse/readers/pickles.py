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

import math
import os
import pickle
import re
import sys
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..errors import DataError, require_file
from .jsonl import json_line

SPLITS = ("train", "valid", "test")
MODALITIES = {"text": "text", "audio": "audio", "vision": "video"}


# Pickled numpy arrays are rebuilt here from validated pieces (dtype string, shape, raw bytes) and
# never by numpy's own ``dtype.__setstate__`` / ``ndarray.__setstate__``: those trust their state, and
# a crafted state crashes the interpreter (a segfault, not an exception). The unpickler's BUILD
# opcode therefore only ever reaches the stand-ins below.
_DTYPE_SPEC = re.compile(r"^(?:[biufcUS]\d{1,9}|[?O]\d?|[bhilqBHILQefdgFDG?])$")
_MAX_NDIM = 32


def _fail(msg: str) -> DataError:
    return DataError(msg)


class _DType:
    """Stand-in for ``numpy.dtype(spec, align, copy)`` until its BUILD state (the byte order) arrives."""

    def __init__(self, spec: Any = None, align: Any = False, copy: Any = True) -> None:
        if not isinstance(spec, str) or not _DTYPE_SPEC.match(spec):
            raise _fail(f"unsupported numpy dtype {str(spec)[:40]!r} (plain numbers, strings and objects only)")
        self.spec = spec
        self.byteorder = "="

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) < 5 or state[0] not in (3, 4):
            raise _fail("malformed numpy dtype state")
        byteorder, subarray, names, fields = state[1:5]
        if byteorder not in ("<", ">", "|", "=") or subarray is not None or names is not None or fields is not None:
            raise _fail("unsupported numpy dtype state (structured and sub-array dtypes are not read)")
        self.byteorder = byteorder

    def resolve(self) -> np.dtype:
        dt = np.dtype(self.spec)
        return dt.newbyteorder(self.byteorder) if self.byteorder in "<>" and dt.itemsize > 1 and dt.kind != "O" else dt


def _as_dtype(value: Any) -> np.dtype:
    if not isinstance(value, _DType):
        raise _fail(f"expected a numpy dtype, found {type(value).__name__}")
    return value.resolve()


def _shape(value: Any) -> tuple[int, ...]:
    if (not isinstance(value, tuple) or len(value) > _MAX_NDIM
            or not all(type(v) is int and 0 <= v < 1 << 48 for v in value)):
        raise _fail(f"malformed numpy array shape {str(value)[:40]}")
    return value


def _array(dtype: np.dtype, shape: tuple[int, ...], raw: Any, fortran: bool = False) -> Any:
    """A numpy array from validated pieces, or ``_Objects`` (object arrays are filled later)."""
    n = math.prod(shape)
    order = "F" if fortran else "C"
    if dtype.kind == "O":
        if not isinstance(raw, list) or len(raw) != n:
            raise _fail(f"malformed object array: expected a list of {n} items")
        return _Objects(raw, shape, order)
    if isinstance(raw, str):  # protocol-2 pickles written by Python 2 keep bytes as latin-1 text
        raw = raw.encode("latin-1")
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != n * dtype.itemsize:
        size = len(raw) if isinstance(raw, (bytes, bytearray)) else type(raw).__name__
        raise _fail(f"malformed numpy array: shape {shape} of {dtype.str} needs {n * dtype.itemsize} bytes, found {size}")
    arr = np.frombuffer(raw, dtype=dtype).copy()
    if dtype.kind == "U":
        # code points above U+10FFFF make numpy raise SystemError (or worse) when they are read
        big = dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big")
        codes = np.frombuffer(raw, dtype=">u4" if big else "<u4")
        if codes.size and int(codes.max()) > 0x10FFFF:
            raise _fail("a unicode array holds invalid code points (above U+10FFFF)")
    return arr.reshape(shape, order=order)


class _Objects:
    """An object array's items, turned into an array once every item is itself resolved."""

    def __init__(self, items: list[Any], shape: tuple[int, ...], order: str) -> None:
        self.items, self.shape, self.order = items, shape, order


class _ArrayStub:
    """Stand-in returned by ``_reconstruct``; BUILD hands it ``(version, shape, dtype, fortran, raw)``."""

    value: Any = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) != 5:
            raise _fail("malformed numpy array state")
        _, shape, dtype, fortran, raw = state
        if not isinstance(fortran, bool):
            raise _fail("malformed numpy array state")
        self.value = _array(_as_dtype(dtype), _shape(shape), raw, fortran)


_NDARRAY = object()  # what ``numpy.ndarray`` resolves to: only valid as _reconstruct's first argument


def _reconstruct(cls: Any, shape: Any = None, typecode: Any = None) -> _ArrayStub:
    if cls is not _NDARRAY:
        raise _fail("malformed numpy array (reconstruct of something other than ndarray)")
    return _ArrayStub()


def _scalar(dtype: Any, raw: Any = None) -> Any:
    dt = _as_dtype(dtype)
    if dt.kind == "O":
        raise _fail("object scalars are not read")
    return _array(dt, (), raw)[()]


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> Any:
    if order not in ("C", "F"):
        raise _fail("malformed numpy array order")
    dt = _as_dtype(dtype)
    if dt.kind == "O":
        raise _fail("object arrays from a buffer are not read")
    return _array(dt, _shape(shape), bytes(buf) if isinstance(buf, (bytes, bytearray)) else buf, order == "F")


def _encode(text: Any, encoding: Any = "utf-8") -> bytes:
    # protocol-2 pickles carry bytes as latin-1 text; any other codec is not needed by numpy
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _fail("malformed bytes (only latin-1 text is decoded)")
    return text.encode("latin-1")


def _bytearray(value: Any = b"") -> bytearray:
    if not isinstance(value, (bytes, bytearray)):  # bytearray(10**12) would allocate a terabyte
        raise _fail("malformed bytearray")
    return bytearray(value)


def _bytes(value: Any = b"", encoding: Any = None) -> bytes:
    # protocol 2 writes b"" as bytes(); bytes(10**12) would allocate a terabyte, so ints are refused
    if isinstance(value, (bytes, bytearray)) and encoding is None:
        return bytes(value)
    if isinstance(value, str) and encoding in ("latin1", "latin-1"):
        return value.encode("latin-1")
    raise _fail("malformed bytes")


def _container(kind: type) -> Any:
    def make(value: Any = ()) -> Any:
        if not isinstance(value, (list, tuple, set, frozenset)):
            raise _fail(f"malformed {kind.__name__}")
        return kind(value)

    return make


def _complex(real: Any = 0.0, imag: Any = 0.0) -> complex:
    if not all(isinstance(v, (int, float)) for v in (real, imag)):
        raise _fail("malformed complex number")
    return complex(real, imag)


def _allowed() -> dict[tuple[str, str], Any]:
    found: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): _DType,
        ("_codecs", "encode"): _encode,
        ("collections", "OrderedDict"): _container(OrderedDict),
        ("builtins", "set"): _container(set),
        ("builtins", "frozenset"): _container(frozenset),
        ("builtins", "bytearray"): _bytearray,
        ("builtins", "complex"): _complex,
        ("builtins", "bytes"): _bytes,
        ("__builtin__", "bytes"): _bytes,
    }
    for module in ("numpy.core", "numpy._core"):  # written by numpy 1 or numpy 2
        found[(f"{module}.multiarray", "_reconstruct")] = _reconstruct
        found[(f"{module}.multiarray", "scalar")] = _scalar
        found[(f"{module}.numeric", "_frombuffer")] = _frombuffer
    return found


class _Capped:
    """A file whose ``read(n)`` never asks for more than the bytes left: a corrupt length field in a
    pickle (``BINUNICODE`` of 2**32 bytes) would otherwise make the unpickler allocate that much."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self._left = os.fstat(f.fileno()).st_size

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(self._left if n < 0 else min(n, self._left))
        self._left -= len(data)
        return data

    def readinto(self, buf: Any) -> int:
        view = memoryview(buf)
        n = self._f.readinto(view[: self._left]) or 0
        self._left -= n
        return n

    def readline(self, limit: int = -1) -> bytes:
        data = self._f.readline(self._left if limit < 0 else min(limit, self._left))
        self._left -= len(data)
        return data


def _check_lengths(f: Any, path: str) -> None:
    """Walk the opcodes once, reading every length-prefixed argument through ``_Capped``, before
    unpickling: CPython's unpickler allocates a ``BINBYTES``/``BINUNICODE`` buffer of the declared
    length before it reads (a 5-byte file declaring 64 MB allocated 64 MB), so a length longer than
    the rest of the file must be refused first. Costs one extra read of the file, one argument in
    memory at a time."""
    import pickletools

    try:
        for _ in pickletools.genops(_Capped(f)):
            pass
    except ValueError as e:  # genops: "expected N bytes in a ..., but only M remain", unknown opcodes
        raise DataError(f"{path}: not a readable pickle ({str(e)[:160]})") from None


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


def _resolve(value: Any, memo: dict[int, Any]) -> Any:
    """Replace the stand-ins by real arrays and dtypes, visiting each shared object once (so a
    pickle whose memo aliases one list many times costs its size, not its expansion)."""
    key = id(value)
    if key in memo:
        return memo[key]
    if isinstance(value, (str, bytes, bytearray, int, float, complex, bool, type(None), np.ndarray, np.generic)):
        return value
    if isinstance(value, _ArrayStub):
        if value.value is None:
            raise _fail("malformed numpy array (no state)")
        out = _resolve(value.value, memo)
    elif isinstance(value, _Objects):
        arr = np.empty(len(value.items), dtype=object)
        memo[key] = arr
        for i, item in enumerate(value.items):
            arr[i] = _resolve(item, memo)
        out = arr.reshape(value.shape, order=value.order)
    elif isinstance(value, _DType):
        out = value.resolve()
    elif isinstance(value, list):
        memo[key] = value
        for i, item in enumerate(value):
            value[i] = _resolve(item, memo)
        out = value
    elif isinstance(value, dict):
        memo[key] = value
        for k in list(value):
            if not isinstance(k, (str, bytes, int, float, bool, tuple, type(None))):
                raise _fail(f"malformed dict key of type {type(k).__name__}")
            value[k] = _resolve(value[k], memo)
        out = value
    elif isinstance(value, tuple):
        out = tuple(_resolve(v, memo) for v in value)
    elif isinstance(value, (set, frozenset)):
        out = type(value)(_resolve(v, memo) for v in value)
    else:
        raise _fail(f"unexpected object of type {type(value).__name__}")
    memo[key] = out
    return out


def safe_load(path: str | Path) -> Any:
    """Unpickle ``path`` allowing only numpy arrays and plain containers.

    Arrays are rebuilt from their validated dtype, shape and bytes (never through numpy's own
    ``__setstate__``); an array's bytes must match its shape, so memory stays proportional to the
    file (shared references are kept shared).

    Raises:
        DataError: the file is missing, not a pickle, references anything else, or holds malformed
            array pieces.
    """
    path = str(path)
    require_file(path, "a pickle file")
    try:
        with open(path, "rb") as f:
            _check_lengths(f, path)
            f.seek(0)
            data = _Restricted(_Capped(f), path).load()
            return _resolve(data, {})
    except DataError as e:
        msg = str(e)
        raise DataError(msg if msg.startswith(path) else f"{path}: {msg}") from None
    except RecursionError:
        raise DataError(f"{path}: not a readable pickle (nested too deeply)") from None
    except MemoryError:
        raise DataError(f"{path}: not a readable pickle (it asks for more memory than there is)") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except Exception as e:  # truncated or not a pickle at all
        raise DataError(f"{path}: not a readable pickle ({type(e).__name__}: {str(e)[:200]})") from None


def _elements(value: Any, memo: dict[int, int], depth: int = 0) -> int:
    """How many numbers ``np.asarray(value)`` would hold, counted once per shared object."""
    if isinstance(value, np.ndarray):
        return int(value.size) if value.dtype != object else sum(_elements(v, memo, depth + 1) for v in value.flat)
    if not isinstance(value, (list, tuple)):
        return 1
    if depth > _MAX_NDIM:
        raise _fail(f"lists nested more than {_MAX_NDIM} deep")
    key = id(value)
    if key not in memo:
        memo[key] = sum(_elements(v, memo, depth + 1) for v in value) if value else 1
    return memo[key]


def _to_array(value: Any, dtype: Any, path: str, where: str, budget: int) -> np.ndarray:
    """``np.asarray(value, dtype)`` for a value read from a pickle, refusing what cannot be converted
    and nested lists whose expansion exceeds ``budget`` elements (a memo bomb)."""
    if isinstance(value, np.ndarray) and value.dtype != object:
        try:
            return value.astype(dtype, copy=False)
        except (ValueError, TypeError):
            raise DataError(f"{path}: '{where}': expected numbers, found a {value.dtype} array") from None
    if isinstance(value, (str, bytes, dict)) or value is None:
        raise DataError(f"{path}: '{where}': expected an array, found {type(value).__name__}")
    n = _elements(value, {})
    if n > budget:
        raise DataError(f"{path}: '{where}': its lists expand to {n:,} elements, far more than the file holds")
    try:
        return np.asarray(value, dtype)
    except (ValueError, TypeError) as e:
        raise DataError(f"{path}: '{where}': expected a rectangular array of numbers "
                        f"({str(e).splitlines()[0][:120]})") from None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _ids(raw: Any, n: int, path: str, split: str, budget: int) -> tuple[list[str], list[str]]:
    arr = _to_array(raw, object, path, f"{split}/id", budget)
    if arr.ndim == 0 or len(arr) != n:
        raise DataError(f"{path}: '{split}/id' has {len(arr) if arr.ndim else 'no'} entries, labels have {n}")
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


def _mask(split_data: dict[str, Any], key: str, x: np.ndarray, path: str, split: str, budget: int) -> np.ndarray:
    t = x.shape[1]
    if f"{key}_lengths" in split_data:
        lengths = _to_array(split_data[f"{key}_lengths"], np.float64, path, f"{split}/{key}_lengths", budget).reshape(-1)
        if len(lengths) != len(x):
            raise ValueError(f"{len(lengths)} entries for {len(x)} segments")
        return np.arange(t)[None, :] < lengths[:, None]
    if key == "text" and "text_bert" in split_data:
        bert = _to_array(split_data["text_bert"], np.float32, path, f"{split}/text_bert", budget)
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
    # Lists are expanded by numpy; allow them as many elements as the file has bytes (plus slack for
    # tiny files): a memo-shared list repeated a million times is refused before it is expanded.
    budget = 4 * os.path.getsize(path) + 1_000_000
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
        labels = _to_array(d[label_key], np.float32, path, f"{split}/{label_key}", budget)
        if labels.ndim == 0 or len(labels) == 0 or labels.size % len(labels):
            raise DataError(f"{path}: '{split}/{label_key}': expected [N] or [N, ...] scores, found shape {labels.shape}")
        scores = labels.reshape(len(labels), -1)[:, 0]
        feats, masks = {}, {}
        for key, name in MODALITIES.items():
            if key not in d:
                continue
            x = _to_array(d[key], np.float32, path, f"{split}/{key}", budget)
            if x.ndim == 2:  # one vector per segment: a sequence of one step
                x = x[:, None, :]
            if x.ndim != 3 or len(x) != len(scores):
                raise DataError(
                    f"{path}: '{split}/{key}': expected [N={len(scores)}, T, D], found {x.shape}"
                )
            feats[name] = x
            try:
                masks[name] = _mask(d, key, x, path, split, budget)
            except (ValueError, TypeError, IndexError) as e:
                raise DataError(f"{path}: '{split}/{key}_lengths': expected [N] step counts ({str(e)[:100]})") from None
        if not feats:
            raise DataError(f"{path}: '{split}' has none of the keys text, audio, vision")
        if "id" in d:
            ids, videos = _ids(d["id"], len(scores), path, split, budget)
        else:
            ids = [f"{split}[{i}]" for i in range(len(scores))]
            videos = list(ids)
        out[split] = {"features": feats, "masks": masks, "scores": scores, "ids": ids, "videos": videos}
    return out


def inspect_pickle(paths: Sequence[str], *, jsonl: bool = False, limit: int | None = None, out: TextIO) -> None:
    """Describe MMSA/MulT pickles (safely): splits, keys and shapes; with ``jsonl`` one object per
    segment ``{"id", "split", "label", "lengths": {m: real steps}}``.

    Args:
        paths: pickle files.
        jsonl: one JSON object per segment instead of a summary.
        limit: at most this many segments per split (all when None).
        out: where to write.
    """
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
                out.write(json_line(record))
