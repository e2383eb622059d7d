"""YouTube-8M records: video-level ``Example`` and frame-level ``SequenceExample`` shards.

Two parsers over the protobuf wire format (``example``) inside TFRecord framing (``tfrecord``):

- ``decode_record``: a general per-record parser, used by ``inspect``, ``prepare`` and as the fallback.
- ``parse_video_records``: a batch parser for video-level shards that walks the wire format of all
  records of a shard at once with numpy. Written by hand because per-record Python parsing (and the
  ``protobuf`` package plus list-to-array conversion) measured 3-10x slower than TensorFlow's C++
  ``parse_example``; records whose layout it does not cover go to ``decode_record``, so both parsers
  accept the same inputs (feature names that are not valid UTF-8 decode with replacement in both).

Frame-level features are uint8 bytes, dequantized as the official starter code does
(``x = q * 4/255 - 2 + 4/512``, see ``dequantize``). ``inspect_tfrecords`` summarises or dumps shards
and returns its text; it never prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DataError
from .example import Feature, MalformedMessage, parse_example, read_varint
from .tfrecord import ReadStats, frames, open_buffer

FRAME_FEATURES = ("rgb", "audio")
# feature name -> size of the official YouTube-8M video-level features (the 2017 release adds nothing)
VIDEO_FEATURE_SIZES = {"mean_rgb": 1024, "mean_audio": 128, "std_rgb": 1024, "std_audio": 128}


@dataclass
class Record:
    """One decoded YouTube-8M record.

    Attributes:
        id: the video id (``id``, or ``video_id`` in the 2017 release).
        labels: class indices, int64 ``[L]``.
        features: every other context feature: name -> ``(kind, values)``.
        frames: frame-level features: name -> uint8 ``[T, D]`` (quantized; see ``dequantize``).
    """

    id: str
    labels: np.ndarray
    features: dict[str, Feature] = field(default_factory=dict)
    frames: dict[str, np.ndarray] = field(default_factory=dict)


def _pick_id(features: dict[str, Feature], id_key: str) -> str | None:
    keys = ("id", "video_id") if id_key == "auto" else (id_key,)
    for key in keys:
        if key in features and features[key][0] == "bytes" and features[key][1]:
            return features[key][1][0].decode("utf-8", "replace")
    return None


def decode_record(
    data: bytes, *, path: str = "<bytes>", index: int = 0, id_key: str = "auto", label_key: str = "labels"
) -> Record:
    """Decode one video-level ``Example`` or frame-level ``SequenceExample``.

    Args:
        data: the record's payload.
        path, index: the file and the record's position in it, for error messages.
        id_key: the id feature; ``"auto"`` accepts ``id`` and the 2017 release's ``video_id``.
        label_key: the int64 label feature.

    Returns:
        A ``Record``; frame features are uint8 ``[T, D]``.

    Raises:
        DataError: not an Example, no id, or frames of unequal size.
    """
    try:
        features, lists = parse_example(data)
    except ValueError as e:
        raise DataError(f"{path}: record {index} is not a valid tf.train.Example/SequenceExample ({e})") from None
    vid = _pick_id(features, id_key)
    if vid is None:
        wanted = "'id' or 'video_id'" if id_key == "auto" else f"'{id_key}'"
        raise DataError(f"{path}: record {index} has no {wanted} bytes feature (found: {', '.join(sorted(features))})")
    labels = features.get(label_key, ("int64", np.zeros(0, np.int64)))
    if labels[0] != "int64":
        raise DataError(f"{path}: record {index} (id '{vid}'): '{label_key}' is a {labels[0]} list, expected int64")
    rest = {k: v for k, v in features.items() if k not in ("id", "video_id", id_key, label_key)}
    frames: dict[str, np.ndarray] = {}
    for name, steps in lists.items():
        values = [v for kind, vs in steps if kind == "bytes" for v in vs]
        if len(values) != len(steps):
            raise DataError(f"{path}: record {index} (id '{vid}'): feature list '{name}' is not one bytes value per frame")
        sizes = {len(v) for v in values}
        if len(sizes) > 1:
            raise DataError(
                f"{path}: record {index} (id '{vid}'): frames of '{name}' have different sizes {sorted(sizes)}"
            )
        width = sizes.pop() if sizes else 0
        frames[name] = np.frombuffer(b"".join(values), np.uint8).reshape(len(values), width)
    return Record(vid, labels[1], rest, frames)


def dequantize(q: np.ndarray) -> np.ndarray:
    """uint8 -> float32 as the official starter code: ``q * 4/255 + (4/512 - 2)`` (range [-2, 2]).

    Args:
        q: uint8 array of any shape, e.g. ``[T, 1024]``.

    Returns:
        float32 array of the same shape.
    """
    return (q.astype(np.float32) * np.float32(4.0 / 255.0) + np.float32(4.0 / 512.0 - 2.0)).astype(np.float32)


# --------------------------------------------------------------------------- batch parser

_AR5 = np.arange(5, dtype=np.int64)
_SHIFTS = 7 * _AR5
_MAX_KEY = 64


def _at(b: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return b[np.minimum(pos, len(b) - 1)]


def _vvarint(b: np.ndarray, pos: np.ndarray, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode one length/tag varint at each of ``pos`` (vectorised; at most 5 bytes, i.e. < 2**35).

    Returns ``(value, next_pos, bad)``; ``bad`` marks varints longer than 5 bytes or running past
    ``limit`` (those records go to the general parser)."""
    win = b[np.minimum(pos[:, None] + _AR5, len(b) - 1)]
    more = win >= 0x80
    nbytes = np.argmin(more, axis=1) + 1
    value = (((win & 0x7F).astype(np.int64) << _SHIFTS) * (_AR5 < nbytes[:, None])).sum(1)
    nxt = pos + nbytes
    return value, nxt, more.all(1) | (nxt > limit)


