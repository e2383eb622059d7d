"""Shared checks over everything registered: every encoder, fusion and model gets a forward pass on
tiny inputs, a finite-output check, a backward pass and a shape/``output_dim`` check."""

from __future__ import annotations

import pytest
import torch

from modalfuse import plugins
from modalfuse.config import entry_params
from modalfuse.datasets.base import ModalitySpec, TaskSpec
from modalfuse.models import build_model, count_parameters
from modalfuse.models.classifier import build_component
from modalfuse.registry import ENCODERS, FUSIONS, MODELS

plugins.load()
B, T = 3, 5

SHAPES = {
    "yt8m": ({"audio": ModalitySpec(16), "rgb": ModalitySpec(32)}, TaskSpec("multilabel", 7)),
    "sentiment": ({"audio": ModalitySpec(6, T), "text": ModalitySpec(12, T), "video": ModalitySpec(4, T)},
                  TaskSpec("multiclass", 3, ("negative", "neutral", "positive"))),
}


def _inputs(modalities: dict[str, ModalitySpec]) -> tuple[dict, dict]:
    torch.manual_seed(0)
    feats, masks = {}, {}
    for m, s in modalities.items():
        if s.seq_len is None:
            feats[m] = torch.randn(B, s.dim)
        else:
            feats[m] = torch.randn(B, s.seq_len, s.dim)
            masks[m] = torch.arange(s.seq_len)[None, :] < torch.tensor([[s.seq_len], [2], [1]])
    return feats, masks


@pytest.mark.parametrize("name", ENCODERS.names())
@pytest.mark.parametrize("sequence", [True, False])
def test_encoder_forward_backward(name, sequence):
    enc = build_component({"name": name}, ENCODERS, input_dim=6, seq_len=T if sequence else None)
    x = torch.randn(B, T, 6, requires_grad=True) if sequence else torch.randn(B, 6, requires_grad=True)
    mask = (torch.arange(T)[None, :] < torch.tensor([[T], [2], [1]])) if sequence else None
    h = enc(x, mask)
    assert h.shape == (B, enc.output_dim)
    assert torch.isfinite(h).all()
    h.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", FUSIONS.names())
def test_fusion_forward_backward(name):
    dims = {"audio": 8, "text": 8, "video": 8}
    fusion = build_component({"name": name}, FUSIONS, input_dims=dims, num_outputs=3)
    states = {m: torch.randn(B, d, requires_grad=True) for m, d in dims.items()}
    out = fusion(states)
    if getattr(fusion, "decision_level", False):
        assert out["logits"].shape == (B, 3)
        loss = sum(a.sum() for a in out["aux_logits"].values())
    else:
        state = out["state"] if isinstance(out, dict) else out
        assert state.shape == (B, fusion.output_dim)
        loss = state.sum()
    loss.backward()
    assert all(torch.isfinite(s.grad).all() for s in states.values())


@pytest.mark.parametrize("name", MODELS.names())
def test_model_forward_backward(name):
    info = MODELS.info(name)
    modalities, task = SHAPES["yt8m" if info.get("task") == "yt8m" else "sentiment"]
    section = {"name": name, **info.get("tiny_params", {})}
    model = build_model(section, modalities, task)
    assert count_parameters(model) > 0
    feats, masks = _inputs(modalities)
    model.train()
    out = model(feats, masks)
    assert out["logits"].shape == (B, task.num_classes)
    assert torch.isfinite(out["logits"]).all()
    params = [p for p in model.parameters() if p.requires_grad]
    terms = [out["logits"].sum()] if out["logits"].requires_grad else []
    terms += [a.sum() for a in (out.get("aux_logits") or {}).values()]
    torch.stack(terms).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
