"""Known answers for the fusion zoo (tensor, gated, bilinear and cross-modal fusions): each fusion
computes its documented equation, its parameter-count formula (docs/fusions.md) matches the real
count, masks hide padding, and a combination that cannot work is one config error naming the reason.
The registry-wide forward/backward/every-gradient checks are in test_registry.py."""

from __future__ import annotations

import pytest
import torch

from modalfuse import plugins
from modalfuse.cli import main
from modalfuse.errors import ConfigError
from modalfuse.models import build_model, count_parameters
from modalfuse.models.fusions.bilinear import bilinear_parameters
from modalfuse.models.fusions.crossmodal import crossmodal_parameters
from modalfuse.models.fusions.gated import gmu_parameters, moe_parameters
from modalfuse.models.fusions.tensor import lmf_parameters, tfn_parameters
from modalfuse.registry import FUSIONS

from .conftest import DIMS, TASKS, batch, specs

plugins.load()

ZOO = ["tfn", "lmf", "gmu", "modality-moe", "mfb", "mlb", "crossmodal"]


def _build(name: str, dims: dict[str, int], seq: bool = False, **keys):
    torch.manual_seed(0)
    return FUSIONS.build({"name": name, **keys}, "model.fusion", input_dims=dims,
                         sequence={m: seq for m in dims}).eval()


def _vectors(dims: dict[str, int], b: int = 4, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(b, d, generator=g) for m, d in dims.items()}


def _one(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones(x.shape[0], 1)], -1)


# --- tensor fusion and its low-rank factorisation ---------------------------------------------------

def test_tfn_is_the_flattened_outer_product_of_the_one_extended_vectors_then_its_projection() -> None:
    dims = {"audio": 3, "text": 4, "video": 2}
    fusion = _build("tfn", dims, output_dim=5, dropout=0.0)
    x = _vectors(dims)
    want = torch.einsum("bi,bj,bk->bijk", _one(x["audio"]), _one(x["text"]), _one(x["video"])).flatten(1)
    z = fusion.tensor([x["audio"], x["text"], x["video"]])
    assert z.shape == (4, 4 * 5 * 3) and torch.allclose(z, want, atol=1e-6)
    # the constant 1 keeps the unimodal terms: the last entry of each block is h_audio alone
    assert torch.allclose(want.view(4, 4, 5, 3)[:, :3, -1, -1], x["audio"])
    out = fusion(x).state
    assert torch.allclose(out, torch.relu(fusion.out(want)), atol=1e-5)
    # modalities are taken in sorted order whatever the dict order
    assert torch.allclose(fusion({m: x[m] for m in ("video", "text", "audio")}).state, out)


def test_lmf_equals_tfn_with_the_weight_tensor_its_factors_make() -> None:
    """LMF's projection is TFN's with W = sum_i w_1^(i) (x) ... (x) w_M^(i) (per output unit)."""
    dims = {"audio": 3, "text": 4, "video": 2}
    lmf = _build("lmf", dims, output_dim=5, rank=3, dropout=0.0)
    tfn = _build("tfn", dims, output_dim=5, dropout=0.0)
    f = [lmf.factors[m] for m in sorted(dims)]  # [r, H_m + 1, F]
    w = torch.einsum("rif,rjf,rkf->ijkf", *f).reshape(-1, 5)  # [prod(H_m + 1), F], row-major like vec(Z)
    with torch.no_grad():
        tfn.out.weight.copy_(w.T)
        tfn.out.bias.copy_(lmf.bias)
    x = _vectors(dims)
    assert torch.allclose(lmf(x).state, tfn(x).state, atol=1e-5)


