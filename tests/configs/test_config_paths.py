"""Nested model keys are validated at load, with the full key path; impossible combinations are one
config error (exit 2) before any run folder exists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modalfuse.config import load_config
from modalfuse.errors import ConfigError
from modalfuse.listing import PRESET_DIR

SYNTHETIC = PRESET_DIR / "synthetic.yaml"


@pytest.mark.parametrize("override, needle", [
    ("model.encoders={text: {hiden_dims: [3]}}", "unknown config key 'model.encoders.text.hiden_dims' (did you mean 'hidden_dims'?)"),
    ("model.encoder.dropout=1.5", "config key 'model.encoder.dropout'"),
    ("model.fusion={name: concatt}", "config key 'model.fusion.name': unknown fusion 'concatt'"),
    ("model.head={name: mlp, hidden: [3]}", "unknown config key 'model.head.hidden'"),
    ("model.head.hidden_dims=[0]", "config key 'model.head.hidden_dims.0'"),
    ("model.encoders={text: [3]}", "config key 'model.encoders.text': expected a mapping"),
])
def test_nested_keys_are_checked_at_load_with_their_full_path(override: str, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(SYNTHETIC, [override])
    assert needle in str(e.value)


def test_per_modality_override_keeps_only_what_differs() -> None:
    cfg = load_config(SYNTHETIC, ["model.encoders={text: {hidden_dims: [8]}, audio: {name: identity}}"])
    assert cfg.model["encoders"] == {"text": {"name": "mlp", "hidden_dims": [8]}, "audio": {"name": "identity"}}
    assert cfg.model["head"]["name"] == "mlp" and cfg.model["fusion"] == {"name": "concat"}


@pytest.mark.parametrize("override, needle", [
    ("model.encoders={text: {hiden_dims: [3]}}", "model.encoders.text.hiden_dims"),
    ("model.fusion={name: attend, tokens: 5}", "config key 'model.fusion': a state of 32 dims must split into tokens=5"),
    ("model.head={name: vote}", "config key 'model.head': head 'vote' needs one state per modality"),
])
def test_cli_refuses_with_one_line_exit_2_and_no_run_folder(tmp_path: Path, override: str, needle: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "modalfuse", "train", "synthetic", "--set", override,
                           "--set", "model.fusion={name: attention}" if "vote" in override else "train.epochs=1",
                           "--out", str(tmp_path / "runs")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
