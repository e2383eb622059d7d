"""Strict JSON lines for ``inspect --jsonl``: NaN and +-inf become ``null`` (JSON has no such numbers)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float (also inside lists, tuples, dicts, arrays) replaced by None."""
    if isinstance(value, np.ndarray):  # whole arrays at once: frame-level records hold 10^5 values
        if value.dtype.kind in "fc" and not np.isfinite(value).all():
            obj = value.astype(object)
            obj[~np.isfinite(value)] = None
            return obj.tolist()
        return value.tolist()
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def json_line(record: dict[str, Any]) -> str:
    """One JSON object and a newline; never writes bare ``NaN``/``Infinity``."""
    return json.dumps(finite_or_none(record), allow_nan=False) + "\n"
