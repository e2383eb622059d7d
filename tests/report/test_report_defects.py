"""What a newcomer met in a report (issue 29), each checked on hand-made runs (no training): the
set-up line under mixed ``train.select``, the ablation's undefined and unused cells, the best
constant per metric, a terminal summary that fits 100 columns, and the plots' legends and sizes."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modalfuse.metrics import compute_metrics
from modalfuse.report import evidence, plots, render
from modalfuse.report.runs import Run


def _run(label: str, seed: int, *, modalities: list[str], select: str = "best", kind: str = "regression",
         ablation: dict[str, Any] | None = None, epochs: int = 10, last_epoch: int = 10,
         predictions: dict[str, dict[str, np.ndarray]] | None = None, attention: dict[str, Any] | None = None,
         folder: Path = Path("/nonexistent")) -> Run:
    task = {"kind": kind, "num_classes": 1 if kind == "regression" else 3, "class_names": None}
    analysis = None
    if ablation is not None or attention is not None:
        analysis = {"ablation": ablation, "attention": attention,
                    "efficiency": {"parameters": 1000 + seed, "flops_per_sample": 2000.0, "peak_memory_mb": 1.0,
                                   "inference_samples_per_s": 5000.0, "inference_batch_size": 256, "device": "cpu",
                                   "peak_memory_method": "test"}}
    history = [{"epoch": e, "train_loss": 1.0 / e, "valid_corr": 0.1 * e, "seconds": 1.0} for e in range(1, last_epoch + 1)]
    return Run(label, seed, folder / f"{label}-seed{seed}",
               {"data": {"name": "mosi"}, "model": {"modalities": modalities},
                "train": {"seed": seed, "epochs": epochs, "select": select}},
               {"task": task, "modalities": {m: {"dim": 4, "seq_len": None} for m in ("audio", "text", "video")},
                "info": {}},
               {"test": {"corr": 0.5 + 0.01 * seed, "mae": 1.0}, "valid": {"corr": 0.6, "mae": 0.9}},
               history, {"monitor": "corr", "train_seconds": 1.0}, analysis, predictions)


# ---------------------------------------------------------------------------------------------
# report.md text
# ---------------------------------------------------------------------------------------------

def test_setup_line_names_the_models_that_keep_the_last_epoch() -> None:
    runs = [_run("text", 0, modalities=["text"], select="best"), _run("video", 0, modalities=["video"], select="last")]
    line = " ".join(render._setup_lines(runs, {}, "test", "corr"))
    assert "best validation `corr` (text)" in line
    assert "video: from the last epoch's checkpoint (`train.select: last`" in line
    # the first run used to speak for all: a 'last' first run made every model 'last'
    runs.reverse()
    assert "best validation `corr` (text)" in " ".join(render._setup_lines(runs, {}, "test", "corr"))
    only_last = [_run("video", 0, modalities=["video"], select="last")]
    assert "best validation" not in " ".join(render._setup_lines(only_last, {}, "test", "corr"))


def _ablation(full: float, zeroed: dict[str, float]) -> dict[str, Any]:
    return {"full": {"corr": full}, "zeroed": {m: {"corr": v} for m, v in zeroed.items()}}


def test_ablation_shows_undefined_and_unused_modalities() -> None:
    nan = float("nan")
    runs = [_run("video", s, modalities=["video"], ablation=_ablation(0.3, {"audio": 0.3, "text": 0.3, "video": nan}))
            for s in range(2)]
    runs += [_run("fusion", s, modalities=["audio", "text", "video"],
                  ablation=_ablation(0.6, {"audio": 0.55, "text": 0.2, "video": nan if s else 0.58})) for s in range(2)]
    table = render._ablation_table(runs, ["video", "fusion"], "corr")
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")[1:]]
            for line in table.splitlines() if line.startswith("| ") and "model" not in line}
    assert rows["video"] == ["—", "—", "undefined"]  # audio, text: not read; video: corr of a constant
    assert rows["fusion"][:2] == ["+0.0500", "+0.4000"]
    assert rows["fusion"][2] == "+0.0200 (1 of 2 seeds undefined)"
    assert "nan" not in table and "undefined: the metric is not a number" in table


def test_ablation_plot_marks_the_bars_it_cannot_draw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figs = _capture(monkeypatch)
    nan = float("nan")
    runs = [_run("video", 0, modalities=["video"], ablation=_ablation(0.3, {"audio": 0.3, "text": 0.3, "video": nan})),
            _run("fusion", 0, modalities=["audio", "text", "video"],
                 ablation=_ablation(0.6, {"audio": 0.5, "text": 0.2, "video": 0.58}))]
    assert plots.plot_ablation(runs, ["video", "fusion"], "test", "corr", tmp_path) == "ablation.png"
    texts = [t.get_text() for t in figs[0].axes[0].texts]
    assert texts.count("not read") == 2 and texts.count("undefined") == 1


def test_best_constant_baseline_per_metric() -> None:
    """Acc-2 non0 of the best constant is the always-positive rate (about 0.6), never below chance,
    though the median training score (0) counts as negative there; MAE's is the split's median."""
    rng = np.random.default_rng(0)
    # training labels: 45 % negative, 15 % exactly 0, 40 % positive (the median is 0); the test split
    # is 60 % positive
    train = np.concatenate([-np.abs(rng.normal(0, 1.5, 450)) - 0.2, np.zeros(150), np.abs(rng.normal(0, 1.5, 400)) + 0.2])
    test = np.concatenate([-np.abs(rng.normal(0, 1.5, 160)) - 0.1, np.abs(rng.normal(0, 1.5, 240)) + 0.1])
    pred = {"train": {"labels": train.astype(np.float32), "scores": train.astype(np.float32)},
            "test": {"labels": test.astype(np.float32), "scores": test.astype(np.float32),
                     "ids": np.arange(len(test))}}
    runs = [_run("text", 0, modalities=["text"], predictions=pred)]
    names = ["mae", "acc2_non0", "acc2_has0", "acc7", "corr"]
    rows = {b["model"]: b for b in evidence.baselines(runs, "test", names)}
    best = rows["best constant"]
    assert best["acc2_non0"] == pytest.approx(240 / 400)
    assert best["acc2_non0"] > compute_metrics("regression", np.zeros(len(test)), test, num_classes=1)["acc2_non0"]
    want = compute_metrics("regression", np.full(len(test), np.median(test.astype(np.float32))), test, num_classes=1)
    assert best["mae"] == pytest.approx(want["mae"], abs=1e-6)
    for v in (-3, -1, 0, 1, 2, 3):  # no constant does better on any metric
        other = compute_metrics("regression", np.full(len(test), float(v)), test, num_classes=1)
        assert other["acc7"] <= best["acc7"] + 1e-12 and other["mae"] >= best["mae"] - 1e-6
    assert "corr" not in best  # a constant has no correlation
    assert "+1.00 for" in best["note"] and "split's median" in best["note"]


def test_terminal_summary_fits_100_columns(tmp_path: Path) -> None:
    names = ["acc2_has0", "acc2_non0", "f1_has0", "f1_non0", "acc5", "acc7", "mae", "corr", "acc3_band"]
    rows = []
    for i, model in enumerate(["text", "audio", "video", "early-fusion", "a-rather-long-attention-model-name-x"]):
        row: dict[str, Any] = {"model": model}
        for k in names:
            row[f"{k}_mean"], row[f"{k}_std"] = 0.5 + 0.01 * i, 0.0123
        row.update(parameters=123456 * (i + 1), train_seconds=12.3, inference_samples_per_s=45678.0,
                   flops_per_sample=2.5e6, peak_memory_mb=3.21, seeds=5, reference="text",
                   verdict="indistinguishable (the seeds cannot support a verdict: 1.3 degrees of freedom)"
                   if i else "reference")
        rows.append(row)
    path = tmp_path / "summary.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (tmp_path / "comparisons.csv").write_text("model,reference,metric,role\naudio,text,acc3_band,primary\n")
    text = render.summary_table(path)
    assert max(len(line) for line in text.splitlines()) <= 100
    lines = text.splitlines()
    assert "vs text" in lines[0] and "acc2_has0" in lines[0]
    assert "acc3_band" in lines[0]  # the primary metric, though it comes last in the file
    assert "indistinguishable" in lines[3] and "degrees of freedom" not in text  # reasons: in report.md
    assert "not shown, to fit 100 columns" in text and "peak MiB" in text  # what is left out, and where it is


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------

def _capture(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Keep each figure a plot function saves, drawn, for its texts and sizes."""
    figs: list[Any] = []
    original = plots._save

    def save(fig: Any, folder: Path, name: str) -> str:
        fig.canvas.draw()
        figs.append(fig)
        fig.savefig(folder / name, format="png", dpi=120, bbox_inches="tight")
        return name

    monkeypatch.setattr(plots, "_save", save)
    del original
    return figs