def test_lmf_at_full_rank_represents_any_tfn_weight() -> None:
    """Two modalities: rank min(H_m + 1) reproduces a random TFN exactly (an SVD per output unit)."""
    dims = {"audio": 3, "text": 5}
    tfn = _build("tfn", dims, output_dim=4, dropout=0.0)
    rank = min(dims.values()) + 1
    lmf = _build("lmf", dims, output_dim=4, rank=rank, dropout=0.0)
    w = tfn.out.weight.detach().T.reshape(4, 6, 4)  # [H_a + 1, H_t + 1, F]
    with torch.no_grad():
        for o in range(4):
            u, s, vh = torch.linalg.svd(w[:, :, o], full_matrices=False)
            lmf.factors["audio"][:, :, o] = (u * s).T
            lmf.factors["text"][:, :, o] = vh
        lmf.bias.copy_(tfn.out.bias)
    x = _vectors(dims)
    assert torch.allclose(lmf(x).state, tfn(x).state, atol=1e-5)
    # at the sizes that matter the factors are far smaller (three 64-d states, rank 4: 50k vs 17.6M)
    assert lmf_parameters([64] * 3, 64, 4) * 300 < tfn_parameters([64] * 3, 64)


# --- gated fusions --------------------------------------------------------------------------------

def test_gmu_bimodal_is_the_papers_unit_with_a_gate_in_0_1() -> None:
    dims = {"audio": 3, "text": 4}
    gmu = _build("gmu", dims, hidden_dim=6, dropout=0.0)
    x = _vectors(dims)
    xs = [x["audio"], x["text"]]
    gates = gmu.gates(xs)
    assert gates.shape == (4, 2, 6) and (gates >= 0).all() and (gates <= 1).all()
    z = torch.sigmoid(gmu.gate(torch.cat(xs, -1)))
    want = z * torch.tanh(gmu.transform["audio"](x["audio"])) + (1 - z) * torch.tanh(gmu.transform["text"](x["text"]))
    assert torch.allclose(gmu(x).state, want, atol=1e-6)


def test_gmu_with_three_modalities_has_one_sigmoid_gate_each() -> None:
    gmu = _build("gmu", DIMS, hidden_dim=6, dropout=0.0)
    x = _vectors(DIMS)
    gates = gmu.gates([x[m] for m in sorted(DIMS)])
    assert gates.shape == (4, 3, 6) and (gates > 0).all() and (gates < 1).all()
    h = torch.stack([torch.tanh(gmu.transform[m](x[m])) for m in sorted(DIMS)], 1)
    assert torch.allclose(gmu(x).state, (gates * h).sum(1), atol=1e-6)


def test_modality_moe_gate_sums_to_1_and_a_saturated_gate_returns_that_expert() -> None:
    moe = _build("modality-moe", DIMS, hidden_dim=6, dropout=0.0)
    x = _vectors(DIMS)
    out = moe(x)
    assert out.attention.shape == (4, 1, 1, 3)
    assert torch.allclose(out.attention.sum(-1), torch.ones(4, 1, 1), atol=1e-6)
    assert not torch.allclose(out.attention[0], out.attention[1])  # per sample
    with torch.no_grad():
        moe.gate.weight.zero_()
        moe.gate.bias.copy_(torch.tensor([0.0, 50.0, 0.0]))  # sorted: audio, text, video
    assert torch.allclose(moe(x).state, torch.relu(moe.experts["text"](x["text"])), atol=1e-5)


# --- bilinear pooling -----------------------------------------------------------------------------

def test_mfb_sum_pools_the_product_of_projections_then_normalises() -> None:
    dims = {"audio": 3, "text": 4}
    mfb = _build("mfb", dims, output_dim=5, factors=3, dropout=0.0)
    x = _vectors(dims)
    joint = mfb.proj["audio"](x["audio"]) * mfb.proj["text"](x["text"])  # [B, k o]
    z = joint.view(4, 5, 3).sum(-1)
    z = torch.sign(z) * (torch.sqrt(z.abs() + 1e-6) - 1e-3)
    out = mfb(x).state
    assert torch.allclose(out, z / z.norm(dim=-1, keepdim=True), atol=1e-5)
    assert torch.allclose(out.norm(dim=-1), torch.ones(4), atol=1e-5)


