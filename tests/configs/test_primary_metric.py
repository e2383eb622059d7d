"""Every comparison preset declares the metric whose verdicts its report states."""

from __future__ import annotations

import pytest

from modalfuse.comparison.plan import COMPARE_DIR, _read_preset
from modalfuse.stats.weighted import metric_functions

# The metrics each task's reports put an interval on (stats.weighted).
WITH_INTERVAL = {"accuracy", "f1_weighted", "f1_macro", "gap", "hit_at_1", "perr", "f1_micro", "acc2_has0", "f1_has0",
                 "acc2_non0", "f1_non0", "acc5", "acc7", "mae", "corr", "acc3_band"}


@pytest.mark.parametrize("preset", sorted(p.stem for p in COMPARE_DIR.glob("*.yaml")))
def test_every_comparison_preset_declares_a_primary_metric_with_an_interval(preset: str) -> None:
    spec = _read_preset(COMPARE_DIR / f"{preset}.yaml")
    assert spec.get("primary") in WITH_INTERVAL, spec.get("primary")


def test_the_metric_list_above_is_what_the_report_can_bootstrap() -> None:
    import numpy as np

    y = np.array([0, 1, 2, 1])
    names = set(metric_functions("multiclass", {"scores": np.eye(3)[y], "labels": y}))
    names |= set(metric_functions("regression", {"scores": y * 1.0, "labels": y * 1.0}))
    assert names <= WITH_INTERVAL and {"gap", "hit_at_1", "perr", "f1_micro"} <= WITH_INTERVAL