@dataclass
class VideoBatch:
    """Video-level records as arrays.

    Attributes:
        ids: ``N`` video ids.
        label_values, label_offsets: labels in CSR form; record ``i`` has
            ``label_values[label_offsets[i]:label_offsets[i + 1]]`` (int64 ``[M]``, int64 ``[N + 1]``).
        features: name -> float32 ``[N, D]``.
        path: the shard the records came from.
        skipped: corrupt records skipped while reading.
    """

    ids: list[str]
    label_values: np.ndarray
    label_offsets: np.ndarray
    features: dict[str, np.ndarray]
    path: str = ""
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    def labels(self, i: int) -> np.ndarray:
        return self.label_values[self.label_offsets[i] : self.label_offsets[i + 1]]

    def multi_hot(self, num_classes: int, dtype: Any = np.float32) -> np.ndarray:
        """Multi-hot labels ``[N, num_classes]``.

        Raises:
            DataError: a label outside ``[0, num_classes)``, naming the file and the record's id.
        """
        out = np.zeros((len(self.ids), num_classes), dtype)
        bad = np.flatnonzero((self.label_values < 0) | (self.label_values >= num_classes))
        if bad.size:
            row = int(np.searchsorted(self.label_offsets, bad[0], side="right")) - 1
            raise DataError(
                f"{self.path}: record id '{self.ids[row]}': label {int(self.label_values[bad[0]])} is outside "
                f"0..{num_classes - 1} (num_classes={num_classes}; 3862 for the 2018 release, 4716 for 2017)"
            )
        rows = np.repeat(np.arange(len(self.ids)), np.diff(self.label_offsets))
        out[rows, self.label_values] = 1
        return out

    def slice(self, a: int, b: int) -> VideoBatch:
        lo, hi = int(self.label_offsets[a]), int(self.label_offsets[b])
        return VideoBatch(
            self.ids[a:b], self.label_values[lo:hi], self.label_offsets[a : b + 1] - lo,
            {k: v[a:b] for k, v in self.features.items()}, self.path, 0,
        )

    @staticmethod
    def concat(batches: Sequence[VideoBatch]) -> VideoBatch:
        if not batches:
            return VideoBatch([], np.zeros(0, np.int64), np.zeros(1, np.int64), {})
        counts = np.concatenate([np.diff(b.label_offsets) for b in batches])
        names = batches[0].features.keys()
        return VideoBatch(
            [i for b in batches for i in b.ids],
            np.concatenate([b.label_values for b in batches]),
            np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            {k: np.concatenate([b.features[k] for b in batches]) for k in names},
            batches[0].path if len(batches) == 1 else "",
            sum(b.skipped for b in batches),
        )


