"""``tf.train.Example`` and ``tf.train.SequenceExample`` without TensorFlow: the protobuf wire format.

``parse_example`` reads a serialized message (any field order, packed or unpacked lists, unknown
fields skipped, SequenceExample feature lists); ``encode_example`` / ``encode_sequence_example``
write them (readable by TensorFlow's ``parse_example``). The TFRecord framing around records is
``tfrecord``; YouTube-8M's records (ids, labels, the fast batch parser) are ``yt8m``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

Feature = tuple[str, Any]  # ("bytes", list[bytes]) | ("float", float32[n]) | ("int64", int64[n])


class MalformedMessage(Exception):
    """The bytes are not the expected protobuf message (``parse_example`` turns it into ValueError)."""


# --------------------------------------------------------------------------- parsing


def read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end or shift > 63:
            raise MalformedMessage("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """``(field_number, wire_type, a, b)``: for length-delimited fields ``buf[a:b]`` is the payload;
    for varints ``a`` is the value; for fixed32/64 ``a`` is the value's offset."""
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 2:
            n, pos = read_varint(buf, pos, end)
            if pos + n > end:
                raise MalformedMessage(f"field {number} runs past the end of its message")
            yield number, wire, pos, pos + n
            pos += n
        elif wire == 0:
            value, pos = read_varint(buf, pos, end)
            yield number, wire, value, 0
        elif wire == 5:
            yield number, wire, pos, 0
            pos += 4
        elif wire == 1:
            yield number, wire, pos, 0
            pos += 8
        else:
            raise MalformedMessage(f"unsupported wire type {wire} for field {number}")
    if pos != end:
        raise MalformedMessage("a field runs past the end of its message")


def _decode_varints(raw: bytes) -> np.ndarray:
    """All varints of a packed run, as int64 (negative int64 values use 10 bytes)."""
    out = []
    pos, end = 0, len(raw)
    while pos < end:
        v, pos = read_varint(raw, pos, end)
        out.append(v - (1 << 64) if v >= 1 << 63 else v)
    return np.array(out, dtype=np.int64)


def _parse_feature(buf: bytes, pos: int, end: int) -> Feature:
    kind: str = "bytes"
    values: list[Any] = []
    for number, _, a, b in _fields(buf, pos, end):  # oneof: the last list present wins
        if number not in (1, 2, 3):
            continue
        kind = {1: "bytes", 2: "float", 3: "int64"}[number]
        values = []
        for inner, wire, x, y in _fields(buf, a, b):
            if inner != 1:
                continue
            if kind == "bytes" and wire == 2:
                values.append(bytes(buf[x:y]))
            elif kind == "float" and wire == 2:  # packed
                values.append(np.frombuffer(buf[x:y], "<f4"))
            elif kind == "float" and wire == 5:
                values.append(np.frombuffer(buf[x : x + 4], "<f4"))
            elif kind == "int64" and wire == 2:  # packed
                values.append(_decode_varints(bytes(buf[x:y])))
            elif kind == "int64" and wire == 0:
                values.append(np.array([x - (1 << 64) if x >= 1 << 63 else x], np.int64))
            else:
                raise MalformedMessage(f"{kind} list holds a field of wire type {wire}")
    if kind == "bytes":
        return kind, values
    dtype = np.float32 if kind == "float" else np.int64
    return kind, (np.concatenate(values).astype(dtype) if values else np.zeros(0, dtype))


def _parse_map(buf: bytes, pos: int, end: int, parse_value: Any, out: dict[str, Any]) -> None:
    """A protobuf ``map<string, V>`` (field 1 of Features / FeatureLists) into ``out``."""
    for number, wire, a, b in _fields(buf, pos, end):
        if number != 1 or wire != 2:
            continue
        key, value = "", None
        for inner, iw, x, y in _fields(buf, a, b):
            if inner == 1 and iw == 2:
                key = bytes(buf[x:y]).decode("utf-8", "replace")  # as the batch parser: both must agree
            elif inner == 2 and iw == 2:
                value = (x, y)
        out[key] = parse_value(buf, *value) if value else parse_value(buf, 0, 0)


