"""A tiny synthetic comparison, trained once per session and shared by the report tests."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

# Three models (unimodal, decision-level fusion, attention fusion), two seeds, 2 epochs on 64 samples.
PRESET = """\
# modalfuse compare tiny.yaml
description: tiny synthetic comparison for the tests
seeds: 2
models:
  text: {config: synthetic, overrides: ["model.modalities=[text]"]}
  late: {config: synthetic, overrides: ["model.fusion={name: late, vote: soft}"]}
  attention: {config: synthetic, overrides: ["model.fusion={name: attention, d_model: 16, heads: 2}"]}
overrides: [data.n_train=64, data.n_valid=32, data.n_test=48, train.epochs=2, train.batch_size=32,
            train.patience=null, train.warmup_epochs=0]
"""


@pytest.fixture(scope="session")
def tiny_preset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("preset") / "tiny.yaml"
    path.write_text(PRESET)
    return path


@pytest.fixture(scope="session")
def tiny_compare(tiny_preset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted comparison folder (runs + report)."""
    from modalfuse.report.compare import compare

    out = tmp_path_factory.mktemp("compare") / "tiny"
    compare([str(tiny_preset)], out=str(out), stream=io.StringIO())
    return out