def _attention(groups: list[str]) -> dict[str, Any]:
    k = len(groups)
    w = np.full((k, 3), 1 / 3)
    return {"keys": ["audio", "text", "video"], "groups": groups, "counts": [10] * k, "weights": w.tolist(),
            "overall": [1 / 3] * 3}


def test_attention_plot_is_large_and_its_title_clears_the_colour_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.image

    figs = _capture(monkeypatch)
    runs = [_run("attention", 0, modalities=["audio", "text", "video"],
                 attention=_attention(["negative", "neutral", "positive"]))]
    assert plots.plot_attention(runs, ["attention"], tmp_path) == "attention.png"
    height, width = matplotlib.image.imread(tmp_path / "attention.png").shape[:2]
    assert width >= 1000 and height >= 450
    fig = figs[0]
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    bar = next(ax for ax in fig.axes if ax.get_label() == "<colorbar>")
    label = bar.yaxis.label.get_window_extent(renderer)
    assert not title.overlaps(label)
    assert title.x0 >= 0 and title.x1 <= fig.bbox.width  # the title fits the figure
    assert "3-class band" in fig._suptitle.get_text()


def test_analysis_groups_sentiment_by_the_three_class_band() -> None:
    from types import SimpleNamespace

    from modalfuse.analysis import _membership

    names, member = _membership(SimpleNamespace(kind="regression"), np.array([-2.0, -0.4, 0.0, 0.5, 0.6, 3.0]))
    assert [name.split()[0] for name in names] == ["negative", "neutral", "positive"]
    assert member.sum(0).tolist() == [1, 3, 2]


