"""Comparison presets that list ensembles: built after the runs, reported like any model."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from modalfuse.comparison import compare
from modalfuse.comparison.plan import plan
from modalfuse.errors import ConfigError

PRESET = """\
# modalfuse compare ens.yaml
description: tiny synthetic comparison with an ensemble
seeds: 2
models:
  text: {config: synthetic, overrides: ["model.modalities=[text]"]}
  fused: {config: synthetic}
ensembles:
  both: [text, fused]
overrides: [data.n_train=64, data.n_valid=32, data.n_test=48, train.epochs=2, train.batch_size=32,
            train.patience=null, train.warmup_epochs=0]
"""


def test_an_ensemble_must_list_models_of_its_preset(tmp_path: Path) -> None:
    path = tmp_path / "ens.yaml"
    path.write_text(PRESET)
    assert plan([str(path)]).ensembles == {"both": ["text", "fused"]}
    path.write_text(PRESET.replace("both: [text, fused]", "both: [text, audio]"))
    with pytest.raises(ConfigError, match=r"ensembles.both must list models of this preset"):
        plan([str(path)])


@pytest.mark.slow
def test_compare_builds_the_ensemble_and_reports_it(tmp_path: Path) -> None:
    path = tmp_path / "ens.yaml"
    path.write_text(PRESET)
    out = tmp_path / "cmp"
    compare([str(path)], out=str(out), stream=io.StringIO())
    info = json.loads((out / "compare.json").read_text())
    assert {"label": "both", "seed": 0, "folder": "ensembles/both"} in info["runs"]
    members = json.loads((out / "ensembles" / "both" / "run.json").read_text())["members"]
    assert len(members) == 4  # two models x two seeds
    assert "both" in (out / "report" / "comparisons.csv").read_text()
    stamp = (out / "ensembles" / "both" / "run.json").stat().st_mtime
    compare([str(path)], out=str(out), stream=io.StringIO())  # everything finished: reused, not rebuilt
    assert (out / "ensembles" / "both" / "run.json").stat().st_mtime == stamp
