"""Report evidence from hand-made run folders (no training): verdicts, baselines, warnings, the
sentiment 3-class view, and runs that do not belong together."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from modalfuse.errors import UserError
from modalfuse.metrics import compute_metrics
from modalfuse.report import render_report
from modalfuse.stats.predictions import save_predictions

N = 400


def _fake_run(folder: Path, pred: np.ndarray, truth: np.ndarray, train: np.ndarray, *, modalities: list[str],
              seed: int, valid_boost: float = 0.0) -> Path:
    """A finished regression run folder holding exactly what a trained one holds for a report."""
    folder.mkdir(parents=True)
    ids = [f"seg{i}" for i in range(len(truth))]
    test = {k: float(v) for k, v in compute_metrics("regression", pred, truth, num_classes=1).items()}
    valid = {k: v + valid_boost if k != "mae" else v for k, v in test.items()}
    (folder / "config.yaml").write_text(yaml.safe_dump({
        "data": {"name": "mosi", "label_scheme": "regression"}, "model": {"name": "fusion", "modalities": modalities},
        "train": {"seed": seed, "epochs": 1, "select": "last", "monitor": "acc2_non0"}, "eval": {"top_k": 20}}))
    (folder / "data.json").write_text(json.dumps({
        "modalities": {m: {"dim": 4, "seq_len": None} for m in ("audio", "text", "video")},
        "task": {"kind": "regression", "num_classes": 1, "class_names": None}, "parameters": 10, "info": {}}))
    (folder / "metrics.json").write_text(json.dumps({"valid": valid, "test": test}))
    (folder / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "train_loss": 1.0, "valid_acc2_non0": valid["acc2_non0"]}) + "\n")
    (folder / "run.json").write_text(json.dumps({"monitor": "acc2_non0", "train_seconds": 1.0, "best_epoch": 1, "epochs_run": 1}))
    save_predictions(folder / "predictions.npz", "regression", {"test": {"scores": pred, "labels": truth, "ids": ids}},
                     train_labels=train)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("fake")
    truth = np.round(np.clip(rng.normal(0.3, 1.5, N), -3, 3) * 5) / 5
    train = np.round(np.clip(rng.normal(0.3, 1.5, 1000), -3, 3) * 5) / 5
    folders = []
    for seed in range(3):
        folders.append(_fake_run(root / f"text-seed{seed}", truth + rng.normal(0, 1.0, N), truth, train,
                                 modalities=["text"], seed=seed))
        folders.append(_fake_run(root / f"audio-seed{seed}", truth * 0.2 + rng.normal(0, 1.5, N), truth, train,
                                 modalities=["audio"], seed=seed))
        folders.append(_fake_run(root / f"fusion-seed{seed}", truth + rng.normal(0, 0.4, N), truth, train,
                                 modalities=["audio", "text", "video"], seed=seed, valid_boost=0.2))
        folders.append(_fake_run(root / f"flat-seed{seed}", np.full(N, 1.0) + rng.normal(0, 0.01, N), truth, train,
                                 modalities=["audio", "text"], seed=seed))
    return root, folders


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_verdicts_baselines_and_warnings(runs: tuple[Path, list[Path]], tmp_path: Path) -> None:
    root, folders = runs
    report = Path(render_report([str(f) for f in folders], out=str(tmp_path / "rep"), resamples=500))
    text = report.read_text()
    summary = {r["model"]: r for r in _rows(tmp_path / "rep" / "summary.csv")}
    assert summary["text"]["verdict"] == "reference"  # best unimodal model on the monitored metric
    assert summary["fusion"]["verdict"] == "better" and summary["flat"]["verdict"] == "worse"
    comp = _rows(tmp_path / "rep" / "comparisons.csv")
    mae = next(r for r in comp if r["model"] == "fusion" and r["reference"] == "text" and r["metric"] == "mae")
    assert float(mae["delta"]) < 0 and mae["verdict"] == "better"  # lower MAE is better
    assert {r["metric"] for r in comp} >= {"acc2_has0", "acc2_non0", "acc7", "mae", "corr", "acc3_band"}
    # baselines: per metric the best constant on the test split (its median for MAE)
    base = {r["model"]: r for r in _rows(tmp_path / "rep" / "baselines.csv")}
    truth = np.load(folders[0] / "predictions.npz")["test/labels"].astype(np.float64)
    train = np.load(folders[0] / "predictions.npz")["train/labels"]
    want = compute_metrics("regression", np.full(N, np.median(truth)), truth, num_classes=1)
    assert float(base["best constant"]["mae"]) == pytest.approx(want["mae"], abs=1e-6)
    assert "*best constant*" in text and "*chance*" in text
    # warnings: `flat` never predicts negative or neutral; fusion's validation sits 0.2 above test
    assert "`flat` never predicts class 'negative'" in text and "`flat` never predicts class 'neutral'" in text
    assert "(3 of 3 seeds)" in text
    assert "`text` never predicts" not in text
    assert "Validation `acc2_non0` sits far above test for 1 of 4 models: fusion" in text
    assert "they keep the last epoch (train.select: last)" in text
    assert "## Class counts" in text and "neutral" in text


def test_runs_with_different_test_examples_are_refused(runs: tuple[Path, list[Path]], tmp_path: Path) -> None:
    root, folders = runs
    other = _fake_run(tmp_path / "short-seed0", np.zeros(10), np.ones(10), np.ones(10), modalities=["text"], seed=0)
    with pytest.raises(UserError, match="test examples differ"):
        render_report([str(folders[0]), str(other)], out=str(tmp_path / "rep"))
    assert not (tmp_path / "rep").exists()


def test_out_folder_that_is_not_a_report_is_never_replaced(runs: tuple[Path, list[Path]], tmp_path: Path) -> None:
    root, folders = runs
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("x")
    with pytest.raises(UserError, match="not a report folder"):
        render_report([str(folders[0])], out=str(precious))
    assert (precious / "thesis.tex").read_text() == "x"


def test_multilabel_baselines_and_paired_from_compact_predictions(tmp_path: Path) -> None:
    """YouTube-8M-like runs (top-K predictions kept): the label-prior baseline and the intervals."""
    from modalfuse.report import evidence
    from modalfuse.report.runs import read_run

    rng = np.random.default_rng(1)
    n, c = 120, 40
    truth = (rng.random((n, c)) < np.linspace(0.3, 0.01, c)).astype(np.float32)
    train = (rng.random((300, c)) < np.linspace(0.3, 0.01, c)).astype(np.float32)
    runs = []
    for label, noise in (("good", 0.3), ("poor", 1.5)):
        folder = tmp_path / f"{label}-seed0"
        folder.mkdir()
        scores = 1 / (1 + np.exp(-(truth * 2 - 1 + rng.normal(0, noise, truth.shape))))
        m = compute_metrics("multilabel", scores, truth, num_classes=c)
        (folder / "config.yaml").write_text(yaml.safe_dump({"data": {"name": "yt8m"}, "model": {"modalities": ["rgb"] if label == "poor" else ["audio", "rgb"]},
                                                            "train": {"seed": 0}, "eval": {"top_k": 20}}))
        (folder / "data.json").write_text(json.dumps({"modalities": {}, "task": {"kind": "multilabel", "num_classes": c}}))
        (folder / "metrics.json").write_text(json.dumps({"test": {k: v for k, v in m.items() if isinstance(v, float)}}))
        (folder / "run.json").write_text(json.dumps({"monitor": "gap", "train_seconds": 1.0}))
        save_predictions(folder / "predictions.npz", "multilabel",
                         {"test": {"scores": scores, "labels": truth, "ids": [f"v{i}" for i in range(n)]}}, train_labels=train)
        runs.append(read_run(folder, label, 0))
    base = {b["model"]: b for b in evidence.baselines(runs, "test", ["gap", "hit_at_1", "perr"])}
    prior = np.tile(train.mean(0), (n, 1))
    assert base["label prior"]["gap"] == pytest.approx(compute_metrics("multilabel", prior, truth, num_classes=c)["gap"], abs=1e-6)
    p = evidence.paired(runs, ["good", "poor"], "test", "gap", resamples=300)
    assert p.reference == "poor"  # the only unimodal model
    row = next(r for r in p.rows if r.metric == "gap")
    assert row.model == "good" and row.verdict == "better" and row.ci_low > 0
    assert row.delta == pytest.approx(runs[0].metrics["test"]["gap"] - runs[1].metrics["test"]["gap"], abs=1e-6)


def test_a_model_with_one_seed_among_several_is_named_and_the_rest_stay_means(runs: tuple[Path, list[Path]],
                                                                             tmp_path: Path) -> None:
    """A report mixing seed counts (e.g. a costly model run once) must not claim one seed per model."""
    _, folders = runs
    mixed = [f for f in folders if f.name != "flat-seed1" and not (f.name.startswith("flat") and f.name != "flat-seed0")]
    assert any(f.name == "flat-seed0" for f in mixed) and len([f for f in mixed if f.name.startswith("text")]) > 1
    text = Path(render_report([str(f) for f in mixed], out=str(tmp_path / "rep"), resamples=200)).read_text()
    assert "means over seeds" in text and "one seed per model" not in text
    assert "Models with one seed (flat)" in text


def test_runs_with_different_validation_ids_are_one_line_naming_split_and_id(tmp_path: Path) -> None:
    """Pairing is checked by example id in every split before any resampling (also without a test split)."""
    from modalfuse.report import evidence
    from modalfuse.report.runs import read_run

    rng = np.random.default_rng(3)
    truth = rng.normal(0, 1.5, 30)
    runs = []
    for k, ids in enumerate((np.arange(30), np.r_[np.arange(12), 99, np.arange(13, 30)])):
        folder = _fake_run(tmp_path / f"m{k}-seed0", truth + rng.normal(0, 1, 30), truth, truth, modalities=["text"], seed=0)
        save_predictions(folder / "predictions.npz", "regression",
                         {"valid": {"scores": truth, "labels": truth, "ids": [f"seg{i}" for i in ids]}})
        runs.append(read_run(folder, f"m{k}", 0))
    with pytest.raises(UserError, match=r"m1-seed0: valid split, example 12 is id 'seg99' where .*m0-seed0 has id 'seg12'"):
        evidence.paired(runs, ["m0", "m1"], "valid", "acc2_non0")
    save_predictions(runs[1].folder / "predictions.npz", "regression",
                     {"valid": {"scores": truth[:20], "labels": truth[:20], "ids": [f"seg{i}" for i in range(20)]}})
    runs[1] = read_run(runs[1].folder, "m1", 0)
    with pytest.raises(UserError, match=r"valid split, example 20 is no example \(it has fewer\).*\(20 and 30 valid"):
        evidence.paired(runs, ["m0", "m1"], "valid", "acc2_non0")


def test_reference_is_chosen_on_validation_not_test(tmp_path: Path) -> None:
    from modalfuse.report import evidence
    from modalfuse.report.runs import read_run

    rng = np.random.default_rng(4)
    truth = rng.normal(0, 1.5, 200)
    # text is better on test, audio on validation: the reference must be audio
    a = _fake_run(tmp_path / "text-seed0", truth + rng.normal(0, 0.5, 200), truth, truth, modalities=["text"], seed=0)
    b = _fake_run(tmp_path / "audio-seed0", truth + rng.normal(0, 1.5, 200), truth, truth, modalities=["audio"], seed=0,
                  valid_boost=0.5)
    runs = [read_run(a, "text", 0), read_run(b, "audio", 0)]
    assert runs[0].metrics["test"]["acc2_non0"] > runs[1].metrics["test"]["acc2_non0"]
    ref, how = evidence.reference_choice(runs, ["text", "audio"], "acc2_non0")
    assert ref == "audio" and "validation" in how
    p = evidence.paired(runs, ["text", "audio"], "test", "acc2_non0", primary="corr", resamples=100)
    assert p.reference == "audio" and p.primary == "corr"
    assert {r.role for r in p.rows if r.metric == "corr"} == {"primary"}
    assert {r.role for r in p.rows if r.metric != "corr"} == {"secondary"}
