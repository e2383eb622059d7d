"""Bad configs exit 2 with one line naming the key; ``--debug`` shows the traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modalfuse.config import apply_overrides, build_config, load_config
from modalfuse.errors import ConfigError

SYNTHETIC = str(Path(__file__).resolve().parents[2] / "configs" / "synthetic.yaml")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modalfuse", *args], capture_output=True, text=True)


@pytest.mark.slow
def test_misspelt_key_exits_2_with_one_line_naming_it_and_the_valid_keys():
    r = _cli("train", SYNTHETIC, "--set", "train.lerning_rate=1")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "lerning_rate" in lines[0] and "did you mean 'learning_rate'" in lines[0]
    assert "valid keys:" in lines[0] and "batch_size" in lines[0]
    assert "Traceback" not in r.stderr


def test_debug_shows_the_traceback_and_keeps_the_exit_code():
    r = _cli("--debug", "train", SYNTHETIC, "--set", "train.lerning_rate=1")
    assert r.returncode == 2 and "Traceback" in r.stderr  # bad input: 2 with or without --debug
    assert r.stderr.strip().splitlines()[-1].startswith("modalfuse train: error:")


@pytest.mark.parametrize(
    "override, needle",
    [
        ("data.n_trian=5", "data.n_trian"),
        ("model.encoder.hiden_dims=[3]", "hiden_dims"),
        ("model.fusion.name=concatt", "concatt"),
        ("train.epochs=many", "train.epochs"),
        ("eval.splits=[tset]", "eval.splits"),
        ("bogus.key=1", "bogus"),
    ],
)
def test_every_bad_key_or_value_is_named(override, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        load_config(SYNTHETIC, [override])


def test_overrides_are_typed_yaml_values():
    cfg = load_config(SYNTHETIC, ["train.learning_rate=1e-4", "model.head.hidden_dims=[8, 4]", "train.deterministic=true",
                                  "model.modalities=[text, audio]"])
    assert cfg.train.learning_rate == pytest.approx(1e-4)
    assert cfg.model["head"]["hidden_dims"] == [8, 4]
    assert cfg.train.deterministic is True
    assert cfg.model["modalities"] == ["text", "audio"]


def test_unknown_dataset_name_lists_the_known_ones():
    raw = apply_overrides({"data": {"name": "synthetc"}, "model": {"name": "fusion"}}, [])
    with pytest.raises(ConfigError, match="did you mean 'synthetic'"):
        build_config(raw)


@pytest.mark.slow
def test_list_commands_print_registered_entries():
    r = _cli("list", "datasets")
    assert r.returncode == 0 and "synthetic" in r.stdout
    r = _cli("list", "presets")
    assert "synthetic" in r.stdout.split()