def test_mlb_is_the_hadamard_product_of_tanh_projections() -> None:
    mlb = _build("mlb", DIMS, output_dim=5, dropout=0.0)
    x = _vectors(DIMS)
    want = torch.ones(4, 5)
    for m in sorted(DIMS):
        want = want * torch.tanh(mlb.proj[m](x[m]))
    assert torch.allclose(mlb(x).state, want, atol=1e-6)


def test_the_bilinear_gradient_is_finite_where_the_pooled_value_is_zero() -> None:
    """sqrt's slope at 0 is infinite; the eps shift keeps MFB trainable when a unit is exactly 0."""
    mfb = _build("mfb", {"audio": 2, "text": 2}, output_dim=3, factors=1, dropout=0.0)
    with torch.no_grad():
        mfb.proj["audio"].weight.zero_()
        mfb.proj["audio"].bias.zero_()
    x = {m: v.requires_grad_() for m, v in _vectors({"audio": 2, "text": 2}).items()}
    mfb(x).state.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in mfb.parameters())


# --- cross-modal fusion ---------------------------------------------------------------------------

def test_crossmodal_ignores_padded_steps_of_every_modality() -> None:
    fusion = _build("crossmodal", DIMS, seq=True, d_model=8, heads=2, ff_dim=16)
    feats, masks, _ = batch(6)  # rows with 6, 2, 1 and 6 real steps
    out = fusion(feats, masks).state
    assert out.shape == (4, 3 * 2 * 8) and torch.isfinite(out).all()
    noisy = {m: torch.where(masks[m].unsqueeze(-1), x, 1e3 * torch.randn_like(x)) for m, x in feats.items()}
    assert torch.allclose(fusion(noisy, masks).state, out, atol=1e-5)
    # a real step does matter
    changed = {**feats, "audio": feats["audio"].clone()}
    changed["audio"][1, 0] += 1.0
    assert not torch.allclose(fusion(changed, masks).state[1], out[1], atol=1e-4)


def test_the_mult_presets_are_the_classifier_with_crossmodal_fusion() -> None:
    """MulT is a preset of the one classifier: identity encoders (each modality's sequence as it is),
    the crossmodal fusion, an MLP head; its parameters are the fusion's formula plus the head's."""
    from modalfuse.config import load_config
    from modalfuse.listing import PRESET_DIR
    from modalfuse.models.fusions.crossmodal import crossmodal_parameters

    task = TASKS["multiclass"]
    for preset in ("mosi/mult", "mosei/mult"):
        cfg = load_config(PRESET_DIR / f"{preset}.yaml")
        assert cfg.model["name"] == "fusion" and cfg.model["encoder"]["name"] == "identity"
        assert cfg.model["fusion"]["name"] == "crossmodal"
        model = build_model(cfg.model, specs(6), task)
        f = cfg.model["fusion"]
        fusion = crossmodal_parameters([model.encoders[m].output_dim for m in model.modalities], f["d_model"],
                                       f["ff_dim"], f["cross_layers"], f["self_layers"])
        assert count_parameters(model.fusion) == fusion and count_parameters(model.encoders) == 0


# --- parameter-count formulas (docs/fusions.md) ---------------------------------------------------

