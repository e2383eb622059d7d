"""Comparisons and reports: train a comparison (``compare``), analyse each run (``analyze_run``),
render a report from run folders (``render_report``)."""

from __future__ import annotations

from .analysis import analyze_run
from .compare import compare, plan
from .render import render_report

__all__ = ["analyze_run", "compare", "plan", "render_report"]
