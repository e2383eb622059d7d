"""``modalfuse predict``: top-k classes with vocabulary names from a run folder, three formats."""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path

import pytest
import torch

from modalfuse.cli import main
from modalfuse.errors import UserError
from modalfuse.serving.predict import predict
from modalfuse.readers.yt8m import read_video_shard
from modalfuse.training.run import load_run, train

SHARD = str(resources.files("modalfuse") / "data_files" / "yt8m" / "validate0033.tfrecord")


@pytest.fixture(scope="module")
def yt8m_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained for one epoch on the bundled YouTube-8M sample."""
    run_dir = tmp_path_factory.mktemp("runs") / "yt8m"
    cfg = {"data": {"name": "yt8m"}, "model": {"name": "fusion", "encoder": {"name": "identity"}, "head": {"name": "mlp", "hidden_dims": [8]}},
           "train": {"epochs": 1, "batch_size": 256, "learning_rate": 1e-2, "progress": "none"},
           "eval": {"splits": ["valid"]}}
    train(cfg, run_dir=run_dir, quiet=True)
    return run_dir


def test_kaggle_format_has_one_line_per_video_with_k_pairs(yt8m_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub.csv"
    n = predict(yt8m_run, [SHARD], out, top_k=5, fmt="kaggle")
    ids = read_video_shard(SHARD).ids
    lines = out.read_text().splitlines()
    assert n == len(ids) == len(lines) - 1
    assert lines[0] == "VideoId,LabelConfidencePairs"
    vid, pairs = lines[1].split(",")
    assert vid == ids[0]
    tokens = pairs.split()
    assert len(tokens) == 10
    scores = [float(s) for s in tokens[1::2]]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    assert all(0 <= int(c) < 3862 for c in tokens[0::2])


def test_scores_and_names_are_the_runs_model_on_the_input(yt8m_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.jsonl"
    predict(yt8m_run, [SHARD], out, top_k=3, fmt="jsonl")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    cfg, model, data = load_run(yt8m_run)
    batch = read_video_shard(SHARD)
    with torch.no_grad():
        probs = torch.sigmoid(model({"audio": torch.from_numpy(batch.features["mean_audio"][:1]),
                                     "rgb": torch.from_numpy(batch.features["mean_rgb"][:1])})["logits"])[0]
    top = torch.topk(probs, 3)
    assert [p["class"] for p in rows[0]["predictions"]] == top.indices.tolist()
    assert [p["score"] for p in rows[0]["predictions"]] == pytest.approx(top.values.tolist(), abs=1e-6)
    names = data.task.class_names
    assert [p["name"] for p in rows[0]["predictions"]] == [names[i] for i in top.indices.tolist()]
    assert rows[0]["id"] == batch.ids[0]


def test_csv_format_via_the_command_line(yt8m_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "p.csv"
    assert main(["predict", str(yt8m_run), "--input", SHARD, "--out", str(out), "--top-k", "2"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["id", "rank", "class", "name", "score"]
    assert len(rows) == 2 * len(read_video_shard(SHARD).ids)
    assert [r["rank"] for r in rows[:2]] == ["1", "2"]
    assert "wrote" in capsys.readouterr().out


def test_a_run_whose_dataset_reads_no_files_is_a_clear_error(tmp_path: Path) -> None:
    run_dir = tmp_path / "syn"
    cfg = {"data": {"name": "synthetic", "n_train": 64, "n_valid": 16, "n_test": 16},
           "model": {"name": "fusion"}, "train": {"epochs": 1, "progress": "none"}}
    train(cfg, run_dir=run_dir, quiet=True)
    out = tmp_path / "p.csv"
    with pytest.raises(UserError, match="synthetic.*does not read input files"):
        predict(run_dir, [SHARD], out)
    assert not out.exists()


def test_bad_arguments_exit_2_with_one_line(yt8m_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "p.csv"
    assert main(["predict", str(tmp_path), "--input", SHARD, "--out", str(out)]) == 2
    assert "not a finished run folder" in capsys.readouterr().err
    assert main(["predict", str(yt8m_run), "--input", str(tmp_path / "nope.tfrecord"), "--out", str(out)]) == 2
    assert "file not found" in capsys.readouterr().err
    assert not out.exists()


def test_per_class_ap_averages_to_the_runs_map(yt8m_run: Path) -> None:
    """Training saves per-class AP of every reported split (here only valid); it averages to the mAP."""
    per_class = json.loads((yt8m_run / "per_class.json").read_text())
    metrics = json.loads((yt8m_run / "metrics.json").read_text())
    assert set(per_class) == set(metrics) == {"valid"}
    for split in per_class:
        aps = [a for a in per_class[split]["per_class_ap"] if a is not None]
        assert len(per_class[split]["per_class_ap"]) == 3862  # one entry per class, null without positives
        assert len(aps) > 10 and all(0 <= a <= 1 for a in aps)
        assert sum(aps) / len(aps) == pytest.approx(metrics[split]["map"], abs=1e-9)


def test_multiclass_sentiment_run_predicts_with_its_class_names(shared_data: Path, tmp_path: Path) -> None:
    from modalfuse.prepare.cmu_sdk import prepare_cmu_sdk

    fx = shared_data / "csd_fixture"
    packed = tmp_path / "fx.h5"
    prepare_cmu_sdk({m: str(fx / f"{m}.csd") for m in ("glove", "covarep", "facet")}, str(fx / "labels.csd"),
                    "labels", str(packed))
    run_dir = tmp_path / "run"
    train({"data": {"name": "packed", "path": str(packed)},
           "model": {"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [8]}},
           "train": {"epochs": 1, "progress": "none"}}, run_dir=run_dir, quiet=True)
    out = tmp_path / "p.jsonl"
    n = predict(run_dir, [str(packed)], out, top_k=5, fmt="jsonl")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    names = json.loads((run_dir / "data.json").read_text())["task"]["class_names"]
    assert n == len(rows) == len({r["id"] for r in rows}) > 0  # every segment once, across splits
    assert len(rows[0]["predictions"]) == min(5, len(names))
    assert sum(p["score"] for p in rows[0]["predictions"]) == pytest.approx(1.0, abs=1e-4)  # softmax
    assert {p["name"] for p in rows[0]["predictions"]} <= set(names)
    # Another file is z-scored with the run's training statistics (kept in data.json), not its own:
    # a copy of the training file under another name gives exactly the same predictions.
    other = tmp_path / "other.h5"
    other.write_bytes(packed.read_bytes())
    predict(run_dir, [str(other)], tmp_path / "q.jsonl", top_k=5, fmt="jsonl")
    assert (tmp_path / "q.jsonl").read_text() == out.read_text()