@pytest.mark.parametrize("dims", [{"a": 3, "b": 5}, {"audio": 8, "text": 12, "video": 16}, {"a": 4, "b": 4, "c": 2, "d": 3}])
def test_parameter_formulas_match_the_real_counts(dims: dict[str, int]) -> None:
    widths = [dims[m] for m in sorted(dims)]

    def count(name: str, seq: bool = False, **keys) -> int:
        return count_parameters(_build(name, dims, seq=seq, **keys))

    assert count("tfn", output_dim=7) == tfn_parameters(widths, 7)
    assert count("tfn", output_dim=7, proj_dim=3) == tfn_parameters(widths, 7, 3)
    assert count("lmf", output_dim=7, rank=3) == lmf_parameters(widths, 7, 3)
    assert count("gmu", hidden_dim=7) == gmu_parameters(widths, 7)
    assert count("modality-moe", hidden_dim=7) == moe_parameters(widths, 7)
    assert count("mfb", output_dim=7, factors=3) == bilinear_parameters(widths, 7, 3)
    assert count("mlb", output_dim=7) == bilinear_parameters(widths, 7, 1)
    d = 8  # the seeds' fusions, as docs/fusions.md writes them
    attention = sum(h * d + d for h in widths) + len(widths) * d + 8 * d * d + 11 * d
    assert count("attention", d_model=d, heads=2) == attention + d * d + 2 * d
    assert count("attention-uniform", d_model=d, heads=2) == attention
    widths2 = [2 * h for h in widths]  # attend: 2 tokens per state, f = ffn_mult
    for layers, f in [(1, 2), (2, 0)]:
        per_layer = [(4 + 2 * f) * (h // 2) ** 2 + (9 + f) * (h // 2) if f else 4 * (h // 2) ** 2 + 6 * (h // 2)
                     for h in widths2]
        assert count_parameters(_build("attend", {m: 2 * h for m, h in dims.items()}, tokens=2, heads=1, layers=layers,
                                       ffn_mult=f)) == sum(2 * (h // 2) + layers * p for h, p in zip(widths2, per_layer))
    for cross, self_ in [(1, 1), (2, 0), (1, 2)]:
        assert count("crossmodal", seq=True, d_model=8, heads=2, ff_dim=12, cross_layers=cross,
                     self_layers=self_) == crossmodal_parameters(widths, 8, 12, cross, self_)


# --- masks and bad input --------------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in ZOO if n != "crossmodal"])
def test_vector_fusions_pool_token_sequences_over_valid_steps_only(name: str) -> None:
    fusion = _build(name, DIMS, seq=True)
    feats, masks, _ = batch(6)
    out = fusion(feats, masks).state
    noisy = {m: torch.where(masks[m].unsqueeze(-1), x, 1e3 * torch.randn_like(x)) for m, x in feats.items()}
    assert torch.allclose(fusion(noisy, masks).state, out, atol=1e-5)
    pooled = {m: (x * masks[m].unsqueeze(-1)).sum(1) / masks[m].sum(1, keepdim=True) for m, x in feats.items()}
    assert torch.allclose(_build(name, DIMS)(pooled).state, out, atol=1e-5)


def test_crossmodal_on_vector_states_says_to_keep_the_tokens() -> None:
    with pytest.raises(ConfigError, match=r"model\.fusion.*crossmodal fuses token sequences.*pooling: none"):
        build_model({"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [8]}, "fusion": {"name": "crossmodal"}},
                    specs(6), TASKS["multiclass"])


def test_tfn_refuses_what_it_cannot_afford_and_says_how_many_parameters() -> None:
    dims = {"audio": 256, "rgb": 2048, "text": 300}
    need = tfn_parameters(list(dims.values()), 64)
    with pytest.raises(ConfigError, match=rf"model\.fusion.*would need {need:,} parameters.*max_parameters=50,000,000.*proj_dim"):
        _build("tfn", dims)
    with torch.device("meta"):  # affordable once projected
        assert count_parameters(_build("tfn", dims, proj_dim=16)) == tfn_parameters(list(dims.values()), 64, 16)
    with pytest.raises(ConfigError, match="max_parameters=1,000"):
        _build("tfn", {"a": 8, "b": 8}, max_parameters=1000)


@pytest.mark.parametrize("name", ZOO)
def test_every_zoo_fusion_needs_two_modalities(name: str) -> None:
    with pytest.raises(ConfigError, match=r"model\.fusion.*2 or more modalities, got 1 \(text\)"):
        _build(name, {"text": 8}, seq=True)


def test_a_bad_fusion_is_one_line_and_exit_2_on_the_command_line(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    code = main(["train", "synthetic", "--out", str(tmp_path), "--set", "model.fusion={name: crossmodal}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "crossmodal fuses token sequences" in err[0], err
    assert not any(tmp_path.iterdir())  # no orphan run folder
