"""Every shipped config loads, validates all the way down, and builds its model; every model of
every comparison preset does too (with the comparison's overrides)."""

from __future__ import annotations

from functools import lru_cache

import pytest
import torch
import yaml

from modalfuse.config import apply_overrides, build_config, load_config, load_yaml
from modalfuse.datasets import build_data
from modalfuse.datasets.base import ModalitySpec, TaskSpec
from modalfuse.listing import PRESET_DIR, compare_preset_names, preset_names
from modalfuse.models import build_model

# Data the machine may not have (CMU-MOSEI .csd files, pickles): the paper's feature sizes.
PAPER_SENTIMENT = {"text": ModalitySpec(300, 50), "audio": ModalitySpec(74, 50), "video": ModalitySpec(35, 50)}
OFFLINE = ("synthetic", "mosi", "mosi-words", "yt8m")  # bundled with the package: built for real


@lru_cache(maxsize=None)
def _specs(data_yaml: str) -> tuple[dict[str, ModalitySpec], TaskSpec]:
    section = yaml.safe_load(data_yaml)
    if section["name"] in OFFLINE:
        data = build_data(section)
        return data.modalities, data.task
    return PAPER_SENTIMENT, TaskSpec("multiclass", 3)


def _build(cfg) -> torch.nn.Module:
    specs, task = _specs(yaml.safe_dump(cfg.data))
    with torch.device("meta"):  # sizes only: paper-size presets would need GBs
        return build_model(cfg.model, specs, task)


@pytest.mark.parametrize("name", preset_names())
def test_every_training_preset_loads_and_builds(name: str) -> None:
    path = PRESET_DIR / f"{name}.yaml"
    assert path.read_text().startswith("# modalfuse "), f"{name}: the first line must be the command that runs it"
    model = _build(load_config(path))
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize("name", compare_preset_names())
def test_every_comparison_preset_model_loads_and_builds(name: str) -> None:
    preset = load_yaml(PRESET_DIR / "compare" / f"{name}.yaml")
    assert preset["models"], name
    for label, entry in preset["models"].items():
        entry = {"config": entry} if isinstance(entry, str) else entry
        raw = load_yaml(PRESET_DIR / f"{entry['config']}.yaml")
        raw = apply_overrides(raw, list(entry.get("overrides") or []) + list(preset.get("overrides") or []))
        _build(build_config(raw))