def _parse_feature_list(buf: bytes, pos: int, end: int) -> list[Feature]:
    return [_parse_feature(buf, a, b) for number, wire, a, b in _fields(buf, pos, end) if number == 1 and wire == 2]


def parse_example(data: bytes) -> tuple[dict[str, Feature], dict[str, list[Feature]]]:
    """Parse a serialized ``Example`` or ``SequenceExample`` (same wire layout for field 1).

    Args:
        data: the record's payload.

    Returns:
        ``(features, feature_lists)``: ``features`` maps a name to ``(kind, values)`` (``Example.features``
        or ``SequenceExample.context``); ``feature_lists`` maps a name to one ``Feature`` per step
        (empty for an ``Example``).

    Raises:
        ValueError: the bytes are not such a message.
    """
    features: dict[str, Feature] = {}
    lists: dict[str, list[Feature]] = {}
    try:
        for number, wire, a, b in _fields(data, 0, len(data)):
            if number == 1 and wire == 2:
                _parse_map(data, a, b, _parse_feature, features)
            elif number == 2 and wire == 2:
                _parse_map(data, a, b, _parse_feature_list, lists)
    except (MalformedMessage, UnicodeDecodeError) as e:
        raise ValueError(str(e)) from None
    return features, lists



# --------------------------------------------------------------------------- writing


def _put_varint(out: bytearray, value: int) -> None:
    value &= (1 << 64) - 1  # negative int64 -> ten bytes, as protobuf does
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_field(out: bytearray, number: int, payload: bytes | bytearray) -> None:
    _put_varint(out, (number << 3) | 2)
    _put_varint(out, len(payload))
    out += payload


def _encode_feature(value: Any) -> bytes:
    """A ``Feature``: ``bytes``/``str`` (or a list of them) -> bytes_list; integer arrays -> int64_list;
    float arrays -> float_list (packed)."""
    inner = bytearray()
    if isinstance(value, (bytes, str)) or (
        isinstance(value, Sequence) and value and isinstance(value[0], (bytes, str))
    ):
        items = [value] if isinstance(value, (bytes, str)) else list(value)
        for v in items:
            _put_field(inner, 1, v.encode("utf-8") if isinstance(v, str) else v)
        number = 1
    else:
        arr = np.asarray(value)
        if arr.dtype.kind in "iub":
            packed = bytearray()
            for v in arr.reshape(-1).tolist():
                _put_varint(packed, int(v))
            number = 3
        else:
            packed = bytearray(np.ascontiguousarray(arr, "<f4").reshape(-1).tobytes())
            number = 2
        if packed:
            _put_field(inner, 1, packed)
    out = bytearray()
    _put_field(out, number, inner)
    return bytes(out)


def _encode_map(items: Mapping[str, bytes]) -> bytes:
    out = bytearray()
    for key, value in items.items():
        entry = bytearray()
        _put_field(entry, 1, key.encode("utf-8"))
        _put_field(entry, 2, value)
        _put_field(out, 1, entry)
    return bytes(out)


def encode_example(features: Mapping[str, Any]) -> bytes:
    """Serialize a ``tf.train.Example`` (readable by TensorFlow's ``parse_example``).

    Args:
        features: name -> value; ``bytes``/``str`` or a list of them, an integer array (int64 list) or a
            float array (float list, flattened).

    Returns:
        The serialized message.
    """
    out = bytearray()
    _put_field(out, 1, _encode_map({k: _encode_feature(v) for k, v in features.items()}))
    return bytes(out)


def encode_sequence_example(context: Mapping[str, Any], feature_lists: Mapping[str, Sequence[Any]]) -> bytes:
    """Serialize a ``tf.train.SequenceExample``; each feature list is one value per step (e.g. the
    bytes of one quantized frame)."""
    out = bytearray()
    _put_field(out, 1, _encode_map({k: _encode_feature(v) for k, v in context.items()}))
    lists = {}
    for name, steps in feature_lists.items():
        body = bytearray()
        for step in steps:
            _put_field(body, 1, _encode_feature([step] if isinstance(step, bytes) else step))
        lists[name] = bytes(body)
    _put_field(out, 2, _encode_map(lists))
    return bytes(out)



__all__ = ["Feature", "MalformedMessage", "encode_example", "encode_sequence_example", "parse_example", "read_varint"]
