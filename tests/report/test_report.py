"""The report rendered from a tiny comparison: every file, every column, values that match the runs."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from modalfuse.cli import main
from modalfuse.metrics import direction
from modalfuse.errors import UserError
from modalfuse.report import render_report

LABELS = ["text", "late", "attention"]
METRICS = ["accuracy", "f1_weighted", "f1_macro"]
PLOTS = ["metrics.png", "forest.png", "training_curves.png", "confusion_matrices.png", "efficiency.png",
         "attention.png", "ablation.png"]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_report_files_and_columns(tiny_compare: Path) -> None:
    report = tiny_compare / "report"
    for name in ["results.csv", "summary.csv", "comparisons.csv", "baselines.csv", "report.md", *PLOTS]:
        assert (report / name).is_file(), name
    import matplotlib.image

    for name in PLOTS:
        image = matplotlib.image.imread(report / name)
        assert image.shape[0] > 200 and image.shape[1] > 300, name

    summary = _rows(report / "summary.csv")
    expected = ["model", *[f"{m}_{s}" for m in METRICS for s in ("mean", "std")], "parameters", "train_seconds",
                "inference_samples_per_s", "flops_per_sample", "peak_memory_mb", "seeds", "reference", "verdict"]
    assert list(summary[0]) == expected
    assert [r["model"] for r in summary] == LABELS

    results = _rows(report / "results.csv")
    assert len(results) == len(LABELS) * 2
    for column in ["model", "seed", "run_dir", *[f"{s}_{m}" for s in ("valid", "test") for m in METRICS],
                   "parameters", "train_seconds", "inference_samples_per_s", "flops_per_sample", "peak_memory_mb",
                   "best_epoch", "epochs_run"]:
        assert column in results[0], column
    for row in results:  # every number comes from the run folder
        run = tiny_compare / "runs" / row["run_dir"]
        metrics = json.loads((run / "metrics.json").read_text())
        assert float(row["test_accuracy"]) == pytest.approx(metrics["test"]["accuracy"])
        assert int(row["parameters"]) == json.loads((run / "data.json").read_text())["parameters"]
        assert float(row["flops_per_sample"]) > 0 and float(row["inference_samples_per_s"]) > 0
        assert float(row["peak_memory_mb"]) > 0
    for s in summary:  # mean and std over the model's seeds
        values = [float(r["test_accuracy"]) for r in results if r["model"] == s["model"]]
        assert float(s["accuracy_mean"]) == pytest.approx(np.mean(values))
        assert float(s["accuracy_std"]) == pytest.approx(np.std(values, ddof=1))
        assert s["seeds"] == "2"


def test_report_md_marks_the_best_per_column(tiny_compare: Path) -> None:
    text = (tiny_compare / "report" / "report.md").read_text()
    assert "modalfuse compare" in text and "tiny.yaml" in text  # the exact command
    assert "## Setup" in text and "## Modality ablation" in text
    for name in PLOTS:
        assert f"]({name})" in text
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    body = [[c.strip() for c in line.strip("|").split("|")] for line in lines[1:1 + len(LABELS)]]
    summary = _rows(tiny_compare / "report" / "summary.csv")
    for metric in METRICS:
        col = header.index(metric)
        means = [float(r[f"{metric}_mean"]) for r in summary]
        best = max(means) if direction(metric) == "max" else min(means)
        for row, mean in zip(body, means):
            assert row[col].startswith("**") == (mean == best), (metric, row[col])
    col = header.index("parameters")  # fewest parameters is best
    params = [int(r["parameters"]) for r in summary]
    assert [row[col].startswith("**") for row in body] == [p == min(params) for p in params]


def test_analysis_attention_and_ablation(tiny_compare: Path) -> None:
    runs = tiny_compare / "runs"
    att = json.loads((runs / "attention-seed0" / "analysis.json").read_text())["attention"]
    assert att["keys"] == ["audio", "text", "video"]
    assert len(att["groups"]) == 4 and sum(att["counts"]) == 48
    assert np.allclose(np.sum(att["weights"], axis=1), 1.0, atol=1e-4)  # softmax over modalities
    assert json.loads((runs / "late-seed0" / "analysis.json").read_text())["attention"] is None
    # A text-only model ignores the other modalities: zeroing them changes nothing, zeroing text does.
    ablation = json.loads((runs / "text-seed0" / "analysis.json").read_text())["ablation"]
    assert sorted(ablation["zeroed"]) == ["audio", "text", "video"]
    assert ablation["zeroed"]["audio"] == ablation["full"] == ablation["zeroed"]["video"]
    assert ablation["zeroed"]["text"] != ablation["full"]


def _tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


def test_report_from_run_folders_never_writes_into_them(tiny_compare: Path, tmp_path: Path, capsys) -> None:
    """`modalfuse report RUN_DIR...` re-renders from plain run folders; one without analysis.json is
    reported without efficiency (and says how to analyse it), and no run folder changes."""
    a, b = tmp_path / "late-seed0", tmp_path / "text-seed0"
    shutil.copytree(tiny_compare / "runs" / "late-seed0", a)
    shutil.copytree(tiny_compare / "runs" / "text-seed0", b)
    (a / "analysis.json").unlink()
    before = {a: _tree(a), b: _tree(b)}
    assert main(["report", str(a), str(b), "--out", str(tmp_path / "rep")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "rep" / "report.md")
    assert {a: _tree(a), b: _tree(b)} == before
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "Not analysed" in text and "modalfuse analyze" in text
    summary = _rows(tmp_path / "rep" / "summary.csv")
    assert [r["model"] for r in summary] == ["late", "text"]
    assert summary[0]["accuracy_std"] == ""  # one seed: no spread to report
    assert summary[0]["inference_samples_per_s"] == ""  # not analysed
    assert "mean ± std" not in text.split("## Summary")[1].split("\n")[0]  # "one seed", not "mean ± std over seeds"
    assert not (tmp_path / "rep" / "attention.png").exists()  # neither model returns attention

    # `modalfuse analyze` is the explicit step that writes it
    assert main(["analyze", str(a)]) == 0
    assert json.loads((a / "analysis.json").read_text())["efficiency"]["parameters"] > 0
    assert main(["analyze", str(tmp_path)]) == 2
    assert "not a finished run folder" in capsys.readouterr().err


def test_comparisons_csv_and_verdicts(tiny_compare: Path) -> None:
    report = tiny_compare / "report"
    rows = _rows(report / "comparisons.csv")
    assert list(rows[0]) == ["model", "reference", "metric", "role", "delta", "ci_low", "ci_high", "p_value",
                             "p_adjusted", "verdict", "mde", "seeds_needed", "se", "df", "seeds", "examples", "kind", "note"]
    summary = {r["model"]: r for r in _rows(report / "summary.csv")}
    # the default reference is the best (here: only) unimodal model
    assert {r["reference"] for r in rows if r["model"] != "late" or r["reference"] != "attention"} <= {"text", "attention", "late"}
    assert summary["text"]["verdict"] == "reference" and summary["late"]["reference"] == "text"
    for r in rows:
        assert float(r["ci_low"]) <= float(r["ci_high"])
        assert float(r["p_value"]) <= float(r["p_adjusted"]) <= 1
        assert r["verdict"] in ("better", "worse", "indistinguishable")
        assert r["seeds"] == "2/2" and r["examples"] == "48"
        if r["reference"] == "text":  # delta = difference of the seed means in summary.csv
            m = r["metric"]
            assert float(r["delta"]) == pytest.approx(float(summary[r["model"]][f"{m}_mean"]) - float(summary["text"][f"{m}_mean"]))
    for model in ("late", "attention"):
        acc = next(r for r in rows if r["model"] == model and r["reference"] == "text" and r["metric"] == "accuracy")
        assert summary[model]["verdict"].startswith(acc["verdict"])  # an indistinguishable carries its MDE
        assert acc["role"] == "primary" and float(acc["mde"]) > 0
    text = (report / "report.md").read_text()
    assert "## Paired comparisons" in text and "Holm" in text and "*majority class*" in text and "*chance*" in text
    assert "## Class counts" in text
    base = {r["model"]: r for r in _rows(report / "baselines.csv")}
    counts = np.bincount(np.load(tiny_compare / "runs" / "text-seed0" / "predictions.npz")["test/labels"], minlength=4)
    train = np.load(tiny_compare / "runs" / "text-seed0" / "predictions.npz")["train/labels"]
    assert float(base["majority class"]["accuracy"]) == pytest.approx(counts[np.bincount(train).argmax()] / counts.sum())


@pytest.mark.slow
def test_reference_option_and_unknown_reference(tiny_compare: Path, tmp_path: Path) -> None:
    render_report([str(tiny_compare)], out=str(tmp_path / "r"), reference="attention", resamples=200)
    rows = _rows(tmp_path / "r" / "comparisons.csv")
    assert {r["reference"] for r in rows if r["model"] in ("text", "late") and r["metric"] == "accuracy"} >= {"attention"}
    with pytest.raises(UserError, match="--reference nope: no such model"):
        render_report([str(tiny_compare)], out=str(tmp_path / "r2"), reference="nope")
    assert not (tmp_path / "r2").exists()


def test_report_over_runs_of_different_tasks_is_one_error_and_no_folder(tiny_compare: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-seed0"
    shutil.copytree(tiny_compare / "runs" / "text-seed0", other)
    data = json.loads((other / "data.json").read_text())
    data["task"] = {"kind": "regression", "num_classes": 1, "class_names": None}
    (other / "data.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="regression task, but .* multiclass with 4 classes task"):
        render_report([str(tiny_compare / "runs" / "text-seed0"), str(other)], out=str(tmp_path / "rep"))
    assert not (tmp_path / "rep").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["other-seed0"]  # no temporary folder left either


def test_report_errors(tmp_path: Path) -> None:
    from modalfuse.errors import UserError

    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a finished run folder"):
        render_report([str(tmp_path / "empty")])


def test_report_out_an_existing_file_exits_2_and_keeps_it(tiny_compare: Path, tmp_path: Path, capsys) -> None:
    """The defect as met: `report DIR --out FILE` exited 0 and replaced the file with a report folder."""
    notes = tmp_path / "notes.md"
    notes.write_text("mine")
    assert main(["report", str(tiny_compare), "--out", str(notes)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert notes.read_text() == "mine" and [p.name for p in tmp_path.iterdir()] == ["notes.md"]