def _learn_template(b: np.ndarray, pos: int, end: int) -> list[tuple[np.ndarray, int, int, int, int, bool]] | None:
    """The entry layout of one record's ``Features`` message: per entry ``(header bytes, key offset,
    key length, kind tag, data length, small)``; ``small`` = every length fits one varint byte, so other
    records may differ in data length. ``None`` if the record is not in the plain layout."""
    raw = b[pos:end].tobytes()
    entries = []
    p, end = 0, len(raw)
    try:
        while p < end:
            st = p
            if raw[p] != 0x0A:
                return None
            elen, p = read_varint(raw, p + 1, end)
            eend = p + elen
            if raw[p] != 0x0A:
                return None
            klen, p = read_varint(raw, p + 1, eend)
            koff = p - st
            p += klen
            if raw[p] != 0x12:
                return None
            _, p = read_varint(raw, p + 1, eend)
            kind = raw[p]
            llen, p = read_varint(raw, p + 1, eend)
            if llen:
                if raw[p] != 0x0A:
                    return None
                dlen, p = read_varint(raw, p + 1, eend)
            else:
                dlen = 0
            if p + dlen != eend or kind not in (0x0A, 0x12, 0x1A) or klen > _MAX_KEY:
                return None
            header = np.frombuffer(raw[st:p], np.uint8).astype(np.int16)
            entries.append((header, koff, klen, kind, dlen, elen < 0x80 and llen > 0))
            p = eend
    except (MalformedMessage, IndexError):
        return None
    return entries


def _windows(b: np.ndarray, h: int) -> np.ndarray:
    """A read-only ``[len(b) - h + 1, h]`` view of every ``h``-byte window of ``b`` (no copy): indexing
    it with row offsets gathers headers with one ``take`` instead of building ``[n, h]`` indices."""
    return np.lib.stride_tricks.as_strided(b, shape=(max(len(b) - h + 1, 1), h), strides=(1, 1), writeable=False)


def _match_template(b: np.ndarray, rows: np.ndarray, pos: np.ndarray, e: np.ndarray,
                    named: list[tuple[Any, ...]]) -> np.ndarray:
    """Match ``rows`` against the first row's entry layouts (vectorised); append the entries located in
    matching rows to ``named`` as ``(name, rows, kind, data_start, data_len)`` and return which rows
    matched (the rest need the full walk).

    Map entries may come in any order, so at each position every entry layout is tried. Every header
    byte is compared; for ``small`` entries the four length bytes may differ from the layout by one
    common delta (a different number of labels), all other bytes must be equal.
    """
    template = _learn_template(b, int(pos[rows[0]]), int(e[rows[0]]))
    if template is None or len(b) < 32:
        return np.zeros(len(rows), bool)
    n = len(rows)
    q = pos[rows].copy()
    good = np.ones(n, bool)
    prepared = []
    for header, koff, klen, kind, dlen0, small in template:
        h = len(header)
        lens = np.array([1, koff + klen + 1, koff + klen + 3, h - 1]) if small else np.zeros(0, np.int64)
        fixed = np.delete(np.arange(h), lens)
        prepared.append((h, header, lens, fixed, header[fixed].astype(np.uint8).tobytes(), kind, dlen0, koff, klen))
    found: list[list[tuple[np.ndarray, ...]]] = [[] for _ in template]
    views: dict[int, np.ndarray] = {}
    last = {h: len(b) - h for h, *_ in prepared}
    for step in range(len(template)):  # each record holds as many entries as the first one
        nxt = q.copy()
        done = np.zeros(n, bool)
        # try the first record's entry at this position first: records written alike match at once
        for t in [*range(step, len(prepared)), *range(step)]:
            h, header, lens, fixed, fixed_bytes, kind, dlen0, koff, klen = prepared[t]
            cand = np.flatnonzero(good & ~done)
            if not cand.size:
                break
            view = views.get(h)
            if view is None:
                view = views[h] = _windows(b, h)
            win = view[np.minimum(q[cand], last[h])]
            if lens.size:
                body = np.ascontiguousarray(win[:, fixed])
                hit = body.view(f"V{len(fixed)}").ravel() == np.void(fixed_bytes)
                got = win[:, lens].astype(np.int64)
                delta = got[:, 3] - dlen0
                hit &= (got == header[lens] + delta[:, None]).all(1) & (header[1] + delta < 0x80)
                dl = got[hit, 3]
            else:
                hit = np.ascontiguousarray(win).view(f"V{h}").ravel() == np.void(fixed_bytes)
                dl = np.full(int(hit.sum()), dlen0, np.int64)
            idx = cand[hit]
            found[t].append((idx, q[idx] + h, dl))
            nxt[idx] = q[idx] + h + dl
            done[idx] = True
        good &= done
        q = nxt
    good &= q == e[rows]
    for (h, header, lens, fixed, fixed_bytes, kind, dlen0, koff, klen), pieces in zip(prepared, found):
        name = header[koff : koff + klen].astype(np.uint8).tobytes().decode("utf-8", "replace")
        for idx, dstart, dl in pieces:
            keep = good[idx]
            named.append((name, rows[idx[keep]], kind, dstart[keep], dl[keep]))
    return good


