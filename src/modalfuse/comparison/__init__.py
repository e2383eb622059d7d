"""Comparisons (``modalfuse.comparison``; not ``modalfuse.compare``, which is the library function):
a preset becomes a plan of runs (``plan``), every run is trained and analysed,
in parallel when asked (``runner``), optionally after an equal-budget hyperparameter search
(``tune``), and the report is rendered from the run folders (``modalfuse.report``)."""

from __future__ import annotations

from .plan import DEFAULT_PRESET, Plan, RunSpec, plan
from .runner import compare, default_jobs

__all__ = ["DEFAULT_PRESET", "Plan", "RunSpec", "compare", "default_jobs", "plan"]
