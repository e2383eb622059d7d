"""The corruptions one by one: what each does to a batch, seeding, nesting and bad levels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from modalfuse.errors import ConfigError, UserError
from modalfuse.robustness.corruptions import CORRUPTIONS, Draws, parse_spec, validate_augment


def draws(batch: int = 0, modality: str = "text", name: str = "noise", seed: int = 0) -> Draws:
    return Draws(seed, name, modality, batch, torch.device("cpu"))


def test_noise_has_the_stated_snr_against_the_feature_std():
    x = torch.zeros(20000, 3)
    std = torch.tensor([1.0, 2.0, 0.0])
    for snr in (20.0, 0.0, -5.0):
        y, _ = CORRUPTIONS["noise"].apply(x, None, snr, draws(), std)
        var = y.var(0).numpy()
        # SNR = var_d / noise var_d; a constant feature (std 0) gets no noise
        assert var[0] == pytest.approx(1.0 / 10 ** (snr / 10), rel=0.05)
        assert var[1] == pytest.approx(4.0 / 10 ** (snr / 10), rel=0.05)
        assert var[2] == 0


def test_noise_leaves_padding_alone():
    x = torch.zeros(4, 5, 2)
    mask = torch.tensor([[True] * 3 + [False] * 2] * 4)
    y, m = CORRUPTIONS["noise"].apply(x, mask, 0.0, draws(), torch.ones(2))
    assert torch.equal(m, mask)
    assert (y[:, 3:] == 0).all() and (y[:, :3] != 0).all()


def test_draws_are_seeded_per_modality_and_batch_not_level():
    a, b = draws()("normal", (5,)), draws()("normal", (5,))
    assert torch.equal(a, b)
    assert not torch.equal(a, draws(batch=1)("normal", (5,)))
    assert not torch.equal(a, draws(modality="audio")("normal", (5,)))
    assert not torch.equal(a, draws(seed=1)("normal", (5,)))


def test_dropped_steps_are_nested_across_levels_and_leave_the_mask_off():
    x = torch.ones(50, 10, 2)
    mask = torch.ones(50, 10, dtype=torch.bool)
    _, m_low = CORRUPTIONS["drop"].apply(x, mask, 0.2, draws(name="drop"), torch.ones(2))
    y, m_high = CORRUPTIONS["drop"].apply(x, mask, 0.6, draws(name="drop"), torch.ones(2))
    assert (m_high <= m_low).all()  # every step gone at 20 % is gone at 60 %
    assert 0.5 < 1 - m_high.float().mean() < 0.7
    assert (y[~m_high] == 0).all() and (y[m_high] == 1).all()


def test_shift_delays_content_and_keeps_the_mask():
    x = torch.arange(1, 7, dtype=torch.float32).view(1, 6, 1)
    mask = torch.tensor([[True] * 5 + [False]])
    y, m = CORRUPTIONS["shift"].apply(x, mask, 2, draws(name="shift"), torch.ones(1))
    assert y.view(-1).tolist() == [0, 0, 1, 2, 3, 0]
    assert torch.equal(m, mask)


def test_quantize_8_bits_is_the_starter_codes_round_trip():
    x = (torch.rand(1000, 1, generator=torch.Generator().manual_seed(0)) * 5 - 2.5)  # no exact .5 ties
    y, _ = CORRUPTIONS["quantize"].apply(x, None, 8, draws(name="quantize"), torch.ones(1))
    # youtube-8m feature_extractor quantize() then utils.Dequantize()
    q = np.round((np.clip(x.numpy().astype(np.float64), -2, 2) + 2) * 255 / 4)
    ref = q * 4 / 255 + (4 / 512 - 2)
    np.testing.assert_allclose(y.numpy(), ref, atol=1e-6)
    y2, _ = CORRUPTIONS["quantize"].apply(x, None, 2, draws(name="quantize"), torch.ones(1))
    assert len(torch.unique(y2)) == 4


def test_dropped_dimensions_fraction():
    x = torch.ones(400, 50)
    y, _ = CORRUPTIONS["dims"].apply(x, None, 0.25, draws(name="dims"), torch.ones(50))
    assert (y == 0).float().mean().item() == pytest.approx(0.25, abs=0.02)


def test_parse_spec_orders_levels_from_clean_to_severe():
    c, levels = parse_spec("noise=0,20,10")
    assert c.name == "noise" and levels == [math.inf, 20, 10, 0]
    assert parse_spec("missing=0.5,0.1")[1] == [0, 0.1, 0.5]
    assert parse_spec("quantize")[1] == [32, 8, 6, 4, 2]


@pytest.mark.parametrize("spec, message", [
    ("nosie", "unknown corruption 'nosie' (did you mean 'noise'?)"),
    ("missing=1.5", "level 1.5 of 'missing' is out of range"),
    ("shift=1.5", "expected a whole number"),
    ("quantize=0", "out of range"),
    ("noise=loud", "'loud' is not a number"),
])
def test_bad_specs_are_one_line_errors(spec, message):
    with pytest.raises(UserError) as e:
        parse_spec(spec)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_validate_augment():
    assert validate_augment([{"name": "noise", "level": 10}]) == [
        {"name": "noise", "level": 10.0, "modality": "all", "p": 1.0}]
    with pytest.raises(ConfigError, match=r"train.augment\[0\].name': 'missing' is what model.modality_dropout"):
        validate_augment([{"name": "missing", "level": 0.5}])
    with pytest.raises(ConfigError, match=r"train.augment\[0\].levle': unknown \(did you mean 'level'\?\)"):
        validate_augment([{"name": "noise", "levle": 10}])
    with pytest.raises(ConfigError, match=r"train.augment\[1\].p'"):
        validate_augment([{"name": "noise"}, {"name": "dims", "p": 2}])