def _walk(b: np.ndarray, s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, ...]]]:
    """Locate every feature of every record (vectorised over records).

    Covers the layout TensorFlow writes: one ``features`` field (optionally followed by an empty field 2),
    map entries of (key, value), each non-empty list a single packed run (numbers) or one bytes value.

    Returns:
        ``ok`` (bool ``[N]``: False = use the general parser) and, per feature name,
        ``(kind_tag uint8 [N], data_start int64 [N], data_len int64 [N], present bool [N])``.
    """
    n = len(s)
    ok = (e > s) & (_at(b, s) == 0x0A)
    flen, p, bad = _vvarint(b, s + 1, e)
    # an empty field 2 may follow (these shards are written as SequenceExamples without feature lists)
    tail = e - (p + flen)
    ok &= ~bad & ((tail == 0) | ((tail == 2) & (_at(b, p + flen) == 0x12) & (_at(b, p + flen + 1) == 0)))
    e = p + flen
    pos = p.copy()
    parts: list[tuple[np.ndarray, ...]] = []
    named: list[tuple[Any, ...]] = []
    rows = np.flatnonzero(ok & (pos < e))
    if rows.size:  # records laid out like the first one: a few checks per entry instead of a full walk
        matched = _match_template(b, rows, pos, e, named)
        rows = rows[~matched]
    while rows.size:
        q, lim = pos[rows], e[rows]
        good = _at(b, q) == 0x0A
        elen, q, bad = _vvarint(b, q + 1, lim)
        good &= ~bad
        eend = q + elen
        good &= (_at(b, q) == 0x0A) & (eend <= lim)
        klen, q, bad = _vvarint(b, q + 1, eend)
        good &= ~bad & (klen <= _MAX_KEY)
        kstart = q
        q = q + klen
        good &= _at(b, q) == 0x12
        vlen, q, bad = _vvarint(b, q + 1, eend)
        good &= ~bad & (q + vlen == eend)
        kind = _at(b, q)
        good &= (kind == 0x0A) | (kind == 0x12) | (kind == 0x1A)
        llen, q, bad = _vvarint(b, q + 1, eend)
        good &= ~bad & (q + llen == eend)
        nonempty = llen > 0
        good &= ~nonempty | (_at(b, q) == 0x0A)
        dlen, q2, bad = _vvarint(b, q + 1, eend)
        good &= ~nonempty | (~bad & (q2 + dlen == eend))
        ok[rows[~good]] = False
        g = np.flatnonzero(good)
        parts.append((rows[g], kstart[g], klen[g], kind[g], np.where(nonempty, q2, q)[g], np.where(nonempty, dlen, 0)[g]))
        pos[rows[g]] = eend[g]
        rows = rows[g]
        rows = rows[pos[rows] < e[rows]]
    if parts:  # entries found by the full walk: name them by their key bytes
        r, ks, kl, kd, ds, dl = (np.concatenate(c) for c in zip(*parts))
        keybytes = _at(b, ks[:, None] + np.arange(_MAX_KEY))
        keybytes[np.arange(_MAX_KEY) >= kl[:, None]] = 0
        keyrows = np.concatenate([keybytes, kl[:, None].astype(np.uint8)], axis=1)
        uniq, inverse = np.unique(np.ascontiguousarray(keyrows).view(f"V{_MAX_KEY + 1}").ravel(), return_inverse=True)
        inverse = inverse.ravel()
        for k, u in enumerate(uniq):
            raw = bytes(u)
            sel = inverse == k
            named.append((raw[: raw[-1]].decode("utf-8", "replace"), r[sel], kd[sel], ds[sel], dl[sel]))
    slots: dict[str, tuple[np.ndarray, ...]] = {}
    for name, r, kind, start, length in named:
        if name not in slots:
            slots[name] = (np.zeros(n, np.uint8), np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, bool))
        kind_a, start_a, len_a, present = slots[name]
        kind_a[r] = kind  # a repeated key: the later entry overwrites (protobuf map semantics)
        start_a[r] = start
        len_a[r] = length
        present[r] = True
    return ok, slots


