"""Statistics for comparisons: per-example predictions (``predictions``), metrics under resampling
weights (``weighted``) and paired hierarchical bootstrap comparisons with Holm's correction
(``paired``). The statistics are numpy only; the predictions file is written through the run
folder's atomic-write helper."""

from __future__ import annotations

from .paired import ALPHA, Comparison, Replicates, bootstrap_models, comparisons, holm, verdict
from .predictions import load_predictions, save_predictions
from .weighted import NEUTRAL_BAND, metric_functions

__all__ = ["ALPHA", "Comparison", "NEUTRAL_BAND", "Replicates", "bootstrap_models",
           "comparisons", "holm", "load_predictions", "metric_functions", "save_predictions", "verdict"]