def _paired() -> evidence.Paired:
    from modalfuse.stats.verdicts import Comparison

    rows = [Comparison(model="fusion", reference="text", metric="corr", role="primary", delta=0.02, ci_low=0.001,
                       ci_high=0.04, p_value=0.04, p_adjusted=0.08, verdict="indistinguishable", mde=0.05,
                       seeds_needed=9, se=0.009, df=3.5, seeds="2/2", examples=100, kind="reference")]
    return evidence.Paired(reference="text", metrics=["corr"], rows=rows, examples=100, resamples=100, primary="corr")


def test_forest_legend_explains_a_grey_interval_that_excludes_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figs = _capture(monkeypatch)
    plots.plot_forest(_paired(), tmp_path)
    legend = figs[0].legends[0]
    texts = [t.get_text() for t in legend.get_texts()]
    grey = next(t for t in texts if t.startswith("indistinguishable"))
    assert "Holm" in grey and "too few seeds" in grey and "interval can still exclude 0" in grey


def test_efficiency_plot_has_no_leader_lines_and_distinct_markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figs = _capture(monkeypatch)
    labels = [f"model{i}" for i in range(5)]
    runs = [_run(lab, 0, modalities=["text"], ablation=_ablation(0.5, {"text": 0.1}), folder=tmp_path) for lab in labels]
    assert plots.plot_efficiency(runs, labels, "test", "corr", tmp_path) == "efficiency.png"
    fig = figs[0]
    for ax in fig.axes:  # nothing joins a label to a point: no line that reads as a trend
        assert not [t for t in ax.texts if getattr(t, "arrow_patch", None) is not None]
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == labels  # five coinciding points, each named
    shapes = {line.get_marker() for ax in fig.axes[:1] for line in ax.lines if line.get_marker() not in ("None", "none", "")}
    assert len(shapes) == 5


def test_training_curves_say_when_a_seed_stopped_early(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figs = _capture(monkeypatch)
    runs = [_run("text", 0, modalities=["text"], last_epoch=10), _run("text", 1, modalities=["text"], last_epoch=6)]
    plots.plot_training_curves(runs, ["text"], "corr", tmp_path)
    fig = figs[0]
    assert any(t.get_text().strip() == "seed 1 stopped" for t in fig.axes[0].texts)
    assert "stopped early" in fig._suptitle.get_text()


def test_report_out_an_existing_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from modalfuse.cli import main

    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    assert main(["report", str(tmp_path / "runs"), "--out", str(notes)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--out {notes}: exists and is a file" in err
    assert notes.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
