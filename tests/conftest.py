"""Shared fixtures: the real data in ../shared (tests that need it skip cleanly without it)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; skips the test when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"real data not found at {SHARED} (../shared is absent)")
    return SHARED


# A tiny synthetic comparison, trained once per session and shared by the compare and report tests.
# Three models (unimodal, decision-level fusion, attention fusion), two seeds, 2 epochs on 64 samples.
PRESET = """\
# modalfuse compare tiny.yaml
description: tiny synthetic comparison for the tests
seeds: 2
models:
  text: {config: synthetic, overrides: ["model.modalities=[text]"]}
  late: {config: synthetic, overrides: ["model.head={name: vote, vote: soft}"]}
  attention: {config: synthetic, overrides: ["model.fusion={name: attention, d_model: 16, heads: 2}"]}
overrides: [data.n_train=64, data.n_valid=32, data.n_test=48, train.epochs=2, train.batch_size=32,
            train.patience=null, train.warmup_epochs=0]
tune:
  train.learning_rate: {low: 1.0e-3, high: 1.0e-1, log: true}
"""


def tiny_preset_path(base: Path) -> Path:
    path = base / "preset" / "tiny.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(PRESET)
    return path


def tiny_compare_folder(base: Path, preset: Path) -> Path:
    from modalfuse.comparison import compare

    out = base / "compare" / "tiny"
    compare([str(preset)], out=str(out), stream=io.StringIO())
    return out


@pytest.fixture(scope="session")
def tiny_preset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_preset_path(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def tiny_compare(tiny_preset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted comparison folder (runs + report)."""
    return tiny_compare_folder(tmp_path_factory.getbasetemp(), tiny_preset)
