"""The vote head is a majority vote (tie-break by summed probability), never a probability average."""

from __future__ import annotations

import torch

from modalfuse.datasets.base import TaskSpec
from modalfuse.models.heads import MoEHead, VoteHead, majority_vote

TASK = TaskSpec("multiclass", 3)


def _vote_with_fixed_logits(logits: dict[str, list[float]], vote: str = "majority") -> VoteHead:
    """A vote head whose per-modality classifiers output exactly ``logits`` (bias only)."""
    c = len(next(iter(logits.values())))
    head = VoteHead(len(logits), c, TaskSpec("multiclass", c), {m: 1 for m in sorted(logits)}, vote=vote).eval()
    for m, row in logits.items():
        with torch.no_grad():
            head.classifiers[m].out.weight.zero_()
            head.classifiers[m].out.bias.copy_(torch.tensor(row))
    return head


def test_vote_is_a_majority_not_a_probability_average() -> None:
    # audio and video weakly say class 0; text says class 2 with near certainty.
    rows = {"audio": [1.0, 0.9, 0.0], "text": [-10.0, -10.0, 10.0], "video": [1.0, 0.0, 0.9]}
    assert _vote_with_fixed_logits(rows)(torch.zeros(1, 3))["logits"].argmax(-1).item() == 0
    assert _vote_with_fixed_logits(rows, "soft")(torch.zeros(1, 3))["logits"].argmax(-1).item() == 2


def test_a_tie_goes_to_the_highest_summed_probability() -> None:
    head = _vote_with_fixed_logits({"audio": [2.0, 1.5, 0.0], "text": [0.0, 5.0, 0.0], "video": [0.0, 1.5, 2.0]})
    assert head(torch.zeros(1, 3))["logits"].argmax(-1).item() == 1
    head = _vote_with_fixed_logits({"audio": [2.0, 1.9, 0.0], "text": [0.0, 2.0, 1.9], "video": [-5.0, -5.0, 5.0]})
    assert head(torch.zeros(1, 3))["logits"].argmax(-1).item() == 2


def test_majority_vote_never_overturned_by_the_tie_break() -> None:
    torch.manual_seed(0)
    probs = torch.rand(500, 5, 4).softmax(-1)
    scores, votes = majority_vote(probs)
    top = votes.max(-1, keepdim=True).values
    assert (votes.gather(1, scores.argmax(-1, keepdim=True)) == top).all()


def test_vote_logits_carry_no_gradient_the_per_modality_classifiers_do() -> None:
    head = VoteHead(12, 3, TASK, {"a": 4, "b": 8}).train()
    out = head(torch.randn(2, 12))
    assert not out["logits"].requires_grad
    assert sorted(out["aux_logits"]) == ["a", "b"] and all(a.requires_grad for a in out["aux_logits"].values())


def test_vote_reads_each_modality_from_its_own_slice() -> None:
    head = VoteHead(12, 3, TASK, {"a": 4, "b": 8}).eval()
    x = torch.randn(2, 12)
    y = x.clone()
    y[:, 4:] += 100  # only b's slice changes
    assert torch.equal(head(x)["aux_logits"]["a"], head(y)["aux_logits"]["a"])
    assert not torch.equal(head(x)["aux_logits"]["b"], head(y)["aux_logits"]["b"])


def test_moe_multilabel_logits_are_the_logit_of_the_expert_mixture() -> None:
    torch.manual_seed(1)
    moe = MoEHead(20, 5, TaskSpec("multilabel", 5), num_mixtures=3)
    x = torch.randn(6, 20)
    logits = moe(x)["logits"]
    g = torch.softmax(moe.gates(x).view(6, 5, 4), -1)
    e = torch.sigmoid(moe.experts(x).view(6, 5, 3))
    assert torch.allclose(torch.sigmoid(logits), (g[..., 1:] * e).sum(-1), atol=1e-6)
    # extreme inputs stay finite where log(p / (1 - p)) computed naively would not
    assert torch.isfinite(moe(x * 1e4)["logits"]).all()


def test_moe_multiclass_is_a_distribution_mixture() -> None:
    torch.manual_seed(0)
    moe = MoEHead(10, 4, TaskSpec("multiclass", 4), num_mixtures=2)
    p = moe(torch.randn(3, 10))["logits"].exp()
    assert torch.allclose(p.sum(-1), torch.ones(3), atol=1e-5)


def test_a_confident_minority_never_overturns_the_majority() -> None:
    """The tie-break's worst case: three modalities vote class 0 barely (just over 1/3), two vote
    class 1 with certainty. Summed probability favours class 1 (about 3 against 1), the vote class 0
    (3 against 2); the tie-break may only order tied classes."""
    weak = torch.tensor([0.34, 0.33, 0.33])
    sure = torch.tensor([0.0, 1.0, 0.0])
    probs = torch.stack([weak, weak, weak, sure, sure]).unsqueeze(0)  # [1, 5, 3]
    scores, votes = majority_vote(probs)
    assert votes.tolist() == [[3.0, 2.0, 0.0]]
    assert scores.argmax(-1).item() == 0
    # and over many sharp random votes (the near-uniform probabilities above hide a scale error)
    torch.manual_seed(1)
    for m in (2, 3, 5):
        probs = (torch.randn(2000, m, 4) * 6).softmax(-1)
        scores, votes = majority_vote(probs)
        assert (votes.gather(1, scores.argmax(-1, keepdim=True)) == votes.max(-1, keepdim=True).values).all()
    # the head itself: text and video barely say 0, audio says 1 with certainty
    head = _vote_with_fixed_logits({"audio": [-20.0, 20.0, -20.0], "text": [0.1, 0.0, 0.0], "video": [0.1, 0.0, 0.0]})
    assert head(torch.zeros(1, 3))["logits"].argmax(-1).item() == 0
