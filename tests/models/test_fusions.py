"""Fusions: shared checks over the registry, the late-fusion vote (ties included), attention weights,
and the MulT-style temporal model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modalfuse import plugins
from modalfuse.datasets.base import ModalitySpec, TaskSpec
from modalfuse.models import build_model
from modalfuse.models.fusions import LateVoteFusion, majority_vote
from modalfuse.registry import FUSIONS

plugins.load()

DIMS = {"text": 6, "audio": 4, "video": 5}


@pytest.mark.parametrize("name", FUSIONS.names())
@pytest.mark.parametrize("num_outputs", [3, 1])
def test_every_fusion_forward_backward(name: str, num_outputs: int) -> None:
    fusion = FUSIONS.get(name)(DIMS, num_outputs)
    states = {m: torch.randn(4, d, requires_grad=True) for m, d in DIMS.items()}
    out = fusion(states)
    if getattr(fusion, "decision_level", False):
        assert out["logits"].shape == (4, num_outputs)
        assert set(out["aux_logits"]) == set(DIMS)
        loss = sum(a.sum() for a in out["aux_logits"].values())
    else:
        state = out["state"] if isinstance(out, dict) else out
        assert state.shape == (4, fusion.output_dim)
        loss = state.sum()
        assert torch.isfinite(state).all()
    loss.backward()
    assert all(torch.isfinite(s.grad).all() for s in states.values())


def _late_with_fixed_logits(logits: dict[str, list[list[float]]], vote: str = "majority") -> LateVoteFusion:
    """A late fusion whose per-modality classifiers output exactly ``logits`` (bias only)."""
    c = len(next(iter(logits.values()))[0])
    fusion = LateVoteFusion({m: 1 for m in logits}, c, vote=vote).eval()
    for m, rows in logits.items():
        lin: nn.Linear = fusion.classifiers[m].out
        with torch.no_grad():
            lin.weight.zero_()
            lin.bias.copy_(torch.tensor(rows[0]))
    return fusion


def _states(n: int = 1) -> dict[str, torch.Tensor]:
    return {m: torch.zeros(n, 1) for m in ("audio", "text", "video")}


def test_late_fusion_is_a_majority_vote_not_a_probability_average() -> None:
    # audio and video weakly say class 0; text says class 2 with near certainty.
    # Averaging probabilities would pick 2; the majority vote must pick 0.
    fusion = _late_with_fixed_logits({"audio": [[1.0, 0.9, 0.0]], "video": [[1.0, 0.0, 0.9]],
                                      "text": [[-10.0, -10.0, 10.0]]})
    out = fusion(_states())
    assert out["votes"].tolist() == [[2.0, 0.0, 1.0]]
    assert out["logits"].argmax(-1).item() == 0
    soft = _late_with_fixed_logits({"audio": [[1.0, 0.9, 0.0]], "video": [[1.0, 0.0, 0.9]],
                                    "text": [[-10.0, -10.0, 10.0]]}, vote="soft")
    assert soft(_states())["logits"].argmax(-1).item() == 2


def test_late_fusion_tie_goes_to_the_highest_summed_probability() -> None:
    # One vote each for classes 0, 1 and 2: a three-way tie. Summed probabilities decide:
    # class 1 gets the most mass (text is very sure of it, the others give it a little).
    fusion = _late_with_fixed_logits({"audio": [[2.0, 1.5, 0.0]], "text": [[0.0, 5.0, 0.0]],
                                      "video": [[0.0, 1.5, 2.0]]})
    out = fusion(_states())
    assert out["votes"].tolist() == [[1.0, 1.0, 1.0]]
    assert out["logits"].argmax(-1).item() == 1
    # Same votes, but now class 2's voter is the surest: the tie flips to class 2.
    fusion = _late_with_fixed_logits({"audio": [[2.0, 1.9, 0.0]], "text": [[0.0, 2.0, 1.9]],
                                      "video": [[-5.0, -5.0, 5.0]]})
    assert fusion(_states())["logits"].argmax(-1).item() == 2


def test_late_fusion_two_way_tie_among_two_modalities() -> None:
    probs = torch.tensor([[[0.6, 0.4], [0.3, 0.7]],     # 1 vote each; class 1 has more mass (1.1 vs 0.9)
                          [[0.9, 0.1], [0.45, 0.55]]])  # 1 vote each; class 0 has more mass (1.35 vs 0.65)
    scores, votes = majority_vote(probs)
    assert votes.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert scores.argmax(-1).tolist() == [1, 0]


def test_majority_vote_never_overturned_by_tie_break() -> None:
    torch.manual_seed(0)
    probs = torch.rand(500, 5, 4).softmax(-1)
    scores, votes = majority_vote(probs)
    top = votes.max(-1, keepdim=True).values
    assert (votes.gather(1, scores.argmax(-1, keepdim=True)) == top).all()


def test_late_fusion_logits_carry_no_gradient_aux_do() -> None:
    fusion = LateVoteFusion(DIMS, 3).train()
    out = fusion({m: torch.randn(2, d) for m, d in DIMS.items()})
    assert not out["logits"].requires_grad
    assert all(a.requires_grad for a in out["aux_logits"].values())


def test_attention_fusion_returns_modality_weights() -> None:
    fusion = FUSIONS.get("attention")(DIMS, 3, d_model=8, heads=2).eval()
    out = fusion({m: torch.randn(5, d) for m, d in DIMS.items()})
    assert out["attention"].shape == (5, 3)
    assert torch.allclose(out["attention"].sum(-1), torch.ones(5), atol=1e-5)
    assert out["token_attention"].shape == (5, 3, 3)


def _model(section: dict, seq: int | None = 6, kind: str = "multiclass") -> nn.Module:
    mods = {m: ModalitySpec(d, seq) for m, d in DIMS.items()}
    task = TaskSpec(kind, 3 if kind == "multiclass" else 1)
    return build_model(section, mods, task)


def _batch(seq: int | None = 6, b: int = 4):
    if seq is None:
        return {m: torch.randn(b, d) for m, d in DIMS.items()}, {}
    masks = {m: torch.arange(seq).expand(b, seq) < torch.tensor([[seq], [2], [1], [seq]]) for m in DIMS}
    return {m: torch.randn(b, seq, d) for m, d in DIMS.items()}, masks


@pytest.mark.parametrize("fusion", ["late", "concat", "attention"])
@pytest.mark.parametrize("seq", [None, 6])
def test_transformer_fusion_classifier_end_to_end(fusion: str, seq: int | None) -> None:
    model = _model({"name": "fusion", "encoder": {"name": "transformer", "d_model": 8, "heads": 2, "ff_dim": 16},
                    "fusion": {"name": fusion}}, seq)
    feats, masks = _batch(seq)
    out = model(feats, masks)
    assert out["logits"].shape == (4, 3) and torch.isfinite(out["logits"]).all()
    if fusion == "attention":
        assert out["attention"].shape == (4, 3)


@pytest.mark.parametrize("seq", [None, 6])
@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_mult_model(seq: int | None, kind: str) -> None:
    model = _model({"name": "mult", "d_model": 8, "heads": 2, "ff_dim": 16, "pooling": "center",
                    "modality_dropout": 0.5}, seq, kind)
    feats, masks = _batch(seq)
    model.train()
    out = model(feats, masks)
    assert out["logits"].shape == (4, 3 if kind == "multiclass" else 1)
    out["logits"].sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


def test_mult_cross_attention_ignores_padded_source_steps() -> None:
    model = _model({"name": "mult", "d_model": 8, "heads": 2, "ff_dim": 16, "dropout": 0.0}).eval()
    feats, masks = _batch()
    base = model(feats, masks)["logits"]
    feats2 = {m: v.clone() for m, v in feats.items()}
    feats2["audio"][1, 2:] = 50.0  # row 1 has 2 real steps: changing its padding must change nothing
    assert torch.allclose(base, model(feats2, masks)["logits"], atol=1e-5)
    feats2["audio"][1, 0] = 50.0  # a real step does matter
    assert not torch.allclose(base[1], model(feats2, masks)["logits"][1], atol=1e-4)
