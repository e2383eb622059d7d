"""Claims files: the shipped ones load and match the shipped comparisons; bad files fail with one line
naming the file and the key; the CLI lists them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modalfuse.claims import claims_names, load_claims
from modalfuse.claims.evaluate import match_dataset
from modalfuse.cli import main
from modalfuse.comparison.plan import plan
from modalfuse.errors import ConfigError

MINIMAL = {
    "paper": "p",
    "models": {"a": {"label": "early"}, "b": {"label": "text"}},
    "metrics": {"acc": {"definition": "accuracy", "unit": "percent"}},
    "datasets": {"synthetic": {"match": {"data.name": "synthetic"}, "metrics": {"acc": "accuracy"}}},
    "claims": [{"id": "x", "source": "t1", "kind": "ordering", "dataset": "synthetic", "metric": "acc", "a": "a", "b": "b"}],
}


def _write(tmp_path: Path, raw: dict) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_shipped_claims_load() -> None:
    assert set(claims_names()) >= {"sentiment-paper", "attend-fusion"}
    sentiment = load_claims("sentiment-paper")
    assert {c.kind for c in sentiment.claims} == {"value", "ordering", "difference"}
    af = load_claims("attend-fusion")
    assert {"equivalence", "non-inferiority", "ordering", "value"} <= {c.kind for c in af.claims}
    for cf in (sentiment, af):  # every margin says who chose it
        assert all(c.margin_by for c in cf.claims if c.margin is not None)


@pytest.mark.parametrize("preset,claims,dataset", [
    ("mosi", "sentiment-paper", "CMU-MOSI (utterance features)"),
    ("mosi-words", "sentiment-paper", "CMU-MOSI (word sequences)"),
    ("yt8m-claims", "attend-fusion", "YouTube-8M"),
])
def test_shipped_comparisons_match_a_dataset_and_name_their_claims(preset: str, claims: str, dataset: str) -> None:
    p = plan([preset], seeds=1)
    cf = load_claims(claims)
    assert match_dataset(cf, p.runs[0].raw) == dataset
    assert {m.label for m in cf.models.values()} & set(p.labels)  # the paper's models are in the comparison
    from modalfuse.claims.output import preset_claims

    assert preset_claims([preset]) == [claims]


def test_unknown_key_names_the_valid_keys(tmp_path: Path) -> None:
    raw = {**MINIMAL, "claims": [{**MINIMAL["claims"][0], "margn": 1}]}
    with pytest.raises(ConfigError, match=r"c.yaml: unknown key 'claims.0.margn' \(did you mean 'margin'\?\); valid keys: .*margin_by"):
        load_claims(_write(tmp_path, raw))
    with pytest.raises(ConfigError, match=r"unknown key 'papr'.*valid keys: claims, datasets, metrics, models, paper"):
        load_claims(_write(tmp_path, {**MINIMAL, "papr": "x"}))


def test_claims_must_be_complete_and_consistent(tmp_path: Path) -> None:
    eq = {**MINIMAL["claims"][0], "kind": "equivalence"}
    with pytest.raises(ConfigError, match="an equivalence claim needs a, b, margin, margin_by; missing: margin, margin_by"):
        load_claims(_write(tmp_path, {**MINIMAL, "claims": [eq]}))
    bad_model = {**MINIMAL["claims"][0], "b": "c"}
    with pytest.raises(ConfigError, match=r"claims.0.model: 'c' is not in models"):
        load_claims(_write(tmp_path, {**MINIMAL, "claims": [bad_model]}))
    with pytest.raises(ConfigError, match="no such claims file or shipped claims"):
        load_claims("sentiment-papr")


def test_cli_lists_claims_and_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "claims"]) == 0
    out = capsys.readouterr().out
    assert "sentiment-paper" in out and "attend-fusion" in out
    assert main(["claims", _write(tmp_path, {**MINIMAL, "papr": "x"}), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "unknown key 'papr'" in err
    assert main(["claims", "sentiment-paper", str(tmp_path / "nowhere")]) == 2
    assert "not a run folder or comparison folder" in capsys.readouterr().err
