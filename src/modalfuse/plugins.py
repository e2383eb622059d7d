"""Imports every module that registers datasets, encoders, fusions, models and metrics."""

from __future__ import annotations

import importlib

# One line per registering module; each adds its entries to the registries on import.
MODULES = (
    "modalfuse.datasets.synthetic",
    "modalfuse.datasets.sentiment",
    "modalfuse.datasets.mosi_words",
    "modalfuse.datasets.yt8m",
    "modalfuse.models.encoders",
    "modalfuse.models.fusions",
    "modalfuse.models.transformer",
    "modalfuse.models.mult",
    "modalfuse.models.classifier",
    "modalfuse.models.yt8m",
    "modalfuse.metrics.classification",
    "modalfuse.metrics.sentiment",
    "modalfuse.metrics.yt8m",
)

_loaded = False


def load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for name in MODULES:
            importlib.import_module(name)
