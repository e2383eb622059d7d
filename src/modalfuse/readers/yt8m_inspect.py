"""``modalfuse inspect`` for TFRecord shards: a summary per file, or one JSON line per record."""

from __future__ import annotations

from collections import Counter
from typing import TextIO

import numpy as np

from .jsonl import json_line
from .tfrecord import ReadStats, read_records
from .yt8m import FRAME_FEATURES, decode_record, dequantize


def inspect_tfrecords(
    paths: list[str], *, jsonl: bool = False, limit: int | None = None, vocabulary: str | None = None,
    out: TextIO,
) -> None:
    """Dump (``jsonl``) or summarise TFRecord shards of ``tf.train.Example``/``SequenceExample``.

    With ``jsonl`` each record becomes one line
    ``{"id": ..., "labels": [...], "features": {name: [floats] or [[floats per frame]]}}``; frame-level
    uint8 bytes are shown dequantized. Without it, a summary per file: record count, feature names and
    sizes, and the most frequent labels (with vocabulary names).

    Args:
        paths: TFRecord files.
        jsonl: one JSON object per record instead of a summary.
        limit: at most this many records per file.
        vocabulary: vocabulary CSV for label names; default: the bundled YouTube-8M 2018 vocabulary.
        out: where to write.
    """
    from .vocabulary import load_bundled_vocabulary, load_vocabulary

    names = load_vocabulary(vocabulary) if vocabulary else load_bundled_vocabulary()
    for path in paths:
        count = 0
        kinds: Counter[str] = Counter()
        sizes: dict[str, Counter[str]] = {}
        label_counts: Counter[int] = Counter()
        stats = ReadStats()
        for data in read_records(path, stats=stats):
            if limit is not None and count >= limit:
                break
            rec = decode_record(data, path=path, index=count)
            count += 1
            if jsonl:
                feats: dict[str, object] = {}
                for name, (kind, value) in rec.features.items():
                    if kind == "float":
                        feats[name] = np.asarray(value, np.float64)
                    elif kind == "int64":
                        feats[name] = np.asarray(value).tolist()
                    else:
                        feats[name] = [v.decode("utf-8", "replace") for v in value]
                for name, frames_u8 in rec.frames.items():
                    # round-trip through float32 so numbers print as the model will see them
                    feats[name] = dequantize(frames_u8).astype(np.float64).round(7)
                out.write(json_line({"id": rec.id, "labels": rec.labels.tolist(), "features": feats}))
                continue
            label_counts.update(rec.labels.tolist())
            for name, (kind, value) in rec.features.items():
                kinds[name] = kind
                sizes.setdefault(name, Counter())[str(len(value))] += 1
            for name, frames_u8 in rec.frames.items():
                kinds[name] = "frames"
                sizes.setdefault(name, Counter())[f"T x {frames_u8.shape[1]}"] += 1
        if jsonl:
            continue
        record_type = "SequenceExample (frame-level)" if "frames" in kinds.values() else "Example"
        out.write(f"{path}: {count} records{' (limit reached)' if limit is not None and count >= limit else ''}, "
                  f"{record_type}\n")
        for name in sorted(kinds):
            shown = ", ".join(f"{s} ({c})" if len(sizes[name]) > 1 else s for s, c in sizes[name].most_common(3))
            out.write(f"  {name:<14} {kinds[name]:<7} size {shown}\n")
        if label_counts:
            out.write(f"  labels: {sum(label_counts.values())} in total, {len(label_counts)} distinct; most frequent:\n")
            for label, c in label_counts.most_common(10):
                name = names[label] if names is not None and 0 <= label < len(names) else "?"
                out.write(f"    {label:>5}  {c:>6}  {name}\n")
        frames_note = [n for n in FRAME_FEATURES if n in kinds]
        if frames_note:
            out.write(f"  frame features {', '.join(frames_note)} are uint8, dequantized as q*4/255 - 2 + 4/512\n")
        if stats.skipped:
            out.write(f"  skipped {stats.skipped} corrupt records\n")
