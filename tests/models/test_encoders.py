"""The ModalityTransformer and the pooling blocks."""

from __future__ import annotations

import pytest
import torch

from modalfuse import plugins
from modalfuse.errors import ConfigError
from modalfuse.models.blocks import pool, sinusoidal_encoding
from modalfuse.models.encoders import ModalityTransformer
from modalfuse.registry import ENCODERS

plugins.load()


def tiny(**kw) -> ModalityTransformer:
    torch.manual_seed(0)
    return ModalityTransformer(5, d_model=8, heads=2, ff_dim=16, layers=1, dropout=0.0, **kw).eval()


@pytest.mark.parametrize("pooling", ["mean", "first", "last", "center"])
@pytest.mark.parametrize("t", [1, 2, 7])
def test_shapes_backward_any_length(pooling: str, t: int) -> None:
    enc = tiny(pooling=pooling).train()
    x = torch.randn(3, t, 5, requires_grad=True)
    mask = torch.ones(3, t, dtype=torch.bool)
    mask[0, t // 2 + 1:] = False
    out = enc(x, mask)
    assert out.shape == (3, 8) and torch.isfinite(out).all()
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_pooling_none_returns_the_token_sequence() -> None:
    enc = tiny(pooling="none")
    assert enc.returns_sequence and enc(torch.randn(2, 6, 5)).shape == (2, 6, 8)


def test_vector_input_is_a_length_one_sequence() -> None:
    enc = tiny()
    x = torch.randn(4, 5)
    assert torch.allclose(enc(x), enc(x.unsqueeze(1), torch.ones(4, 1, dtype=torch.bool)), atol=1e-6)


def test_padding_does_not_change_the_state() -> None:
    enc = tiny()
    x = torch.randn(2, 3, 5)
    padded = torch.cat([x, 100 * torch.randn(2, 4, 5)], 1)
    mask = torch.zeros(2, 7, dtype=torch.bool)
    mask[:, :3] = True
    for how in ("mean", "first", "last"):
        enc.pooling = how
        assert torch.allclose(enc(x), enc(padded, mask), atol=1e-5), how


def test_fully_masked_row_stays_finite() -> None:
    out = tiny()(torch.randn(2, 4, 5), torch.tensor([[True, True, False, False], [False] * 4]))
    assert torch.isfinite(out).all()


def test_pool_picks_the_right_steps() -> None:
    x = torch.arange(2 * 5, dtype=torch.float32).reshape(2, 5, 1)
    mask = torch.tensor([[False, True, True, True, False], [True, True, False, False, False]])
    assert pool(x, mask, "first").flatten().tolist() == [1.0, 5.0]
    assert pool(x, mask, "last").flatten().tolist() == [3.0, 6.0]
    assert pool(x, mask, "center").flatten().tolist() == [2.0, 7.0]
    assert pool(x, mask, "mean").flatten().tolist() == [2.0, 5.5]


def test_positions_matter() -> None:
    pe = sinusoidal_encoding(6, 8)
    assert pe.shape == (6, 8) and torch.allclose(pe[0, 1::2], torch.ones(4))
    enc = tiny(pooling="first")
    same = torch.randn(1, 1, 5).expand(1, 4, 5)
    a = enc(same)
    enc.pooling = "last"
    assert not torch.allclose(a, enc(same), atol=1e-4)


def test_heads_must_divide_width_as_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"model.encoder.*divisible"):
        ENCODERS.build({"name": "transformer", "d_model": 10, "heads": 3}, "model.encoder", input_dim=5, seq_len=None)


@pytest.mark.parametrize("name", ["transformer", "mlp"])
def test_input_noise_only_while_training(name: str) -> None:
    torch.manual_seed(0)
    enc = ENCODERS.build({"name": name, "input_noise": 1.0, "dropout": 0.0}, "model.encoder", input_dim=5, seq_len=None)
    x = torch.randn(4, 5)
    enc.eval()
    assert torch.equal(enc(x), enc(x))
    enc.train()
    assert not torch.allclose(enc(x), enc(x))
