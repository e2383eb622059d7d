"""The importable home of the schemas ``schema.signature_schema`` builds from constructors.

``modalfuse.part_schemas.<kind>:<name>`` is the registered part's schema (``fusion:attention``):
the name pickle writes for a part's typed params, so that a validated config sent to a worker
process keeps its typed params there, rebuilt from the same registry, not validated again.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    kind, sep, part = name.partition(":")
    if not sep:
        raise AttributeError(name)
    from . import plugins
    from .registry import DATASETS, ENCODERS, FUSIONS, HEADS, METRICS, MODELS

    plugins.load()  # a plugin's parts are registered in this process too
    for registry in (DATASETS, ENCODERS, FUSIONS, HEADS, MODELS, METRICS):
        if registry.kind == kind and part in registry:
            return registry.schema(part)
    raise AttributeError(name)
