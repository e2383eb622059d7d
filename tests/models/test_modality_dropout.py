"""``drop_modalities`` drops each modality with probability p (not: keeps a fraction p), keeps at
least one modality per sample, and leaves the kept states as they were."""

from __future__ import annotations

import pytest
import torch

from modalfuse.models.blocks import drop_modalities


@pytest.mark.parametrize("p", [0.2, 0.7])
def test_each_modality_is_dropped_with_probability_p(p: float) -> None:
    torch.manual_seed(0)
    n, names = 40_000, ("audio", "text", "video")
    states = {m: torch.randn(n, 4) + 10.0 for m in names}  # never zero by chance
    out = drop_modalities(states, p)
    dropped = torch.stack([(out[m] == 0).all(-1) for m in names], 1)  # [N, 3]
    # Dropped with probability p, except the rescue: when all three were drawn dropped (p^3), one
    # of them, at random, is kept; so each ends up dropped with probability p - p^3 / 3.
    # (Keeping a fraction p instead would give 1 - p - (1 - p)^3 / 3: 0.63 and 0.29 here.)
    expected = p - p ** 3 / 3
    rate = dropped.float().mean(0)
    assert torch.allclose(rate, torch.full_like(rate, expected), atol=0.012), (rate, expected)
    assert not dropped.all(1).any()  # at least one modality per sample
    for i, m in enumerate(names):  # kept states are untouched (no rescaling), dropped ones are zero
        assert torch.equal(out[m][~dropped[:, i]], states[m][~dropped[:, i]])


def test_p_zero_drops_nothing_and_shapes_follow_the_states() -> None:
    states = {"a": torch.randn(5, 3, 2), "b": torch.randn(5, 7)}
    out = drop_modalities(states, 0.0)
    assert all(torch.equal(out[m], states[m]) for m in states)