def _packed_varints(data: Any, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decode the packed varint runs ``data[starts[i]:starts[i]+lengths[i]]`` (vectorised).

    Returns ``(values int64 [M], counts int64 [N])``; ``counts`` is -1 for a run that does not end a varint.
    """
    mv = memoryview(data)
    raw = np.frombuffer(b"".join([mv[a : a + n] for a, n in zip(starts.tolist(), lengths.tolist())]), np.uint8)
    term = raw < 0x80
    cum = np.concatenate([[0], np.cumsum(term)])
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    counts = cum[bounds[1:]] - cum[bounds[:-1]]
    ends_ok = (lengths == 0) | term[np.maximum(bounds[1:] - 1, 0)] if raw.size else lengths == 0
    counts = np.where(ends_ok, counts, -1)
    if not raw.size:
        return np.zeros(0, np.int64), counts
    last = np.flatnonzero(term)
    first = np.concatenate([[0], last[:-1] + 1])
    group = np.repeat(np.arange(len(last)), last - first + 1) if len(last) else np.zeros(0, np.int64)
    if len(group) < raw.size:  # trailing bytes without a terminator belong to no value
        raw = raw[: len(group)]
    shift = (7 * (np.arange(len(raw)) - first[group])).astype(np.uint64)
    bits = np.where(shift < 64, (raw & 0x7F).astype(np.uint64) << np.minimum(shift, 63), np.uint64(0))
    values = np.add.reduceat(bits, first).view(np.int64) if len(first) else np.zeros(0, np.int64)
    return values, counts


def parse_video_records(
    data: Any,
    starts: np.ndarray,
    lengths: np.ndarray,
    *,
    path: str | Sequence[str] = "<bytes>",
    features: Mapping[str, int] | None = None,
    id_key: str = "auto",
    label_key: str = "labels",
) -> VideoBatch:
    """Parse the video-level ``Example`` records ``data[starts[i]:starts[i]+lengths[i]]`` into arrays.

    Args:
        data: the shard's bytes (``bytes`` or ``mmap``).
        starts, lengths: each record's payload offset and length, int64 ``[N]``.
        path: the shard, or one file name per record (records of several shards), for error messages.
        features: float features to extract, name -> size; ``None`` = every float feature of the first
            record, with its size.
        id_key: ``"id"``, ``"video_id"`` or ``"auto"`` (either).
        label_key: the int64 label feature.

    Returns:
        A ``VideoBatch`` of ``N`` records.

    Raises:
        DataError: a missing id/feature or a feature of the wrong size, naming the file, the record's id
            and the feature.
    """
    starts = np.asarray(starts, np.int64)
    lengths = np.asarray(lengths, np.int64)
    n = len(starts)
    where = (lambda i: path) if isinstance(path, str) else (lambda i: path[i])  # noqa: E731
    b = np.frombuffer(data, np.uint8)
    ok, slots = _walk(b, starts, starts + lengths) if n else (np.zeros(0, bool), {})
    slow = {int(i): decode_record(bytes(data[starts[i] : starts[i] + lengths[i]]), path=where(i), index=int(i),
                                  id_key=id_key, label_key=label_key)
            for i in np.flatnonzero(~ok)}
    mv = memoryview(data)
    ids = _record_ids(mv, slots, ok, slow, n, where, id_key)
    values, offsets = _record_labels(data, slots, ok, slow, n, ids, where, label_key)
    if features is None:  # every float feature of the first record, with its size
        if n == 0:
            wanted: dict[str, int] = {}
        elif 0 in slow:
            wanted = {k: len(v) for k, (kind, v) in slow[0].features.items() if kind == "float"}
        else:
            wanted = {k: int(ln[0]) // 4 for k, (kind, st, ln, present) in slots.items()
                      if present[0] and kind[0] == 0x12}
    else:
        wanted = dict(features)
    arrays = {name: _float_feature(mv, slots, ok, slow, n, ids, where, name, size) for name, size in wanted.items()}
    mv.release()
    return VideoBatch([str(i) for i in ids], values, offsets, arrays, path if isinstance(path, str) else "")


# parse_video_records' parts. ``slots``: each field's (wire kind, start, length, present) per record from
# the fast walk; ``ok``: the records it read; ``slow``: the general parser's records; ``where(i)``: a file.

def _record_ids(mv: memoryview, slots: dict[str, Any], ok: np.ndarray, slow: dict[int, Any], n: int, where: Any,
                id_key: str) -> list[str]:
    # the 2017 release calls the id "video_id"
    ids: list[str | None] = [None] * n
    for key in (("video_id", "id") if id_key == "auto" else (id_key,)):  # later key wins: "id" preferred
        if key in slots:
            kind, st, ln, present = slots[key]
            for i in np.flatnonzero(present & ok & (kind == 0x0A) & (ln > 0)).tolist():
                ids[i] = str(mv[st[i] : st[i] + ln[i]], "utf-8", "replace")
    for i, rec in slow.items():
        ids[i] = rec.id
    missing = [i for i in range(n) if ids[i] is None]
    if missing:
        raise DataError(f"{where(missing[0])}: record {missing[0]} has no '{'id' if id_key == 'auto' else id_key}' bytes feature")
    return ids  # type: ignore[return-value]


def _record_labels(data: Any, slots: dict[str, Any], ok: np.ndarray, slow: dict[int, Any], n: int, ids: list[str],
                   where: Any, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """The labels as CSR: ``(values, offsets [N + 1])``."""
    counts = np.zeros(n, np.int64)
    values = np.zeros(0, np.int64)
    if label_key in slots:
        kind, st, ln, present = slots[label_key]
        use = present & ok
        wrong = np.flatnonzero(use & (kind != 0x1A))
        if wrong.size:
            raise DataError(f"{where(wrong[0])}: record id '{ids[wrong[0]]}': '{label_key}' is not an int64 list")
        values, cnt = _packed_varints(data, st[use], ln[use])
        if (cnt < 0).any():
            i = int(np.flatnonzero(use)[np.argmax(cnt < 0)])
            raise DataError(f"{where(i)}: record id '{ids[i]}': '{label_key}' ends inside a varint")
        counts[use] = cnt
    if slow:  # splice the general parser's labels in, in record order
        per = [values[o : o + c] for o, c in zip(np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist(), counts.tolist())]
        for i, rec in slow.items():
            per[i] = rec.labels
            counts[i] = len(rec.labels)
        values = np.concatenate(per) if per else values
    return values, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _float_feature(mv: memoryview, slots: dict[str, Any], ok: np.ndarray, slow: dict[int, Any], n: int,
                   ids: list[str], where: Any, name: str, size: int) -> np.ndarray:
    """One float feature of every record, ``[N, size]`` float32."""
    kind, st, ln, present = slots.get(name, (None, None, None, np.zeros(n, bool)))
    lacking = np.flatnonzero(ok if kind is None else ok & ~(present & (kind == 0x12)))
    if lacking.size:
        i = int(lacking[0])
        found = "absent" if kind is None or not present[i] else "not a float list"
        raise DataError(f"{where(i)}: record id '{ids[i]}': feature '{name}' is {found} (expected {size} floats)")
    wrong = np.flatnonzero(ok & (ln != 4 * size))
    if wrong.size:
        i = int(wrong[0])
        raise DataError(f"{where(i)}: record id '{ids[i]}': feature '{name}' has {ln[i] // 4} values, expected {size}")
    rows = np.flatnonzero(ok)
    if rows.size == n:
        buf = bytearray().join([mv[a : a + 4 * size] for a in st.tolist()]) if n else bytearray()
        arr = np.frombuffer(buf, "<f4").reshape(n, size)
    else:
        arr = np.zeros((n, size), np.float32)
        for i in rows.tolist():
            arr[i] = np.frombuffer(mv[st[i] : st[i] + 4 * size], "<f4")
    for i, rec in slow.items():
        feat = rec.features.get(name)
        if feat is None or feat[0] != "float":
            raise DataError(f"{where(i)}: record id '{rec.id}': feature '{name}' is absent (expected {size} floats)")
        if len(feat[1]) != size:
            raise DataError(f"{where(i)}: record id '{rec.id}': feature '{name}' has {len(feat[1])} values, expected {size}")
        arr[i] = feat[1]
    return arr


def read_video_shards(
    paths: Sequence[str],
    *,
    features: Mapping[str, int] | None = None,
    id_key: str = "auto",
    label_key: str = "labels",
    skip_corrupt: bool = False,
) -> VideoBatch:
    """Read video-level TFRecord shards into arrays (CRCs verified, see ``tfrecord.frames``).

    Several small shards are parsed in one vectorised pass: the per-pass numpy overhead is fixed, so
    this is what keeps the reader at TensorFlow's speed on shards of a few hundred records.

    Args:
        paths: the shards, read in this order.
        features: name -> size of the float features to read; ``None`` = all, sized by the first record.
        id_key, label_key: see ``parse_video_records``.
        skip_corrupt: skip (and count in ``.skipped``) records with a bad CRC instead of raising.

    Returns:
        A ``VideoBatch`` with float32 ``[N, D]`` features, records in file order.
    """
    stats = ReadStats()
    bufs, spans, owners = [], [], []
    base = 0
    for path in paths:
        buf = open_buffer(path)
        sp = np.array(list(frames(buf, path, skip_corrupt=skip_corrupt, stats=stats)), np.int64).reshape(-1, 2)
        sp[:, 0] += base
        base += len(buf)
        bufs.append(buf)
        spans.append(sp)
        owners.extend([path] * len(sp))
    data = bufs[0] if len(bufs) == 1 else b"".join(bufs)
    sp = np.concatenate(spans) if spans else np.zeros((0, 2), np.int64)
    one = len(paths) == 1
    batch = parse_video_records(data, sp[:, 0], sp[:, 1], path=paths[0] if one else owners, features=features,
                                id_key=id_key, label_key=label_key)
    batch.path = paths[0] if one else ""
    batch.skipped = stats.skipped
    return batch


def read_video_shard(path: str, **kwargs: Any) -> VideoBatch:
    """One shard; see ``read_video_shards`` for the arguments."""
    return read_video_shards([path], **kwargs)



__all__ = [
    "FRAME_FEATURES", "Record", "VIDEO_FEATURE_SIZES", "VideoBatch", "decode_record", "dequantize",
    "parse_video_records", "read_video_shard", "read_video_shards",
]
