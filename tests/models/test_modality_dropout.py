"""``drop_modalities`` drops each modality with probability p (not: keeps a fraction p), keeps at
least one modality per sample, and leaves the kept states as they were."""

from __future__ import annotations

import pytest
import torch

from modalfuse.models.missing import drop_modalities


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


def test_missing_means_the_encoder_state_zeroed_everywhere() -> None:
    """The ablation and robustness (``missing_modalities``) remove a modality exactly as modality
    dropout does: its encoder state is zero, not its input (an MLP encoder maps a zero input to a
    non-zero state)."""
    from modalfuse.datasets.base import ModalitySpec, TaskSpec
    from modalfuse.models import build_model
    from modalfuse.models.missing import missing_modalities, zero_states

    torch.manual_seed(0)
    specs = {"audio": ModalitySpec(5), "text": ModalitySpec(7)}
    model = build_model({"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [6]}}, specs,
                        TaskSpec("multiclass", 3)).eval()
    feats = {m: torch.randn(4, s.dim) for m, s in specs.items()}
    keep = torch.tensor([True, False, True, False])
    with torch.no_grad(), missing_modalities(model, {"text": keep}) as on_inputs:
        got = model(on_inputs(feats))["logits"]
    with torch.no_grad():
        states = zero_states({m: model.encoders[m](feats[m]) for m in specs}, {"text": keep})
        want = model.head(model.fusion(states).state)["logits"]
        inputs_zeroed = model(zero_states(feats, {"text": keep}))["logits"]
    assert torch.allclose(got, want)
    assert torch.equal(got[keep], model(feats)["logits"][keep])  # kept samples untouched
    assert not torch.allclose(got[~keep], inputs_zeroed[~keep])  # not the old input zeroing
