"""Datasets: registered builders that turn a ``data`` config section into a ``DataBundle``."""

from __future__ import annotations

from typing import Any

from .base import ArrayDataset, Batch, BatchStream, DataBundle, ModalitySpec, TaskSpec, collate_samples


def build_data(section: dict[str, Any]) -> DataBundle:
    """Build the dataset named in a resolved ``data`` config section."""
    from .. import plugins
    from ..config import entry_params
    from ..registry import DATASETS
    from ..schema import Resolved

    plugins.load()
    # a section build_config validated carries its typed params; any other dict is validated here
    params = section.params if isinstance(section, Resolved) and section.params is not None else entry_params(section, DATASETS)
    return DATASETS.get(section["name"])(params)


__all__ = ["ArrayDataset", "Batch", "BatchStream", "DataBundle", "ModalitySpec", "TaskSpec", "build_data", "collate_samples"]
