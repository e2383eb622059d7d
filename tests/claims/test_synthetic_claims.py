"""A user's own claims on the synthetic comparison (trained once, tiny): claims that must come out
supported, contradicted and inconclusive, through `modalfuse claims` and the report's section."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import yaml

from modalfuse.cli import main

# On the synthetic data the label is an interaction of the modalities: early fusion learns it (about
# 0.9 accuracy in 10 epochs), video alone reaches about 0.49, text and audio alone about 0.25 (chance).
CLAIMS = {
    "paper": "a user's own claims on the synthetic data",
    "models": {m: {"label": m} for m in ("text", "audio", "video", "early")},
    "metrics": {"acc": {"definition": "test accuracy", "unit": "percent"},
                "params": {"definition": "trainable parameters", "unit": "count"}},
    "datasets": {"synthetic": {"match": {"data.name": "synthetic"}, "metrics": {"acc": "accuracy", "params": "parameters"}},
                 "other": {"match": {"data.name": "mosi"}, "metrics": {"acc": "accuracy"}}},
    "claims": [
        {"id": "early-above-video", "source": "t", "kind": "ordering", "dataset": "synthetic", "metric": "acc", "a": "early", "b": "video"},
        {"id": "video-above-early", "source": "t", "kind": "ordering", "dataset": "synthetic", "metric": "acc", "a": "video", "b": "early"},
        {"id": "text-above-audio", "source": "t", "kind": "ordering", "dataset": "synthetic", "metric": "acc", "a": "text", "b": "audio"},
        {"id": "early-like-video", "source": "t", "kind": "equivalence", "dataset": "synthetic", "metric": "acc", "a": "early",
         "b": "video", "margin": 1.0, "margin_by": "project"},
        {"id": "text-like-audio-tight", "source": "t", "kind": "equivalence", "dataset": "synthetic", "metric": "acc", "a": "text",
         "b": "audio", "margin": 0.1, "margin_by": "project"},
        {"id": "text-like-audio-wide", "source": "t", "kind": "equivalence", "dataset": "synthetic", "metric": "acc",
         "a": "text", "b": "audio", "margin": 10.0, "margin_by": "project"},
        {"id": "early-not-worse", "source": "t", "kind": "non-inferiority", "dataset": "synthetic", "metric": "acc", "a": "early",
         "b": "video", "margin": 1.0, "margin_by": "paper"},
        {"id": "early-99", "source": "t", "kind": "value", "dataset": "synthetic", "metric": "acc", "model": "early", "published": 99.0},
        {"id": "on-other-data", "source": "t", "kind": "value", "dataset": "other", "metric": "acc", "model": "early", "published": 80.0},
    ],
}
PRESET = """\
description: synthetic comparison with claims (tests/claims)
seeds: 3
claims: [{claims}]
models:
  text: {{config: synthetic, overrides: ["model.modalities=[text]"]}}
  audio: {{config: synthetic, overrides: ["model.modalities=[audio]"]}}
  video: {{config: synthetic, overrides: ["model.modalities=[video]"]}}
  early: synthetic
overrides: [train.epochs=10, train.patience=4]
"""


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from modalfuse.comparison import compare

    base = tmp_path_factory.mktemp("claims")
    claims = base / "own-claims.yaml"
    claims.write_text(yaml.safe_dump(CLAIMS, sort_keys=False))
    preset = base / "with-claims.yaml"
    preset.write_text(PRESET.format(claims=claims))
    folder = compare([str(preset)], out=str(base / "cmp"), stream=io.StringIO())
    return folder, claims


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {r["claim"]: r for r in csv.DictReader(f)}


@pytest.mark.slow
def test_claims_command_verdicts(compared: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, claims = compared
    assert main(["claims", str(claims), str(folder), "--out", str(tmp_path / "out")]) == 0
    assert "| `early-above-video` | ordering |" in capsys.readouterr().out
    with open(tmp_path / "out" / "claims.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[:11] == ["claim", "kind", "dataset", "metric", "published", "reproduced", "ci_low", "ci_high",
                           "margin", "verdict", "reason"]
    rows = _rows(tmp_path / "out" / "claims.csv")
    verdict = {k: r["verdict"] for k, r in rows.items()}
    assert verdict["early-above-video"] == "supported"
    assert verdict["video-above-early"] == "contradicted"
    assert verdict["text-above-audio"] == "inconclusive" and "80 % power" in rows["text-above-audio"]["reason"]
    assert verdict["early-like-video"] == "contradicted"
    assert verdict["text-like-audio-tight"] == "inconclusive" and "margin of" in rows["text-like-audio-tight"]["reason"]
    assert verdict["early-not-worse"] == "supported" and "warning" not in rows["early-not-worse"]["reason"]
    # two models no better than a constant are "equivalent": supported, with the warning that says so
    assert verdict["text-like-audio-wide"] == "supported"
    assert "within the margin of the majority class baseline" in rows["text-like-audio-wide"]["reason"]
    assert verdict["early-99"] == "contradicted"
    assert verdict["on-other-data"] == "not comparable" and "dataset" in rows["on-other-data"]["reason"]
    # numbers in the claim's units (percent), the interval around the estimate
    r = rows["early-above-video"]
    assert float(r["ci_low"]) < float(r["reproduced"]) < float(r["ci_high"]) and float(r["reproduced"]) > 10


@pytest.mark.slow
def test_value_claim_at_the_reproduced_number_is_supported(compared: tuple[Path, Path], tmp_path: Path) -> None:
    folder, claims = compared
    first = _rows(folder / "report" / "claims.csv")["early-99"]
    raw = yaml.safe_load(claims.read_text())
    raw["claims"] = [{**raw["claims"][6], "id": "early-as-reproduced", "published": round(float(first["reproduced"]), 2),
                      "tolerance": 0.005}]
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["claims", str(path), str(folder), "--out", str(tmp_path / "o")]) == 0
    assert _rows(tmp_path / "o" / "claims.csv")["early-as-reproduced"]["verdict"] == "supported"


@pytest.mark.slow
def test_report_has_the_published_claims_section(compared: tuple[Path, Path]) -> None:
    folder, _ = compared
    text = (folder / "report" / "report.md").read_text()
    assert "## Published claims" in text and "`early-above-video`" in text
    rows = _rows(folder / "report" / "claims.csv")
    assert rows["early-above-video"]["verdict"] == "supported" and len(rows) == len(CLAIMS["claims"])
