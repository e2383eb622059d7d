"""Encoders map one modality ``[B, D]`` or ``[B, T, D]`` (+ mask ``[B, T]``) to a state.

Every encoder exposes ``output_dim`` (``H``) and ``returns_sequence``: ``False`` gives a state
``[B, H]``; ``True`` gives tokens ``[B, T, H]`` that keep the input's mask (the transformer with
``pooling: none``, ``identity`` on sequence data), for fusions that work on token sequences.
Constructors take the data's ``input_dim`` and ``seq_len`` (``None`` for one vector per sample) and
flat keyword arguments: those are the config keys (``modalfuse list encoders``).
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from ..registry import ENCODERS
from ..schema import Dims, NonNegFloat, NonNegInt, PosInt, Prob
from .blocks import (Pooling, ResidualFC, TokenSelfAttention, as_vector, gaussian_noise, mlp, pool,
                     sinusoidal_encoding)


@ENCODERS.register("identity", description="the features as they are (a vector, or the token sequence)")
class Identity(nn.Module):
    """No parameters: ``[B, D]`` stays a state; a sequence ``[B, T, D]`` stays a token sequence."""

    def __init__(self, input_dim: int, seq_len: int | None = None) -> None:
        super().__init__()
        self.output_dim = input_dim
        self.returns_sequence = seq_len is not None

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return x


@ENCODERS.register("mlp", description="(masked mean over time, then) an MLP")
class MLPEncoder(nn.Module):
    """A vector, or the masked mean of a sequence, through an MLP.

    Args:
        input_dim: feature size ``D``.
        hidden_dims: sizes of the hidden layers; the last is ``output_dim`` (empty: identity).
        dropout: dropout after each layer.
        input_dropout: dropout on the input features.
        input_noise: standard deviation of Gaussian noise added to the input features while
            training (features are z-scored by default, so this is in units of one feature's std).
    """

    def __init__(self, input_dim: int, seq_len: int | None = None, hidden_dims: Dims = (64,), dropout: Prob = 0.1,
                 input_dropout: Prob = 0.0, input_noise: NonNegFloat = 0.0) -> None:
        super().__init__()
        self.input_dropout = nn.Dropout(input_dropout)
        self.input_noise = input_noise
        self.net = mlp([input_dim, *hidden_dims], dropout)
        self.output_dim = hidden_dims[-1] if hidden_dims else input_dim
        self.returns_sequence = False

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``[B, D]`` or ``[B, T, D]`` -> ``[B, output_dim]``."""
        return self.net(self.input_dropout(gaussian_noise(as_vector(x, mask), self.input_noise, self.training)))


@ENCODERS.register("transformer", description="projection -> sinusoidal positions -> transformer encoder -> masked pooling")
class ModalityTransformer(nn.Module):
    """The sentiment paper's ModalityTransformer: a transformer over one modality's sequence.

    Args:
        input_dim: feature size ``D``.
        seq_len: padded length ``T`` (``None`` for one vector per sample); any length works.
        d_model: model width, also ``output_dim``; must be divisible by ``heads``.
        layers, heads, ff_dim, dropout: the ``nn.TransformerEncoder``'s depth (0: projection +
            positions only), attention heads, feed-forward size and dropout.
        pooling: ``mean`` over valid steps, ``first``, ``last``, ``center`` (see ``blocks.pool``), or
            ``none``: return the token sequence ``[B, T, d_model]`` for a sequence fusion.
        input_dropout: dropout on the input features.
        input_noise: standard deviation of Gaussian noise added to the input features while training.
    """

    def __init__(self, input_dim: int, seq_len: int | None = None, d_model: PosInt = 64, layers: NonNegInt = 2,
                 heads: PosInt = 4, ff_dim: PosInt = 128, dropout: Prob = 0.1,
                 pooling: Pooling | Literal["none"] = "mean", input_dropout: Prob = 0.0,
                 input_noise: NonNegFloat = 0.0) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        self.input_dropout = nn.Dropout(input_dropout)
        self.input_noise = input_noise
        self.proj = nn.Linear(input_dim, d_model)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, heads, ff_dim, dropout, batch_first=True)
        # enable_nested_tensor=False: the nested fast path drops fully padded steps and changes shapes.
        self.encoder = (nn.TransformerEncoder(layer, layers, enable_nested_tensor=False) if layers
                        else nn.Identity())
        self.pooling = pooling
        self.output_dim = d_model
        self.returns_sequence = pooling == "none"

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` ``[B, T, D]`` or ``[B, D]``; ``mask`` ``[B, T]`` bool (True = real) ->
        ``[B, d_model]`` (or ``[B, T, d_model]`` with ``pooling: none``)."""
        if x.dim() == 2:
            x, mask = x.unsqueeze(1), None
        h = self.proj(self.input_dropout(gaussian_noise(x, self.input_noise, self.training)))
        h = self.dropout(h + sinusoidal_encoding(h.shape[1], h.shape[2], h.device))
        if mask is not None:
            # A sequence with no valid step would make attention all -inf (NaN); let it see step 0.
            mask = mask.clone()
            mask[~mask.any(1), 0] = True
        if isinstance(self.encoder, nn.TransformerEncoder):
            h = self.encoder(h, src_key_padding_mask=None if mask is None else ~mask)
        return h if self.pooling == "none" else pool(h, mask, self.pooling)


@ENCODERS.register("fcrn", description="projection + residual FC blocks (optional context gating)")
class FCRNEncoder(nn.Module):
    """``[B, D] -> [B, hidden_dim]``: a projection, then ``blocks`` pre-norm residual FC blocks.

    Args:
        hidden_dim: width of the projection and of every block (``output_dim``).
        blocks: residual blocks after the projection.
        dropout: dropout on the projection and inside each block.
        gated: context gating on each block's residual branch (Miech et al., 2017).
    """

    def __init__(self, input_dim: int, seq_len: int | None = None, hidden_dim: PosInt = 512, blocks: NonNegInt = 2,
                 dropout: Prob = 0.4, gated: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout)]
        layers += [ResidualFC(hidden_dim, dropout, gated) for _ in range(blocks)]
        self.net = nn.Sequential(*layers)
        self.output_dim = hidden_dim
        self.returns_sequence = False

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.net(as_vector(x, mask))


@ENCODERS.register("attend", description="Attend-Fusion branch: FC layers, then self-attention over tokens cut from the last layer")
class AttendEncoder(nn.Module):
    """One Attend-Fusion branch as an encoder: FC layers ``[B, D] -> [B, T * d]``, then self-attention
    over its ``T`` tokens (``blocks.TokenSelfAttention``). The ``attend`` fusion does the same after
    any encoder and returns the attention weights; this encoder lets the branch sit under any fusion.

    Args:
        hidden_dims: FC layers; the last width is cut into ``tokens`` tokens (``output_dim``).
        tokens, heads, layers, ffn_mult: the attention over tokens.
        dropout: dropout on the FC layers.
        attention_dropout: dropout inside the attention blocks (``None``: ``dropout``).
        final_norm: LayerNorm on each output token.
    """

    def __init__(self, input_dim: int, seq_len: int | None = None, hidden_dims: Dims = (256,), tokens: PosInt = 8,
                 heads: PosInt = 4, layers: PosInt = 1, ffn_mult: NonNegInt = 2, dropout: Prob = 0.4,
                 attention_dropout: Prob | None = None, final_norm: bool = False) -> None:
        super().__init__()
        if not hidden_dims:
            raise ValueError("hidden_dims needs at least one layer (its last width is cut into tokens)")
        self.fc = mlp([input_dim, *hidden_dims], dropout)
        self.attention = TokenSelfAttention(hidden_dims[-1], tokens, heads, layers, ffn_mult,
                                            dropout if attention_dropout is None else attention_dropout, final_norm)
        self.output_dim = hidden_dims[-1]
        self.returns_sequence = False

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.attention(self.fc(as_vector(x, mask)))[0]
