"""Reports: read run folders, write report files (``render_report``); nothing else. Training and
analysing runs is ``modalfuse.comparison`` and ``modalfuse.analysis``."""

from __future__ import annotations

from .render import render_report, summary_table

__all__ = ["render_report", "summary_table"]
