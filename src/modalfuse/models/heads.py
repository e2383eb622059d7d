"""Heads map the fused state ``[B, F]`` to logits.

Constructors take ``input_dim`` (``F``), ``num_outputs`` (``C``; 1 for regression), ``task`` (the
``TaskSpec``: heads that differ by task kind read it) and ``parts`` (the fusion's per-modality
slices of the state, or ``None``), then flat keyword arguments: the config keys
(``modalfuse list heads``). ``forward(state) -> {"logits": [B, C]}``, plus ``"aux_logits"``
(``{m: [B, C]}``, extra loss terms) for decision-level heads.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..datasets.base import TaskSpec
from ..registry import HEADS
from ..schema import Dims, NonNegInt, PosInt, Prob
from .blocks import ContextGating, ResidualFC, mlp, output_layer


def _multilabel(task: TaskSpec) -> bool:
    return task.kind == "multilabel"


@HEADS.register("mlp", description="MLP: hidden layers (ReLU, dropout), then a linear output")
class MLPHead(nn.Module):
    """``[B, F] -> [B, C]``: ``hidden_dims`` layers, then the output layer (empty: a linear
    classifier; over ``identity`` encoders and ``concat``, logistic regression).

    Args:
        hidden_dims: hidden layer widths.
        dropout: after each hidden layer.
    """

    def __init__(self, input_dim: int, num_outputs: int, task: TaskSpec, parts: dict[str, int] | None = None,
                 hidden_dims: Dims = (), dropout: Prob = 0.1) -> None:
        super().__init__()
        self.body = mlp([input_dim, *hidden_dims], dropout)
        self.out = output_layer(hidden_dims[-1] if hidden_dims else input_dim, num_outputs, _multilabel(task))

    def forward(self, state: Tensor) -> dict[str, Tensor]:
        return {"logits": self.out(self.body(state))}


@HEADS.register("fcrn", description="optional projection, residual FC blocks, linear output")
class FCRNHead(nn.Module):
    """``[B, F] -> [B, C]``: a projection to ``hidden_dim`` (``None``: none, blocks at width ``F``),
    ``blocks`` pre-norm residual FC blocks, then the output layer.

    Args:
        hidden_dim: projection width (``None``: no projection).
        blocks: residual blocks.
        dropout: on the projection and inside each block.
    """

    def __init__(self, input_dim: int, num_outputs: int, task: TaskSpec, parts: dict[str, int] | None = None,
                 hidden_dim: PosInt | None = None, blocks: NonNegInt = 1, dropout: Prob = 0.4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = input_dim
        if hidden_dim is not None:
            layers += [nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden_dim
        layers += [ResidualFC(width, dropout) for _ in range(blocks)]
        self.body = nn.Sequential(*layers)
        self.out = output_layer(width, num_outputs, _multilabel(task))

    def forward(self, state: Tensor) -> dict[str, Tensor]:
        return {"logits": self.out(self.body(state))}


@HEADS.register("gated", description="context-gated residual FC blocks, a context gate, linear output")
class GatedHead(nn.Module):
    """``[B, F] -> [B, C]``: ``blocks`` residual FC blocks with context gating, one more context gate
    ``y = x * sigmoid(W x + b)`` on the fused representation (Miech et al. 2017), then the output.

    Args:
        blocks: gated residual blocks before the final gate.
        dropout: inside each block.
    """

    def __init__(self, input_dim: int, num_outputs: int, task: TaskSpec, parts: dict[str, int] | None = None,
                 blocks: NonNegInt = 1, dropout: Prob = 0.4) -> None:
        super().__init__()
        self.body = nn.Sequential(*[ResidualFC(input_dim, dropout, gated=True) for _ in range(blocks)],
                                  ContextGating(input_dim))
        self.out = output_layer(input_dim, num_outputs, _multilabel(task))

    def forward(self, state: Tensor) -> dict[str, Tensor]:
        return {"logits": self.out(self.body(state))}


@HEADS.register("moe", description="the YouTube-8M starter code's mixture of experts")
class MoEHead(nn.Module):
    """Mixture of ``K`` experts per class with a softmax gate (YouTube-8M starter code).

    - multi-label: per class, ``p = sum_k g_k sigmoid(e_k)`` with a "dummy" gate ``g_0`` whose expert
      always says 0; logits ``log p - log(1 - p)`` computed in log space (``1 - p = g_0 + sum_k g_k
      sigmoid(-e_k)``), finite where ``p`` would round to 0 or 1 in float32; expert biases start at
      ``logit(1 / C)``.
    - multiclass: ``p = sum_k g_k softmax(E_k)`` over classes; logits ``log p``.
    - regression: ``y = sum_k g_k e_k``.

    Args:
        num_mixtures: experts ``K``.
    """

    def __init__(self, input_dim: int, num_outputs: int, task: TaskSpec, parts: dict[str, int] | None = None,
                 num_mixtures: PosInt = 2) -> None:
        super().__init__()
        self.kind, self.c, self.k = task.kind, num_outputs, num_mixtures
        dummy = 1 if self.kind == "multilabel" else 0
        gates_per = num_mixtures + dummy
        self.gates = nn.Linear(input_dim, (num_outputs if self.kind == "multilabel" else 1) * gates_per)
        self.experts = nn.Linear(input_dim, num_outputs * num_mixtures)
        if self.kind == "multilabel" and num_outputs > 1:
            nn.init.constant_(self.experts.bias, -math.log(num_outputs - 1))

    def forward(self, state: Tensor) -> dict[str, Tensor]:
        b = state.shape[0]
        e = self.experts(state).view(b, self.c, self.k)  # [B, C, K]
        if self.kind == "multilabel":
            log_g = F.log_softmax(self.gates(state).view(b, self.c, self.k + 1), dim=-1)  # [B, C, K+1]
            log_p = torch.logsumexp(log_g[..., 1:] + F.logsigmoid(e), dim=-1)
            log_q = torch.logsumexp(torch.cat([log_g[..., :1], log_g[..., 1:] + F.logsigmoid(-e)], dim=-1), dim=-1)
            return {"logits": log_p - log_q}
        log_g = F.log_softmax(self.gates(state), dim=-1)  # [B, K]
        if self.kind == "multiclass":
            return {"logits": torch.logsumexp(log_g[:, None, :] + F.log_softmax(e, dim=1), dim=-1)}
        return {"logits": (log_g.exp()[:, None, :] * e).sum(-1)}


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
    votes = F.one_hot(probs.argmax(-1), c).sum(1).to(probs.dtype)  # [B, C]
    return votes + probs.sum(1) / (m + 1), votes


@HEADS.register("vote", description="late fusion (A0): a classifier per modality, majority (or soft) vote")
class VoteHead(nn.Module):
    """Decision-level fusion: a classifier per modality on its slice of the state, then a vote.

    Needs a fusion whose state is the modalities' states side by side (``parts``: ``concat``,
    ``attend``). Each modality's classifier is trained by its own task loss on ``aux_logits`` (one
    run, one optimizer); the fused ``logits`` are detached, so the vote itself is never trained and no
    classifier sees another's gradient: this equals training them separately, except for the shared
    global-norm gradient clip and model selection on the voted validation metric.

    ``vote="majority"``: ``logits`` are ``majority_vote``'s scores (votes plus a tie-break below one
    vote). ``vote="soft"``: the log of the mean probability (multiclass), the mean probability as a
    logit (multi-label). Regression: the mean of the per-modality predictions.

    Args:
        vote: ``majority`` or ``soft`` (multi-label tasks always average: a vote needs one class).
        hidden_dims, dropout: each per-modality classifier's MLP.
    """

    def __init__(self, input_dim: int, num_outputs: int, task: TaskSpec, parts: dict[str, int] | None = None,
                 vote: Literal["majority", "soft"] = "majority", hidden_dims: Dims = (), dropout: Prob = 0.1) -> None:
        super().__init__()
        if not parts:
            raise ValueError("head 'vote' needs one state per modality: use it with fusion 'concat' "
                             "(or another fusion that keeps per-modality parts)")
        self.kind, self.vote = task.kind, vote
        self.order = list(parts)
        self.sizes = [parts[m] for m in self.order]
        self.classifiers = nn.ModuleDict({m: MLPHead(parts[m], num_outputs, task, None, hidden_dims, dropout)
                                          for m in self.order})

    def forward(self, state: Tensor) -> dict[str, Tensor | dict[str, Tensor]]:
        pieces = torch.split(state, self.sizes, dim=-1)
        aux = {m: self.classifiers[m](x)["logits"] for m, x in zip(self.order, pieces)}
        stacked = torch.stack([aux[m] for m in self.order], 1).detach().float()  # [B, M, C]
        if self.kind == "regression":
            return {"logits": stacked.mean(1), "aux_logits": aux}
        if self.kind == "multilabel":
            p = torch.sigmoid(stacked).mean(1).clamp(1e-7, 1 - 1e-7)
            return {"logits": torch.log(p) - torch.log1p(-p), "aux_logits": aux}
        probs = stacked.softmax(-1)
        if self.vote == "soft":
            return {"logits": probs.mean(1).clamp_min(1e-12).log(), "aux_logits": aux}
        scores, _ = majority_vote(probs)
        return {"logits": scores, "aux_logits": aux}
