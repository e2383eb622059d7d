"""A NaN monitor (corr of a constant prediction) never becomes the best value."""

from __future__ import annotations

import math

from modalfuse.metrics import is_better

NAN = float("nan")


def test_nan_never_improves_and_anything_beats_nan() -> None:
    assert not is_better("corr", NAN, None)
    assert not is_better("corr", NAN, 0.1) and not is_better("mae", NAN, 1.0)
    assert is_better("corr", -0.5, NAN) and is_better("mae", 3.0, NAN)
    assert is_better("corr", 0.2, 0.1) and not is_better("mae", 0.2, 0.1) and is_better("corr", 0.1, None)
    assert math.isnan(NAN)
