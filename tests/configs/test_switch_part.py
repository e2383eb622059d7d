"""Setting a part's ``name`` with ``--set`` gives that part its own defaults (the old part's keys are
dropped, with a note), so the rule in docs/presets.md holds: any fusion can be set on any preset."""

from __future__ import annotations

import logging
import time

import pytest
import torch

from modalfuse.config import apply_overrides, build_config, load_yaml
from modalfuse.datasets.base import ModalitySpec, TaskSpec
from modalfuse.errors import ConfigError
from modalfuse.listing import PRESET_DIR, preset_names
from modalfuse.models import build_model
from modalfuse.registry import FUSIONS

# Presets whose data is not shipped (CMU-MOSEI .csd files): the input sizes their comments state.
SPECS_WITHOUT_DATA = {
    "cmu-sdk": ({"text": ModalitySpec(300, 50), "audio": ModalitySpec(74, 50), "video": ModalitySpec(35, 50)},
                TaskSpec("multiclass", 3)),
}


def _training_presets() -> list[str]:
    return [n for n in preset_names() if "models" not in load_yaml(PRESET_DIR / f"{n}.yaml")]


def test_switching_the_fusion_drops_the_old_fusions_keys_with_a_note(caplog: pytest.LogCaptureFixture) -> None:
    raw = load_yaml(PRESET_DIR / "yt8m-sample.yaml")
    assert raw["model"]["fusion"]["name"] == "attend" and "tokens" in raw["model"]["fusion"]
    with caplog.at_level(logging.WARNING, logger="modalfuse"):
        out = apply_overrides(raw, ["model.fusion.name=attention"])
    assert out["model"]["fusion"] == {"name": "attention"}
    assert "model.fusion.tokens" in caplog.text and "'attend'" in caplog.text
    build_config(out)  # was: unknown config key 'model.fusion.tokens'
    # keys set with --set are kept, before or after the switch; the same name drops nothing
    out = apply_overrides(raw, ["model.fusion.heads=2", "model.fusion.name=attention", "model.fusion.dropout=0.1"])
    assert out["model"]["fusion"] == {"name": "attention", "heads": 2, "dropout": 0.1}
    assert apply_overrides(raw, ["model.fusion.name=attend"])["model"]["fusion"] == raw["model"]["fusion"]


# Why a fusion may not fit a preset (docs/presets.md: "a combination that cannot work is one config error at
# load"): one modality only, a token-sequence fusion over pooled vectors, a decision-level head that
# needs per-modality parts, a tensor fusion past its parameter cap, or attend's tokens that do not
# split a state (mult's identity encoders give the raw 74-d audio).
CANNOT_WORK = ("fuses 2 or more modalities", "fuses token sequences", "needs one state per modality",
               "above max_parameters", "must split into")


@pytest.mark.slow
def test_every_fusion_builds_on_every_preset_or_is_one_config_error_saying_why() -> None:
    """Each training preset x each registered fusion, built only (on the meta device: no memory, no
    training). Before parts switched by name, every preset whose fusion had keys failed here with
    "unknown config key"."""
    from modalfuse.datasets import build_data

    t0, data, built, refused = time.perf_counter(), {}, {}, []
    for name in _training_presets():
        raw = load_yaml(PRESET_DIR / f"{name}.yaml")
        if "fusion" not in (raw.get("model") or {}):
            continue  # a model without a fusion part (mult)
        kind = raw["data"]["name"]
        if kind in SPECS_WITHOUT_DATA:
            specs, task = SPECS_WITHOUT_DATA[kind]
        else:
            key = repr(build_config(raw).data)
            if key not in data:
                bundle = build_data(build_config(raw).data)
                data[key] = (bundle.modalities, bundle.task)
            specs, task = data[key]
        for fusion in FUSIONS.names():
            try:
                cfg = build_config(apply_overrides(raw, [f"model.fusion.name={fusion}"]))
                with torch.device("meta"):
                    model = build_model(cfg.model, specs, task)
            except ConfigError as e:
                assert any(why in str(e) for why in CANNOT_WORK), f"{name} + {fusion}: {e}"
                refused.append((name, fusion))
                continue
            assert sum(p.numel() for p in model.parameters()) > 0
            built.setdefault(fusion, []).append(name)
    assert sorted(built) == sorted(FUSIONS.names()), "a fusion that builds on no preset"
    # crossmodal fuses token sequences: only the mult presets' identity encoders keep them; elsewhere
    # its error says to set model.encoder.pooling: none, which then builds
    assert set(built["crossmodal"]) == {"mosi/mult", "mosei/mult"}, built["crossmodal"]
    raw = load_yaml(PRESET_DIR / "mosei/early.yaml")
    cfg = build_config(apply_overrides(raw, ["model.fusion.name=crossmodal", "model.encoder.pooling=none"]))
    with torch.device("meta"):
        build_model(cfg.model, *SPECS_WITHOUT_DATA["cmu-sdk"])
    # every multimodal preset over vectors or sequences takes every fusion but the few above
    assert len(refused) < sum(len(v) for v in built.values()) / 2, refused
    assert len(built["attention"]) >= 30 and "yt8m-sample" in built["attention"]
    print(f"{sum(len(v) for v in built.values())} builds, {len(refused)} refused, {time.perf_counter() - t0:.1f}s")
