"""Registry-wide checks: every encoder, fusion, head and model builds, runs forward and backward on
tiny inputs, gives finite outputs of the declared size, and trains EVERY parameter, on every task."""

from __future__ import annotations

import pytest
import torch

from modalfuse import plugins
from modalfuse.errors import ConfigError
from modalfuse.models import build_model, count_parameters
from modalfuse.registry import ENCODERS, FUSIONS, HEADS, MODELS

from .conftest import DIMS, TASKS, assert_every_parameter_has_a_gradient, batch, loss_of, specs

plugins.load()

# Small keys for encoders whose defaults are sized for real data.
TINY_ENCODER = {"transformer": {"d_model": 8, "heads": 2, "ff_dim": 16}, "mlp": {"hidden_dims": [8]},
                "attend": {"hidden_dims": [16], "tokens": 4, "heads": 2}, "fcrn": {"hidden_dim": 8, "blocks": 1}}


def _fusion_states(name: str) -> list[str]:
    """Which kinds of states a fusion takes (registry info ``states``: any, vectors or sequences)."""
    return {"any": ["vectors", "sequences"], "vectors": ["vectors"],
            "sequences": ["sequences"]}[FUSIONS.info(name).get("states", "any")]


@pytest.mark.parametrize("name", ENCODERS.names())
@pytest.mark.parametrize("seq", [None, 5])
def test_every_encoder(name: str, seq: int | None) -> None:
    torch.manual_seed(0)
    enc = ENCODERS.build({"name": name, **TINY_ENCODER.get(name, {})}, "model.encoder", input_dim=12, seq_len=seq).train()
    x = torch.randn(4, 12) if seq is None else torch.randn(4, seq, 12)
    mask = None if seq is None else torch.arange(seq).expand(4, seq) < torch.tensor([[5], [2], [1], [5]])
    out = enc(x, mask)
    want = (4, seq, enc.output_dim) if enc.returns_sequence else (4, enc.output_dim)
    assert out.shape == want and torch.isfinite(out).all()
    if count_parameters(enc):
        out.pow(2).sum().backward()
        assert_every_parameter_has_a_gradient(enc)


@pytest.mark.parametrize("name", FUSIONS.names())
@pytest.mark.parametrize("kind", list(TASKS))
def test_every_fusion_in_the_classifier_on_every_task(name: str, kind: str) -> None:
    """Vector states and, where the fusion takes them, token sequences (transformer, pooling none)."""
    for states in _fusion_states(name):
        torch.manual_seed(0)
        seq = 6 if states == "sequences" else None
        encoder = {"name": "transformer", "d_model": 32, "heads": 2, "ff_dim": 16, "layers": 1,
                   "pooling": "none" if seq else "mean"}
        task = TASKS[kind]
        model = build_model({"name": "fusion", "encoder": encoder, "fusion": {"name": name}}, specs(seq), task).train()
        feats, masks, label = batch(seq, kind=kind)
        out = model(feats, masks)
        assert out["logits"].shape == (4, 1 if kind == "regression" else task.num_classes), states
        assert torch.isfinite(out["logits"]).all(), states
        loss_of(task, out, label).backward()
        assert_every_parameter_has_a_gradient(model)
        if "attention" in out:
            assert out["attention"].dim() == 4 and out["attention"].shape[0] == 4


