"""YouTube-8M models: paper sizes, attention output, MoE as a probability mixture, input handling."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from modalfuse import plugins
from modalfuse.config import build_config, load_config
from modalfuse.datasets.base import ModalitySpec, TaskSpec
from modalfuse.errors import ConfigError
from modalfuse.listing import list_entries
from modalfuse.models import build_model, count_parameters
from modalfuse.models.yt8m import PRESET_DIR, MixtureOfExperts, paper_parameter_count
from modalfuse.registry import MODELS

plugins.load()

YT8M_MODELS = [n for n in MODELS.names() if MODELS.info(n).get("task") == "yt8m"]
MODS = {"audio": ModalitySpec(8), "rgb": ModalitySpec(12)}
TASK = TaskSpec("multilabel", 5)


def _batch(b: int = 4) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {m: torch.randn(b, s.dim) for m, s in MODS.items()}


def test_every_model_has_a_preset_and_the_listing_shows_its_size() -> None:
    assert {"rgb-only", "audio-only", "fc-early", "fc-late", "fcrn-early", "fcrn-late", "fcrn-gated",
            "attend-fusion", "logistic", "moe"} <= set(YT8M_MODELS)
    lines = {line.split()[0]: line for line in list_entries("models", task="yt8m")}
    for name in YT8M_MODELS:
        assert (PRESET_DIR / f"{name}.yaml").is_file()
        assert f"({paper_parameter_count(name):,})" in lines[name]


def test_paper_presets_have_the_paper_sizes() -> None:
    af, late = paper_parameter_count("attend-fusion"), paper_parameter_count("fc-late")
    assert abs(af / 72e6 - 1) < 0.05, af
    assert abs(late / 341e6 - 1) < 0.05, late
    assert af <= late / 4


def test_paper_count_matches_a_real_build() -> None:
    # The meta-device count must equal the count of a real model built from the preset.
    cfg = load_config(PRESET_DIR / "fcrn-late.yaml")
    model = build_model(cfg.model, {"audio": ModalitySpec(256), "rgb": ModalitySpec(2048)}, TaskSpec("multilabel", 3862))
    assert count_parameters(model) == paper_parameter_count("fcrn-late")


@pytest.mark.parametrize("name", YT8M_MODELS)
def test_models_take_mean_only_or_mean_and_std(name: str) -> None:
    for mods in (MODS, {m: ModalitySpec(2 * s.dim) for m, s in MODS.items()}):
        model = build_model({"name": name, **MODELS.info(name)["tiny_params"]}, mods, TASK).eval()
        x = {m: torch.randn(3, s.dim) for m, s in mods.items()}
        assert model(x)["logits"].shape == (3, 5)


def test_unimodal_models_ignore_the_other_modality() -> None:
    model = build_model({"name": "rgb-only", "hidden_dims": [16]}, MODS, TASK).eval()
    x = _batch()
    y = dict(x, audio=torch.randn_like(x["audio"]) * 100)
    assert torch.equal(model(x)["logits"], model(y)["logits"])
    assert not torch.equal(model(x)["logits"], model(dict(x, rgb=x["rgb"] + 1))["logits"])


@pytest.mark.parametrize("name", YT8M_MODELS)
def test_predictions_start_near_the_label_prior(name: str) -> None:
    model = build_model({"name": name, **MODELS.info(name)["tiny_params"]}, MODS, TaskSpec("multilabel", 101)).eval()
    p = torch.sigmoid(model(_batch())["logits"]).median().item()
    assert 0.001 < p < 0.05  # about 1/101, not 0.5


def test_attend_fusion_returns_row_stochastic_attention_over_tokens() -> None:
    model = build_model({"name": "attend-fusion", "branch_dims": [32], "tokens": 4, "heads": 2, "head_dims": [16]},
                        MODS, TASK).eval()
    out = model(_batch(3))
    att = out["attention"]
    assert att.shape == (3, 2, 4, 4)  # [B, modalities (audio, rgb), T, T]
    assert torch.allclose(att.sum(-1), torch.ones(3, 2, 4), atol=1e-5)
    assert (att >= 0).all()
    # Attention depends on the input: two different videos get different weights.
    assert not torch.allclose(att[0], att[1])


def test_attend_fusion_rejects_tokens_that_do_not_divide() -> None:
    raw = {"data": {"name": "synthetic"}, "model": {"name": "attend-fusion", "branch_dims": [30], "tokens": 4}}
    with pytest.raises(ConfigError, match="model.*tokens=4"):
        build_config(raw)


def test_unknown_modality_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no modality 'video'"):
        build_model({"name": "fc-early", "modalities": ["video"]}, MODS, TASK)


def test_moe_logits_are_the_logit_of_the_expert_mixture() -> None:
    torch.manual_seed(1)
    moe = MixtureOfExperts(["audio", "rgb"], 20, num_classes=5, num_mixtures=3)
    x = _batch(6)
    logits = moe(x)["logits"]
    xc = torch.cat([x["audio"], x["rgb"]], -1)
    g = torch.softmax(moe.gates(xc).view(6, 5, 4), -1)
    e = torch.sigmoid(moe.experts(xc).view(6, 5, 3))
    p = (g[..., 1:] * e).sum(-1)
    assert torch.allclose(torch.sigmoid(logits), p, atol=1e-6)
    # Extreme inputs stay finite where log(p / (1 - p)) computed naively would not.
    assert torch.isfinite(moe({m: v * 1e4 for m, v in x.items()})["logits"]).all()


def test_a_small_model_learns_a_multilabel_rule() -> None:
    # Label 0 = rgb[0] > 0, label 1 = audio[0] > 0 (needs both modalities), label 2 = both.
    torch.manual_seed(0)
    n = 512
    x = {"audio": torch.randn(n, 8), "rgb": torch.randn(n, 12)}
    a, r = x["audio"][:, 0] > 0, x["rgb"][:, 0] > 0
    y = torch.stack([r, a, a & r], 1).float()
    model = build_model({"name": "attend-fusion", "branch_dims": [32], "tokens": 4, "heads": 2, "head_dims": [32],
                         "dropout": 0.0}, MODS, TaskSpec("multilabel", 3))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: thread hand-offs cost more than they save on a busy machine
    try:
        for _ in range(150):
            loss = F.binary_cross_entropy_with_logits(model(x)["logits"], y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    assert loss.item() < 0.5 * math.log(2)


def test_attend_fusion_final_norm_and_attention_dropout() -> None:
    spec = {"name": "attend-fusion", "branch_dims": [32], "tokens": 4, "heads": 2, "head_dims": [16], "dropout": 0.4}
    plain = build_model(spec, MODS, TASK)
    normed = build_model({**spec, "final_norm": True, "attention_dropout": 0.1}, MODS, TASK).eval()
    assert plain.branches["rgb"].attention.attn[0].dropout == 0.4  # default: model.dropout
    assert normed.branches["rgb"].attention.attn[0].dropout == 0.1
    tokens = normed.branches["rgb"](_batch(3)["rgb"])[0].view(3, 4, 8)
    # LayerNorm starts at weight 1, bias 0: every output token has mean 0 and unit variance.
    assert torch.allclose(tokens.mean(-1), torch.zeros(3, 4), atol=1e-5)
    assert torch.allclose(tokens.var(-1, unbiased=False), torch.ones(3, 4), atol=1e-3)
