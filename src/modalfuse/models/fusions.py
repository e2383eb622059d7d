"""Fusions combine the per-modality states ``dict[str, Tensor[B, H_m]]``, iterated in sorted order.

A *feature-level* fusion returns ``[B, output_dim]`` for the head. A *decision-level* fusion
(``decision_level = True``) holds its own per-modality classifiers and returns a dict with
``logits`` (the fused decision) and ``aux_logits`` (per-modality logits that the loss trains).
Constructors take ``input_dims: dict[str, int]``, ``num_outputs`` and flat keyword arguments.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from ..config import Params
from ..registry import FUSIONS
from .classifier import Head


class ConcatParams(Params):
    pass


@FUSIONS.register("concat", params=ConcatParams, description="early fusion: concatenate the states")
class ConcatFusion(nn.Module):
    """Early fusion: ``[B, sum(H_m)]``, modalities in sorted order."""

    decision_level = False

    def __init__(self, input_dims: dict[str, int], num_outputs: int | None = None) -> None:
        super().__init__()
        self.order = sorted(input_dims)
        self.output_dim = sum(input_dims.values())

    def forward(self, states: dict[str, Tensor]) -> Tensor:
        return torch.cat([states[m] for m in self.order], dim=-1)


# ---------------------------------------------------------------------------------------------
# The sentiment paper's strategies: late (A0, vote), early (A1, ``concat`` above), attention (A2)
# ---------------------------------------------------------------------------------------------

def majority_vote(probs: Tensor) -> tuple[Tensor, Tensor]:
    """Hard majority vote of per-modality class probabilities.

    Args:
        probs: ``[B, M, C]`` one probability vector per modality.

    Returns:
        ``(scores [B, C], votes [B, C])``: ``votes`` counts the modalities whose argmax is each
        class; ``scores = votes + summed_probs / (M + 1)``, so ``scores.argmax(-1)`` is the class with
        the most votes and, among tied classes, the one with the highest summed probability. (The
        fraction is below 1, so it can only break ties, never overturn a vote.)
    """
    m, c = probs.shape[1], probs.shape[2]
    votes = nn.functional.one_hot(probs.argmax(-1), c).sum(1).to(probs.dtype)  # [B, C]
    return votes + probs.sum(1) / (m + 1), votes


class LateVoteParams(Params):
    vote: Literal["majority", "soft"] = "majority"
    hidden_dims: list[int] = Field(default_factory=list)  # per-modality classifier's hidden layers
    dropout: float = Field(0.1, ge=0, lt=1)


@FUSIONS.register("late", params=LateVoteParams,
                  description="late fusion (A0): one classifier per modality, majority (or soft) vote")
class LateVoteFusion(nn.Module):
    """Decision-level fusion: a classifier per modality, then a vote.

    Each modality's classifier is trained by its own task loss on ``aux_logits`` (all in one run,
    one optimizer); the fused ``logits`` are detached, so the vote itself is never trained and no
    modality's classifier sees another's gradient: this equals training them separately, except for
    the shared global-norm gradient clip and model selection on the voted validation metric.

    ``vote="majority"``: ``logits`` are the vote scores of ``majority_vote`` (votes + a tie-break below
    one vote: the tied class with the highest summed probability). ``vote="soft"``: ``logits`` are
    the log of the mean of the probabilities. Regression (``num_outputs == 1``): the mean of the
    per-modality predictions (a vote needs classes).

    Args:
        input_dims: state size per modality.
        num_outputs: classes ``C`` (1 for regression).
        hidden_dims, dropout: each per-modality classifier's MLP.
    """

    decision_level = True

    def __init__(self, input_dims: dict[str, int], num_outputs: int, vote: str = "majority",
                 hidden_dims: list[int] | None = None, dropout: float = 0.1) -> None:
        super().__init__()
        self.order = sorted(input_dims)
        self.vote = vote
        self.num_outputs = num_outputs
        self.classifiers = nn.ModuleDict(
            {m: Head(input_dims[m], num_outputs, list(hidden_dims or []), dropout) for m in self.order})

    def forward(self, states: dict[str, Tensor]) -> dict[str, Tensor | dict[str, Tensor]]:
        """``states[m]`` ``[B, H_m]`` -> ``{"logits": [B, C], "aux_logits": {m: [B, C]}, "votes": [B, C]}``
        (``votes`` only for the majority vote)."""
        aux = {m: self.classifiers[m](states[m]) for m in self.order}
        stacked = torch.stack([aux[m] for m in self.order], 1).detach()  # [B, M, C]
        if self.num_outputs == 1:
            return {"logits": stacked.mean(1), "aux_logits": aux}
        probs = stacked.float().softmax(-1)
        if self.vote == "soft":
            return {"logits": probs.mean(1).clamp_min(1e-12).log(), "aux_logits": aux}
        scores, votes = majority_vote(probs)
        return {"logits": scores, "aux_logits": aux, "votes": votes}


class AttentionFusionParams(Params):
    d_model: int = Field(64, ge=2)
    heads: int = Field(4, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)


@FUSIONS.register("attention", params=AttentionFusionParams,
                  description="attention fusion (A2): modality states as tokens -> multi-head attention -> learned weighting")
class AttentionFusion(nn.Module):
    """The modality states as a sequence of ``M`` tokens, fused by attention.

    Each state is projected to ``d_model`` and tagged with a learned modality embedding; one
    multi-head self-attention block (residual + LayerNorm, then a feed-forward residual block) lets
    every modality attend to the others; a learned scorer ``w^T tanh(W x)`` weights the tokens
    (softmax over modalities) into one state.

    Returns:
        ``{"state": [B, d_model], "attention": [B, M] modality weights (sorted modality order),
        "token_attention": [B, M, M] the self-attention map averaged over heads}``.
    """

    decision_level = False

    def __init__(self, input_dims: dict[str, int], num_outputs: int | None = None, d_model: int = 64,
                 heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"fusion d_model ({d_model}) must be divisible by heads ({heads})")
        self.order = sorted(input_dims)
        self.proj = nn.ModuleDict({m: nn.Linear(input_dims[m], d_model) for m in self.order})
        self.modality_embedding = nn.Parameter(torch.zeros(len(self.order), d_model))
        self.attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.ReLU(), nn.Dropout(dropout),
                                nn.Linear(2 * d_model, d_model))
        self.norm2 = nn.LayerNorm(d_model)
        self.score = nn.Sequential(nn.Linear(d_model, d_model), nn.Tanh(), nn.Linear(d_model, 1, bias=False))
        self.dropout = nn.Dropout(dropout)
        self.output_dim = d_model

    def forward(self, states: dict[str, Tensor]) -> dict[str, Tensor]:
        tokens = torch.stack([self.proj[m](states[m]) for m in self.order], 1) + self.modality_embedding
        mixed, token_attention = self.attn(tokens, tokens, tokens, need_weights=True, average_attn_weights=True)
        h = self.norm1(tokens + self.dropout(mixed))
        h = self.norm2(h + self.dropout(self.ff(h)))  # [B, M, d]
        weights = self.score(h).squeeze(-1).softmax(-1)  # [B, M]
        state = (weights.unsqueeze(-1) * h).sum(1)
        return {"state": state, "attention": weights, "token_attention": token_attention}
