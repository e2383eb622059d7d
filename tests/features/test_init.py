"""``modalfuse init``: the preset it writes, and init -> compare -> report for each format."""

from __future__ import annotations

import json

import pytest
import yaml

pytest.importorskip("pyarrow")

from modalfuse.cli import main  # noqa: E402

from .tables import arrays, write  # noqa: E402


def test_init_writes_a_preset_by_modality_kind_and_task(tmp_path, capsys):
    path = write("parquet", tmp_path)
    assert main(["init", str(path), "--out", str(tmp_path / "cmp.yaml")]) == 0
    out = capsys.readouterr().out
    assert f"next: modalfuse compare {tmp_path / 'cmp.yaml'}" in out
    preset = yaml.safe_load((tmp_path / "cmp.yaml").read_text())
    assert set(preset["models"]) == {"image", "words", "early", "late", "attention", "gmu", "lmf"}
    train = yaml.safe_load((tmp_path / "cmp-train.yaml").read_text())
    assert train["data"]["task"] == "multiclass" and train["train"]["monitor"] == "accuracy"
    assert train["model"]["encoder"]["name"] == "mlp"  # image: a vector
    assert train["model"]["encoders"]["words"]["name"] == "transformer"  # words: a sequence
    # the file says where it came from, and is commented for a person to edit
    assert (tmp_path / "cmp.yaml").read_text().startswith(f"# modalfuse compare {tmp_path / 'cmp.yaml'}")
    # an existing preset is kept
    assert main(["init", str(path), "--out", str(tmp_path / "cmp.yaml")]) == 2
    assert "exists" in capsys.readouterr().err


def test_init_picks_the_metric_of_the_task(tmp_path):
    a = arrays()
    a["label"] = a["image"][:, 0].astype("float64")
    assert main(["init", str(write("npz", tmp_path, a)), "--out", str(tmp_path / "c.yaml")]) == 0
    train = yaml.safe_load((tmp_path / "c-train.yaml").read_text())
    assert train["data"]["task"] == "regression" and train["train"]["monitor"] == "mae"


def test_init_refuses_one_modality(tmp_path, capsys):
    a = arrays()
    del a["words"], a["words_lengths"]
    assert main(["init", str(write("numpy", tmp_path, a)), "--out", str(tmp_path / "c.yaml")]) == 2
    assert "a fusion comparison needs two or more" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["parquet", "numpy", "hdf5"])
def test_init_then_compare_gives_a_report(fmt, tmp_path, capsys):
    path = write(fmt, tmp_path / "data")
    preset = tmp_path / "comparison.yaml"
    assert main(["init", str(path), "--out", str(preset)]) == 0
    out = tmp_path / "cmp"
    assert main(["compare", str(preset), "--seeds", "1", "--jobs", "1", "--out", str(out),
                 "--set", "train.epochs=1", "--set", "train.batch_size=32"]) == 0
    report = (out / "report" / "report.md").read_text()
    for label in ("image", "words", "early", "late", "attention", "gmu", "lmf"):
        assert (out / "runs" / f"{label}-seed0" / "metrics.json").is_file()
        assert f"| {label}" in report or f"{label} " in report
    metrics = json.loads((out / "runs" / "early-seed0" / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0
