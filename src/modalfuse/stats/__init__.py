"""Statistics for comparisons: per-example predictions (``predictions``), metrics under resampling
weights (``weighted``), the difference of two models' seed-averaged metrics with a Student-t interval
(``difference``: seed variance from the per-seed metrics, the paired test-set variance from the
example bootstrap, Welch-Satterthwaite degrees of freedom), Holm-adjusted verdicts with their
minimum detectable effect (``verdicts``) and the user-facing ``compare_predictions``. Comparison
reports and robustness curves both use them."""

from __future__ import annotations

from .difference import Difference, Scores, difference, scores
from .predictions import load_predictions, save_predictions
from .verdicts import ALPHA, Comparison, compare_predictions, comparisons, holm, model_scores, verdict
from .weighted import NEUTRAL_BAND, metric_functions

__all__ = ["ALPHA", "Comparison", "Difference", "NEUTRAL_BAND", "Scores", "compare_predictions", "comparisons",
           "difference", "holm", "load_predictions", "metric_functions", "model_scores", "save_predictions", "scores", "verdict"]
