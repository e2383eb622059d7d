"""`modalfuse robustness` end to end on tiny synthetic runs, bad input, and `train.augment`."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from modalfuse.cli import main
from modalfuse.training.run import train

TINY = ["data.n_train=256", "data.n_valid=16", "data.n_test=48", "data.seq_len=6", "train.epochs=6",
        "train.learning_rate=0.02", "train.warmup_epochs=0",
        "train.threads=1", "train.progress=none", "train.patience=null", "model.encoder.hidden_dims=[8]",
        "model.head.hidden_dims=[8]"]


def _train(tmp: Path, name: str, extra: list[str]) -> Path:
    run = Path(train("synthetic", overrides=TINY + extra, out=tmp / "tmp"))
    dest = tmp / "runs" / f"{name}-seed0"
    dest.parent.mkdir(exist_ok=True)
    shutil.move(str(run), dest)  # the folder name gives the model's label
    return dest


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("robust")
    return _train(tmp, "fusion", []), _train(tmp, "textonly", ["model.modalities=[text]"])


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _robustness(runs: tuple[Path, Path], out: Path, *extra: str) -> int:
    return main(["robustness", *map(str, runs), "--out", str(out), "--corruption", "noise=10,-5",
                 "--corruption", "missing=0.5,1", "--corruption", "shift=2", "--resamples", "200",
                 "--reference", "textonly", "--threads", "1", *extra])


def test_curves_intervals_and_pairing(runs, tmp_path):
    assert _robustness(runs, tmp_path / "out") == 0
    out = tmp_path / "out"
    rows = _rows(out / "robustness.csv")
    assert list(rows[0]) == ["model", "modality", "corruption", "level", "metric", "value", "ci_low", "ci_high",
                             "seeds", "examples"]
    # 2 models x (text, audio, video, all) x levels of (noise, missing, shift), one metric
    assert len(rows) == 2 * 4 * (3 + 3 + 2)
    for model, run in zip(("fusion", "textonly"), runs):
        clean = json.loads((run / "metrics.json").read_text())["test"]["accuracy"]
        mine = [r for r in rows if r["model"] == model]
        for r in mine:
            assert float(r["ci_low"]) <= float(r["value"]) <= float(r["ci_high"])
            if r["level"] in ("inf", "0"):  # the clean point is the run's own test score
                assert float(r["value"]) == pytest.approx(clean, abs=1e-6)
    # a model that does not read audio is untouched by audio corruptions
    text_audio = [float(r["value"]) for r in rows if r["model"] == "textonly" and r["modality"] == "audio"]
    assert len(set(text_audio)) == 1
    # every modality missing: the fusion model predicts one class for everything, unlike its clean score
    gone = next(r for r in rows if r["model"] == "fusion" and r["modality"] == "all" and r["corruption"] == "missing"
                and r["level"] == "1")
    clean_fusion = next(r for r in rows if r["model"] == "fusion" and r["modality"] == "all" and r["corruption"] == "missing"
                        and r["level"] == "0")
    assert float(gone["value"]) != float(clean_fusion["value"])
    auc = _rows(out / "robustness_auc.csv")
    assert {r["auc_verdict"] for r in auc if r["model"] == "textonly"} == {"reference"}
    assert {r["degradation_verdict"] for r in auc if r["model"] == "fusion"} <= {"better", "worse", "indistinguishable"}
    for name in ("robustness.md", "robustness.json", "robustness-noise.png", "robustness-missing.png", "robustness-shift.png"):
        assert (out / name).is_file(), name
    meta = json.loads((out / "robustness.json").read_text())
    assert meta["train_seconds"] > 0 and meta["seconds"] > 0
    assert "| noise | text | fusion |" in (out / "robustness.md").read_text()


def test_the_same_command_gives_the_same_numbers(runs, tmp_path):
    assert _robustness(runs, tmp_path / "a", "--modality", "all") == 0
    assert _robustness(runs, tmp_path / "b", "--modality", "all") == 0
    assert (tmp_path / "a" / "robustness.csv").read_text() == (tmp_path / "b" / "robustness.csv").read_text()


@pytest.mark.parametrize("args, message", [
    (["--corruption", "blur"], "unknown corruption 'blur'"),
    (["--corruption", "missing=2"], "level 2 of 'missing' is out of range"),
    (["--corruption", "shift=6"], "level 6 is out of range for this data; expected at most 5 steps"),
    (["--modality", "smell"], "the run's data has no modality 'smell'; it has audio, text, video"),
    (["--reference", "nobody"], "--reference nobody: no such model"),
    (["--metric", "gap"], "--metric gap: not a metric with intervals for a multiclass task"),
])
def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, capsys, args, message):
    assert main(["robustness", *map(str, runs), "--out", str(tmp_path / "o"), "--resamples", "100", "--threads", "1", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_train_with_augmentation(tmp_path, capsys):
    assert main(["train", "synthetic", "--out", str(tmp_path), *sum((["--set", o] for o in TINY), []),
                 "--set", "train.augment=[{name: noise, level: 0, p: 0.5}, {name: drop, level: 0.3, modality: audio}]"]) == 0
    run = next(p for p in tmp_path.iterdir() if p.is_dir())
    assert (run / "run.json").is_file()
    assert "name: drop" in (run / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["train", "synthetic", "--out", str(tmp_path / "x"), "--set", "train.augment=[{name: missing}]"]) == 2
    assert "model.modality_dropout" in capsys.readouterr().err


@pytest.mark.slow
def test_compare_robustness_puts_the_section_in_the_report(tmp_path):
    preset = tmp_path / "tiny.yaml"
    preset.write_text("description: tiny\nseeds: 1\nmodels:\n  fusion: synthetic\n"
                      "  textonly: {config: synthetic, overrides: ['model.modalities=[text]']}\n"
                      f"overrides: {TINY!r}\n")
    out = tmp_path / "cmp"
    assert main(["compare", str(preset), "--out", str(out), "--jobs", "1", "--robustness", "--reference", "textonly"]) == 0
    rows = _rows(out / "robustness" / "robustness.csv")
    assert {r["corruption"] for r in rows} == {"noise", "missing", "shift", "drop"}  # the defaults for sequences
    report = (out / "report" / "report.md").read_text()
    assert "## Robustness" in report and "](../robustness/robustness-noise.png)" in report
