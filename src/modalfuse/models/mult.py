"""Temporal fusion by cross-modal attention over whole sequences (MulT-style, Tsai et al. 2019).

Fusing only the pooled final states (``concat``/``attention``) lets modalities meet once; here every
target modality's sequence attends to every other modality's sequence, step by step:

    for each target t:   x_t  [B, T_t, d]
        for each source s != t:   h_{s->t} = CrossTransformer(query=x_t, key/value=x_s)   [B, T_t, d]
        h_t = SelfTransformer(concat_s h_{s->t})                                         [B, T_t, (M-1) d]
        z_t = pool(h_t, mask_t)                                                          [B, (M-1) d]
    logits = Head(concat_t z_t)

Sequences may have different lengths (no word alignment needed); masks hide padding. Utterance-level
vectors ``[B, D]`` are length-1 sequences; with the dataset's ``context`` they become the window of
neighbouring segments, and ``pooling: center`` reads the target segment.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..datasets.base import ModalitySpec, TaskSpec
from ..errors import ConfigError
from ..registry import MODELS
from ..schema import Dims, NonNegInt, PosInt, Prob
from .blocks import CrossModalBlock, Pooling, as_sequence, drop_modalities, pool, sinusoidal_encoding
from .classifier import output_size, select_modalities
from .heads import MLPHead


class MulT(nn.Module):
    """Cross-modal transformers for every ordered modality pair, a self-attention transformer per
    target, pooled and concatenated into a head.

    The defaults live in one place, ``build_mult``'s signature (the config keys).

    Args:
        input_dims: feature size per modality.
        task: the task (output size and the head's initialisation).
        d_model, heads, ff_dim, dropout: width and attention of every block.
        cross_layers: cross-modal blocks per (source, target) pair.
        self_layers: self-attention layers over each target's concatenated cross-modal outputs.
        pooling: how a target's sequence becomes one state (``mean``/``first``/``last``/``center``).
        head_hidden: hidden sizes of the output head.
        modality_dropout: during training, the probability of zeroing a modality's whole input per
            sample (at least one modality kept).
    """

    def __init__(self, input_dims: dict[str, int], task: TaskSpec, *, d_model: int, heads: int, ff_dim: int,
                 dropout: float, cross_layers: int, self_layers: int, pooling: Pooling, head_hidden: tuple[int, ...],
                 modality_dropout: float) -> None:
        super().__init__()
        self.order = sorted(input_dims)
        if len(self.order) < 2:
            raise ConfigError("config key 'model.modalities': mult needs at least two modalities")
        if d_model % heads:
            raise ConfigError(f"config key 'model.d_model': {d_model} is not divisible by model.heads ({heads})")
        self.proj = nn.ModuleDict({m: nn.Linear(input_dims[m], d_model) for m in self.order})
        self.cross = nn.ModuleDict({
            f"{s}->{t}": nn.ModuleList(CrossModalBlock(d_model, heads, ff_dim, dropout) for _ in range(cross_layers))
            for t in self.order for s in self.order if s != t
        })
        width = (len(self.order) - 1) * d_model
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout, batch_first=True, norm_first=True)
        self.self_attn = nn.ModuleDict({
            t: nn.TransformerEncoder(layer, self_layers, enable_nested_tensor=False) for t in self.order
        }) if self_layers else None
        self.dropout = nn.Dropout(dropout)
        self.pooling = pooling
        self.modality_dropout = modality_dropout
        self.head = MLPHead(len(self.order) * width, output_size(task), task, None, tuple(head_hidden), dropout)

    def forward(self, features: dict[str, Tensor], masks: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """``features[m]`` ``[B, T_m, D_m]`` or ``[B, D_m]``; ``masks[m]`` ``[B, T_m]`` -> ``{"logits": [B, C]}``."""
        masks = masks or {}
        inputs = {m: features[m] for m in self.order}
        if self.training and self.modality_dropout > 0:
            inputs = drop_modalities(inputs, self.modality_dropout)
        seqs: dict[str, Tensor] = {}
        valid: dict[str, Tensor | None] = {}
        for m in self.order:
            x, mask = as_sequence(inputs[m], masks.get(m))
            h = self.proj[m](x)
            seqs[m] = self.dropout(h + sinusoidal_encoding(h.shape[1], h.shape[2], h.device))
            valid[m] = mask
        pooled = []
        for t in self.order:
            parts = []
            for s in self.order:
                if s == t:
                    continue
                h = seqs[t]
                pad = None if valid[s] is None else ~valid[s]
                for block in self.cross[f"{s}->{t}"]:
                    h = block(h, seqs[s], pad)
                parts.append(h)
            h = torch.cat(parts, -1)  # [B, T_t, (M-1) d]
            if self.self_attn is not None:
                h = self.self_attn[t](h, src_key_padding_mask=None if valid[t] is None else ~valid[t])
            pooled.append(pool(h, valid[t], self.pooling))
        return self.head(torch.cat(pooled, -1))


@MODELS.register("mult", task="sentiment",
                 description="temporal fusion: cross-modal attention between whole sequences (MulT-style)")
def build_mult(specs: dict[str, ModalitySpec], task: TaskSpec, *, modalities: list[str] | None = None,
               d_model: PosInt = 32, heads: PosInt = 4, ff_dim: PosInt = 64, dropout: Prob = 0.1,
               cross_layers: PosInt = 1, self_layers: NonNegInt = 1, pooling: Pooling = "mean",
               head_hidden: Dims = (64,), modality_dropout: Prob = 0.0) -> MulT:
    """MulT over the chosen ``modalities`` (``None``: all of the data's); keys as ``MulT``'s arguments."""
    use = select_modalities(modalities, specs)
    return MulT({m: specs[m].dim for m in use}, task, d_model=d_model, heads=heads, ff_dim=ff_dim, dropout=dropout,
                cross_layers=cross_layers, self_layers=self_layers, pooling=pooling, head_hidden=head_hidden,
                modality_dropout=modality_dropout)
