"""The YouTube-8M models are presets of the one classifier, at the paper's sizes."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from modalfuse.config import load_config
from modalfuse.datasets.base import ModalitySpec, TaskSpec
from modalfuse.errors import ConfigError
from modalfuse.listing import PRESET_DIR, preset_parameter_count
from modalfuse.models import PAPER_SPECS, PAPER_TASK, build_model, count_parameters

YT8M = sorted(p.stem for p in (PRESET_DIR / "yt8m").glob("*.yaml"))
MODS = {"audio": ModalitySpec(8), "rgb": ModalitySpec(12)}


def _tiny(name: str, task: TaskSpec, mods=MODS):
    """The preset's architecture at a few hundred parameters: widths cut down, structure kept."""
    model = load_config(PRESET_DIR / "yt8m" / f"{name}.yaml").model
    shrink = {"hidden_dims": lambda v: [16] * len(v), "hidden_dim": lambda v: 8 if v else v}
    for part in ("encoder", "head"):
        model[part] = {k: shrink.get(k, lambda v: v)(v) for k, v in model[part].items()}
    if model["fusion"]["name"] == "attend":
        model["fusion"].update(tokens=4, heads=2)
    return build_model(model, mods, task)


def test_the_ten_models_ship_as_presets() -> None:
    assert {"rgb-only", "audio-only", "fc-early", "fc-late", "fcrn-early", "fcrn-late", "fcrn-gated",
            "attend-fusion", "logistic", "moe"} <= set(YT8M)


def test_paper_presets_have_the_paper_sizes() -> None:
    af, late = (preset_parameter_count(PRESET_DIR / "yt8m" / f"{n}.yaml") for n in ("attend-fusion", "fc-late"))
    assert abs(af / 72e6 - 1) < 0.05, af
    assert abs(late / 341e6 - 1) < 0.05, late
    assert af <= late / 4


@pytest.mark.slow
def test_list_models_prints_each_presets_exact_size() -> None:
    out = subprocess.run([sys.executable, "-m", "modalfuse", "list", "models", "--task", "yt8m"],
                         capture_output=True, text=True, check=True).stdout
    for name in YT8M:
        n = preset_parameter_count(PRESET_DIR / "yt8m" / f"{name}.yaml")
        assert any(line.startswith(f"yt8m/{name} ") and f"({n:,})" in line for line in out.splitlines()), name


def test_meta_count_matches_a_real_build() -> None:
    cfg = load_config(PRESET_DIR / "yt8m" / "fcrn-late.yaml")
    assert count_parameters(build_model(cfg.model, PAPER_SPECS, PAPER_TASK)) == \
        preset_parameter_count(PRESET_DIR / "yt8m" / "fcrn-late.yaml")


@pytest.mark.parametrize("name", YT8M)
def test_presets_take_mean_only_or_mean_and_std_and_start_near_the_prior(name: str) -> None:
    task = TaskSpec("multilabel", 101)
    for mods in (MODS, {m: ModalitySpec(2 * s.dim) for m, s in MODS.items()}):
        model = _tiny(name, task, mods).eval()
        x = {m: torch.randn(3, s.dim) for m, s in mods.items()}
        logits = model(x)["logits"]
        assert logits.shape == (3, 101)
        assert 0.001 < torch.sigmoid(logits).median().item() < 0.05  # about 1/101, not 0.5


def test_unimodal_presets_ignore_the_other_modality() -> None:
    model = _tiny("rgb-only", TaskSpec("multilabel", 5)).eval()
    x = {"audio": torch.randn(3, 8), "rgb": torch.randn(3, 12)}
    assert torch.equal(model(x)["logits"], model(dict(x, audio=x["audio"] * 100))["logits"])
    assert not torch.equal(model(x)["logits"], model(dict(x, rgb=x["rgb"] + 1))["logits"])


def test_attend_rejects_tokens_that_do_not_divide_as_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"model.fusion.*tokens=4"):
        build_model({"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [30]}, "fusion": {"name": "attend", "tokens": 4}},
                    MODS, TaskSpec("multilabel", 5))


def test_a_small_attend_fusion_learns_a_multilabel_rule() -> None:
    # Label 0 = rgb[0] > 0, label 1 = audio[0] > 0, label 2 = both (needs both modalities).
    torch.manual_seed(0)
    n = 512
    x = {"audio": torch.randn(n, 8), "rgb": torch.randn(n, 12)}
    a, r = x["audio"][:, 0] > 0, x["rgb"][:, 0] > 0
    y = torch.stack([r, a, a & r], 1).float()
    model = build_model({"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [32], "dropout": 0.0},
                         "fusion": {"name": "attend", "tokens": 4, "heads": 2, "dropout": 0.0},
                         "head": {"name": "mlp", "hidden_dims": [32], "dropout": 0.0}}, MODS, TaskSpec("multilabel", 3))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(150):
            loss = F.binary_cross_entropy_with_logits(model(x)["logits"], y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    assert loss.item() < 0.5 * math.log(2)


def test_modality_tokens_let_each_modality_read_the_other_and_keep_the_concat_layout() -> None:
    from modalfuse.models.fusions.basic import AttendFusion

    torch.manual_seed(0)
    dims = {"audio": 8, "rgb": 12}
    x = {"audio": torch.randn(5, 8), "rgb": torch.randn(5, 12)}
    moved = dict(x, audio=x["audio"] + 1)
    across = AttendFusion(dims, tokens_from="modality", token_dim=8, heads=2, dropout=0.0).eval()
    within = AttendFusion(dims, tokens=2, heads=2, dropout=0.0).eval()
    out = across(x)
    assert out.state.shape == (5, 20) and across.parts == {"audio": 8, "rgb": 12}
    assert out.attention.shape == (5, 1, 2, 2)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(5, 1, 2))
    # the rgb slice (after audio's 8 dims) changes with the audio input only when attention crosses modalities
    assert not torch.allclose(across(moved).state[:, 8:], out.state[:, 8:])
    torch.testing.assert_close(within(moved).state[:, 8:], within(x).state[:, 8:])
    out.state.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in across.parameters())


def test_modality_tokens_need_two_modalities_as_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"model.fusion.*2 or more"):
        build_model({"name": "fusion", "modalities": ["rgb"], "encoder": {"name": "mlp", "hidden_dims": [16]},
                     "fusion": {"name": "attend", "tokens_from": "modality", "token_dim": 8, "heads": 2}},
                    MODS, TaskSpec("multilabel", 5))


def test_the_design_variants_differ_from_the_preset_only_in_the_fusion() -> None:
    base = load_config(PRESET_DIR / "yt8m" / "attend-fusion.yaml")
    for name in ("attend-fusion-modality", "attend-fusion-none"):
        cfg = load_config(PRESET_DIR / "yt8m" / f"{name}.yaml")
        assert cfg.model["fusion"] != base.model["fusion"]
        assert {k: v for k, v in cfg.model.items() if k != "fusion"} == {k: v for k, v in base.model.items() if k != "fusion"}
        assert cfg.train == base.train