@pytest.mark.parametrize("name", HEADS.names())
@pytest.mark.parametrize("kind", list(TASKS))
def test_every_head_on_every_task(name: str, kind: str) -> None:
    torch.manual_seed(0)
    task = TASKS[kind]
    model = build_model({"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [8]}, "fusion": {"name": "concat"},
                         "head": {"name": name}}, specs(None), task).train()
    feats, masks, label = batch(None, kind=kind)
    out = model(feats, masks)
    assert out["logits"].shape == (4, 1 if kind == "regression" else task.num_classes)
    assert torch.isfinite(out["logits"]).all()
    loss_of(task, out, label).backward()
    assert_every_parameter_has_a_gradient(model)


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model(name: str) -> None:
    task = TASKS["multiclass"]
    tiny = {"fusion": {"encoder": {"name": "mlp", "hidden_dims": [8]}}}
    mult = {"encoder": {"name": "identity"}, "fusion": {"name": "crossmodal", "d_model": 8, "heads": 2, "ff_dim": 8}}
    tiny["ensemble"] = {"members": [{"name": "fusion", **tiny["fusion"]}, {"name": "fusion", **mult}]}
    model = build_model({"name": name, **tiny.get(name, {})}, specs(6), task).train()
    feats, masks, label = batch(6)
    out = model(feats, masks)
    assert out["logits"].shape == (4, 3) and torch.isfinite(out["logits"]).all()
    loss_of(task, out, label).backward()
    assert_every_parameter_has_a_gradient(model)


def test_the_gradient_check_catches_an_untrained_encoder() -> None:
    """The check is strict: a model that trains all but one modality's encoder fails it."""
    task = TASKS["multiclass"]
    model = build_model({"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [8]}}, specs(None), task)
    text = model.encoders["text"]
    forward = text.forward
    text.forward = lambda x, mask=None: forward(x, mask).detach()  # a bug that cuts text off the graph
    feats, masks, label = batch(None)
    loss_of(task, model(feats, masks), label).backward()
    with pytest.raises(AssertionError, match="encoders.text"):
        assert_every_parameter_has_a_gradient(model)


def test_registries_refuse_duplicates_and_name_the_known_entries() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        FUSIONS.register("concat")(lambda **kw: None)
    with pytest.raises(ConfigError, match="known: .*concat"):
        FUSIONS.get("concatt")


def test_attention_has_one_documented_shape() -> None:
    """[B, G, Q, K]: modality weights [B, 1, 1, M]; per-modality token attention [B, M, T, T]."""
    feats, _, _ = batch(None, b=3)
    m = build_model({"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [8]},
                     "fusion": {"name": "attention", "d_model": 8, "heads": 2}}, specs(None), TASKS["multiclass"]).eval()
    att = m(feats)["attention"]
    assert att.shape == (3, 1, 1, len(DIMS)) and torch.allclose(att.sum(-1), torch.ones(3, 1, 1), atol=1e-5)
    m = build_model({"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [16]},
                     "fusion": {"name": "attend", "tokens": 4, "heads": 2}}, specs(None), TASKS["multiclass"]).eval()
    att = m(feats)["attention"]
    assert att.shape == (3, len(DIMS), 4, 4) and torch.allclose(att.sum(-1), torch.ones(3, len(DIMS), 4), atol=1e-5)
    assert not torch.allclose(att[0], att[1])  # the weights depend on the input


def test_uniform_attention_weights_are_uniform() -> None:
    feats, _, _ = batch(None, b=3)
    m = build_model({"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [8]},
                     "fusion": {"name": "attention-uniform", "d_model": 8, "heads": 2}}, specs(None),
                    TASKS["multiclass"]).eval()
    assert torch.allclose(m(feats)["attention"], torch.full((3, 1, 1, 3), 1 / 3))


def test_attend_none_removes_only_the_attention() -> None:
    spec = {"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [16]}, "head": {"name": "mlp", "hidden_dims": [8]}}
    with_att = build_model({**spec, "fusion": {"name": "attend", "tokens": 4, "heads": 2}}, specs(None), TASKS["multilabel"])
    without = build_model({**spec, "fusion": {"name": "attend-none"}}, specs(None), TASKS["multilabel"])
    concat = build_model({**spec, "fusion": {"name": "concat"}}, specs(None), TASKS["multilabel"])
    assert count_parameters(without) == count_parameters(concat) < count_parameters(with_att)
    assert without.fusion.output_dim == with_att.fusion.output_dim  # matched widths
