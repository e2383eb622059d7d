"""A comparison preset's ``reference:`` is the report's reference unless --reference names another."""

from __future__ import annotations

import pytest

from modalfuse.comparison.plan import plan
from modalfuse.errors import ConfigError
from modalfuse.report import evidence


def test_mosi_presets_declare_text_as_their_reference() -> None:
    for preset in ("mosi", "mosi-words", "mosei"):
        assert plan([preset], seeds=1).reference == "text"
    assert plan(["synthetic"], seeds=1).reference == ""


def test_a_reference_that_is_not_a_model_of_the_preset_is_one_config_error(tmp_path) -> None:
    preset = tmp_path / "c.yaml"
    preset.write_text("models: {a: synthetic/early, b: synthetic/late}\nreference: text\n")
    with pytest.raises(ConfigError, match="'reference' must be one of this preset's models \\(a, b\\); found 'text'"):
        plan([str(preset)], seeds=1)


class _Run:
    def __init__(self, label: str, modalities: list[str], valid: float) -> None:
        self.label, self.modalities, self.seed = label, modalities, 0
        self.metrics = {"valid": {"accuracy": valid}}


def test_named_beats_declared_beats_chosen_on_validation(monkeypatch) -> None:
    runs = [_Run("audio", ["audio"], 0.9), _Run("text", ["text"], 0.5), _Run("early", ["audio", "text"], 0.7)]
    monkeypatch.setattr(evidence, "run_values", lambda run, split: run.metrics[split])
    labels = ["audio", "text", "early"]
    assert evidence.pick_reference(runs, labels, "accuracy")[0] == "audio"  # best unimodal on validation
    assert evidence.pick_reference(runs, labels, "accuracy", declared="text") == (
        "text", "declared by the comparison preset (`reference:`)")
    assert evidence.pick_reference(runs, labels, "accuracy", declared="video")[0] == "audio"  # not in this report
    assert evidence.pick_reference(runs, labels, "accuracy", named="early", declared="text")[0] == "early"
