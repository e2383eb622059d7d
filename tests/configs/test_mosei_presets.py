"""Every ``configs/mosei`` preset trains end to end on MOSEI-shaped data, paths set with --set: the
SDK's csd fixture (``cmu-sdk``) and MMSA- and MulT-layout pickles built here. Also: every
``configs/mosi`` preset loads and builds, and its first line is the command that runs it."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from modalfuse.config import apply_overrides, build_config, load_yaml
from modalfuse.models import build_model
from modalfuse.datasets.base import ModalitySpec, TaskSpec
from modalfuse.training.run import PRESET_DIR, train

MOSEI = sorted(p.stem for p in (PRESET_DIR / "mosei").glob("*.yaml"))
MOSI = sorted(p.stem for p in (PRESET_DIR / "mosi").glob("*.yaml"))
# MOSEI-sized inputs (GloVe 300, COVAREP 74, FACET 35), tiny models, one epoch.
TINY = ["train.epochs=1", "train.progress=none", "train.batch_size=16", "data.seq_len=6"]
TINY_FUSION = ["model.encoder.d_model=8", "model.encoder.heads=2", "model.encoder.ff_dim=8", "model.encoder.layers=1",
               "model.head.hidden_dims=[8]"]
TINY_MODEL = {"mult": ["model.fusion.d_model=8", "model.fusion.heads=2", "model.fusion.ff_dim=8",
                       "model.fusion.cross_layers=1", "model.head.hidden_dims=[8]"],
              "attention": TINY_FUSION + ["model.fusion.d_model=8", "model.fusion.heads=2"],
              "late": TINY_FUSION}


def tiny(preset: str) -> list[str]:
    return TINY + TINY_MODEL.get(preset, TINY_FUSION)


def test_presets_exist_with_their_command() -> None:
    assert {"text", "audio", "video", "late", "early", "attention"} <= set(MOSEI)
    assert {"text", "audio", "video", "late", "early", "attention", "context", "mult", "early-moddrop"} <= set(MOSI)
    for group, names in (("mosei", MOSEI), ("mosi", MOSI)):
        for name in names:
            first = (PRESET_DIR / group / f"{name}.yaml").read_text().splitlines()[0]
            assert first.startswith(f"# modalfuse train {group}/{name}"), first


@pytest.mark.parametrize("name", MOSEI)
def test_mosei_preset_protocol(name: str) -> None:
    cfg = build_config(load_yaml(PRESET_DIR / "mosei" / f"{name}.yaml"))
    assert cfg.data["name"] == "cmu-sdk" and cfg.data["seq_len"] == 50 and cfg.data["label_scheme"] == "3class"
    mods = {"text": ModalitySpec(300, 50), "audio": ModalitySpec(74, 50), "video": ModalitySpec(35, 50)}
    model = build_model(cfg.model, mods, TaskSpec("multiclass", 3))
    out = model({m: torch.randn(2, 50, s.dim) for m, s in mods.items()},
                {m: torch.ones(2, 50, dtype=torch.bool) for m in mods})
    assert out["logits"].shape == (2, 3)


@pytest.mark.parametrize("name", MOSI)
def test_mosi_presets_build(name: str) -> None:
    cfg = build_config(load_yaml(PRESET_DIR / "mosi" / f"{name}.yaml"))
    assert cfg.data["name"] == "mosi"
    ctx = cfg.data["context"]
    steps = 2 * ctx + 1 if ctx else None  # data.context makes each segment a window of 2c + 1 (as the data reports)
    mods = {"text": ModalitySpec(100, steps), "audio": ModalitySpec(73, steps), "video": ModalitySpec(100, steps)}
    model = build_model(cfg.model, mods, TaskSpec("multiclass", 3))
    feats = {m: torch.randn(2, 2 * ctx + 1, s.dim) if ctx else torch.randn(2, s.dim) for m, s in mods.items()}
    masks = {m: torch.ones(2, 2 * ctx + 1, dtype=torch.bool) for m in mods} if ctx else {}
    assert model(feats, masks)["logits"].shape == (2, 3)


def _check_run(folder: Path, num_classes: int = 3) -> None:
    metrics = json.loads((folder / "metrics.json").read_text())
    assert set(metrics) >= {"valid", "test"}
    for split in metrics.values():
        assert 0.0 <= split["accuracy"] <= 1.0
        assert np.asarray(split["confusion_matrix"]).shape == (num_classes, num_classes)


@pytest.mark.slow
@pytest.mark.parametrize("name", MOSEI)
def test_mosei_preset_trains_on_csd_fixture(name: str, shared_data: Path, tmp_path: Path) -> None:
    f = shared_data / "csd_fixture"
    paths = [f"data.sequences.text={f / 'glove.csd'}", f"data.sequences.audio={f / 'covarep.csd'}",
             f"data.sequences.video={f / 'facet.csd'}", f"data.labels={f / 'labels.csd'}",
             "data.folds=random", "data.test_fraction=0.3"]
    folder = train(f"mosei/{name}", overrides=paths + tiny(name), run_dir=tmp_path / "run", quiet=True)
    _check_run(folder)
    data = json.loads((folder / "data.json").read_text())
    assert data["modalities"] == {"audio": {"dim": 74, "seq_len": 6}, "text": {"dim": 300, "seq_len": 6},
                                  "video": {"dim": 35, "seq_len": 6}}


def _pickle_fixture(path: Path, layout: str) -> Path:
    """A small MOSEI-shaped pickle (300/74/35-d, 8 steps) with negative, zero and positive scores."""
    rng = np.random.default_rng(0)
    data = {}
    for split, n in (("train", 24), ("valid", 9), ("test", 9)):
        t = 8
        scores = rng.choice([-2.0, -0.6, 0.0, 0.0, 1.0, 2.4], size=n).astype(np.float32)
        lengths = rng.integers(2, t + 1, size=n)
        feats = {}
        for m, d in (("text", 300), ("audio", 74), ("vision", 35)):
            x = rng.standard_normal((n, t, d)).astype(np.float32)
            x[np.arange(t)[None, :] >= lengths[:, None]] = 0.0  # zero padding after the real steps
            feats[m] = x
        videos = [f"{split}vid{i // 3}" for i in range(n)]
        if layout == "mmsa":
            data[split] = {**feats, "regression_labels": scores, "audio_lengths": lengths, "vision_lengths": lengths,
                           "id": np.array([f"{v}$_${i % 3}" for i, v in enumerate(videos)])}
        else:
            data[split] = {**feats, "labels": scores.reshape(n, 1, 1),
                           "id": np.array([[v, str(i % 3), str(i % 3 + 1)] for i, v in enumerate(videos)])}
    path.write_bytes(pickle.dumps(data, protocol=4))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["mmsa", "mult"])
@pytest.mark.parametrize("name", MOSEI)
def test_mosei_preset_trains_on_pickles(name: str, layout: str, tmp_path: Path) -> None:
    pkl = _pickle_fixture(tmp_path / f"{layout}.pkl", layout)
    # The presets read .csd files; a pickle swaps the data section (as each preset's header says),
    # keeping the preset's label scheme and sequence length, then the same --set overrides apply.
    raw = load_yaml(PRESET_DIR / "mosei" / f"{name}.yaml")
    raw["data"] = {"name": layout, "path": "unset", "label_scheme": raw["data"]["label_scheme"],
                   "seq_len": raw["data"]["seq_len"]}
    folder = train(raw, overrides=[f"data.path={pkl}", *tiny(name)], run_dir=tmp_path / "run", quiet=True)
    _check_run(folder)
    data = json.loads((folder / "data.json").read_text())
    assert data["info"]["segments"] == {"train": 24, "valid": 9, "test": 9}
    assert data["modalities"]["text"] == {"dim": 300, "seq_len": 6}


def test_bad_override_is_a_clear_error() -> None:
    from modalfuse.errors import ConfigError

    raw = apply_overrides(load_yaml(PRESET_DIR / "mosei" / "attention.yaml"), ["model.fusion.heads_count=2"])
    with pytest.raises(ConfigError, match="heads_count"):
        build_config(raw)
