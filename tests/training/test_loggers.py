"""train.loggers: a short run's scalars, hyperparameters and final metrics read back with each
library's own reader (TensorBoard's EventAccumulator, MLflow's client)."""

from __future__ import annotations

import json
import math
import sys

import pytest

from modalfuse.errors import UserError
from modalfuse.training.loggers import Trackers, banner, epoch_scalars, flatten
from modalfuse.training.run import train

TINY = {
    "data": {"name": "synthetic", "task": "multiclass", "n_train": 128, "n_valid": 64, "n_test": 64},
    "model": {"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [8]}, "fusion": {"name": "concat"},
              "head": {"name": "mlp", "hidden_dims": [8]}},
    "train": {"epochs": 3, "batch_size": 32, "progress": "none", "threads": 1},
}


def _tensorboard_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    out = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    return out


def test_flatten_and_epoch_scalars():
    assert flatten({"train": {"epochs": 2, "dims": [1, 2]}, "a": None}) == {"train.epochs": 2, "train.dims": "[1, 2]",
                                                                          "a": None}
    row = {"epoch": 2, "train_loss": 0.5, "valid_accuracy": 0.75, "lr": 1e-3, "seconds": 2.0, "samples_per_s": 64.0}
    assert epoch_scalars(row) == {"train/loss": 0.5, "valid/accuracy": 0.75, "lr": 1e-3, "time/epoch_seconds": 2.0,
                                  "throughput/samples_per_s": 64.0}


def test_banner_names_device_precision_threads_world_size_and_folder():
    from modalfuse.config import build_config

    cfg = build_config(TINY)
    line = banner(cfg, "cpu", 1, "runs/x", 1234)
    assert "| device cpu | precision fp32 | threads " in line and "| world size 1 | run folder runs/x" in line
    assert line.endswith("model fusion, 1,234 parameters") and "\n" not in line


def test_unknown_logger_and_missing_extra_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="unknown logger 'wandb'"):
        Trackers(["wandb"], tmp_path, {})
    try:
        import mlflow  # noqa: F401
    except ImportError:
        pass
    else:  # an unusable tracking URI is one line too
        monkeypatch.setenv("MLFLOW_TRACKING_URI", "bogus-scheme://nowhere")
        with pytest.raises(UserError, match="train.loggers 'mlflow': could not start a run at bogus-scheme://nowhere"):
            Trackers(["mlflow"], tmp_path, {})
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if the extra were not installed
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(UserError, match=r"train.loggers 'mlflow' needs the mlflow .* pip install 'modalfuse\[mlflow\]', "
                                        r"or in a modalfuse checkout: pip install -e '\.\[mlflow\]'"):
        Trackers(["mlflow"], tmp_path, {})


def test_tensorboard_reads_back_every_epoch_and_the_final_metrics(tmp_path):
    pytest.importorskip("tensorboard")
    run = train({**TINY, "train": {**TINY["train"], "loggers": ["tensorboard"]}}, out=tmp_path, quiet=True)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    final = json.loads((run / "metrics.json").read_text())
    scalars = _tensorboard_scalars(run / "tensorboard")
    for tag, key in [("train/loss", "train_loss"), ("valid/accuracy", "valid_accuracy"), ("valid/f1_macro", "valid_f1_macro"),
                     ("lr", "lr"), ("throughput/samples_per_s", "samples_per_s")]:
        assert [s for s, _ in scalars[tag]] == [1, 2, 3], tag
        assert all(math.isclose(v, r[key], rel_tol=1e-6) for (_, v), r in zip(scalars[tag], rows)), tag
    assert len(scalars["final/test/accuracy"]) == 1
    assert math.isclose(scalars["final/test/accuracy"][0][1], final["test"]["accuracy"], rel_tol=1e-6)
    assert math.isclose(scalars["final/valid/f1_macro"][0][1], final["valid"]["f1_macro"], rel_tol=1e-6)


def test_mlflow_reads_back_params_metrics_and_status(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "modalfuse-test")
    run = train({**TINY, "train": {**TINY["train"], "loggers": ["mlflow"]}}, out=tmp_path, quiet=True)
    state = json.loads((run / "loggers.json").read_text())["mlflow"]
    assert state["tracking_uri"] == (tmp_path / "mlruns").resolve().as_uri()  # the local file store beside the runs
    client = MlflowClient(tracking_uri=state["tracking_uri"])
    info = client.get_run(state["run_id"])
    assert info.info.status == "FINISHED" and info.info.run_name == run.name
    assert info.data.params["train.epochs"] == "3" and info.data.params["model.fusion.name"] == "concat"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    history = client.get_metric_history(state["run_id"], "valid_accuracy")
    assert [m.step for m in history] == [1, 2, 3]
    assert all(math.isclose(m.value, r["valid_accuracy"], rel_tol=1e-6) for m, r in zip(history, rows))
    final = json.loads((run / "metrics.json").read_text())
    assert math.isclose(info.data.metrics["final_test_accuracy"], final["test"]["accuracy"], rel_tol=1e-6)
    assert {"train_loss", "lr", "throughput_samples_per_s"} <= set(info.data.metrics)


def test_mlflow_tracking_uri_from_the_environment(tmp_path, monkeypatch):
    """MLFLOW_TRACKING_URI wins over the local default; the run id is kept for --resume."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "elsewhere").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    track = Trackers(["mlflow"], run_dir, {"train": {"epochs": 2}})
    track.epoch({"epoch": 1, "train_loss": 0.7, "valid_accuracy": 0.5})
    resumed = Trackers(["mlflow"], run_dir, {"train": {"epochs": 2}}, first_epoch=2)
    resumed.epoch({"epoch": 2, "train_loss": 0.6, "valid_accuracy": 0.6})
    resumed.finish({"test": {"accuracy": 0.55, "confusion": [[1, 0], [0, 1]]}}, 2)
    state = json.loads((run_dir / "loggers.json").read_text())["mlflow"]
    assert state["tracking_uri"] == uri and not (tmp_path / "runs" / "mlruns").exists()
    client = MlflowClient(tracking_uri=uri)
    assert [m.value for m in client.get_metric_history(state["run_id"], "valid_accuracy")] == [0.5, 0.6]
    run = client.get_run(state["run_id"])
    assert run.info.status == "FINISHED" and run.data.metrics["final_test_accuracy"] == 0.55
    assert "final_test_confusion" not in run.data.metrics


def test_tensorboard_resume_drops_what_the_interrupted_attempt_logged_past_its_checkpoint(tmp_path):
    """A run killed after logging epoch 3 but before its epoch-3 checkpoint trains epoch 3 again on
    resume; the event files then hold epoch 3 once, from the resumed attempt."""
    pytest.importorskip("tensorboard")
    first = Trackers(["tensorboard"], tmp_path, {"train": {"epochs": 4}})
    for epoch in (1, 2, 3):
        first.epoch({"epoch": epoch, "train_loss": 1.0 / epoch})
    first.close()
    resumed = Trackers(["tensorboard"], tmp_path, {"train": {"epochs": 4}}, first_epoch=3)
    for epoch in (3, 4):
        resumed.epoch({"epoch": epoch, "train_loss": 10.0 + epoch})
    resumed.finish({"test": {"accuracy": 0.5}}, 4)
    loss = _tensorboard_scalars(tmp_path / "tensorboard")["train/loss"]
    assert [(s, round(v, 4)) for s, v in loss] == [(1, 1.0), (2, 0.5), (3, 13.0), (4, 14.0)]
