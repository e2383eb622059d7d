"""The Python API: modalfuse.train -> Run, evaluate, load_run, smoke, predict/export names."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import modalfuse
from modalfuse.errors import UserError

TINY = {
    "data": {"name": "synthetic", "task": "multiclass", "n_train": 128, "n_valid": 64, "n_test": 64},
    "model": {"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [8]}, "fusion": {"name": "concat"},
              "head": {"name": "mlp", "hidden_dims": [8]}},
    "train": {"epochs": 2, "batch_size": 32, "progress": "none", "threads": 1},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> modalfuse.Run:
    return modalfuse.train(TINY, out=tmp_path_factory.mktemp("runs"), quiet=True)


def test_train_returns_a_run_with_everything_a_notebook_needs(run):
    assert isinstance(run, modalfuse.Run) and run.finished
    assert set(run.metrics) == {"valid", "test"} and 0 <= run.metrics["test"]["accuracy"] <= 1
    assert run.config.train.epochs == 2 and run.config.model["name"] == "fusion"
    assert [row["epoch"] for row in run.history] == [1, 2]
    assert sorted(run.modalities) == ["audio", "text", "video"]
    assert run.task.kind == "multiclass" and run.task.num_classes == run.info["task"]["num_classes"]
    assert run.plugins == []
    features = {m: torch.randn(3, s.dim) for m, s in run.modalities.items()}
    with torch.no_grad():
        logits = run.model(features, {})["logits"]
    assert logits.shape == (3, run.task.num_classes) and not run.model.training
    assert len(run.data.test) == 64  # built lazily from the run's config


def test_evaluate_and_load_run_agree_with_the_run_folder(run):
    again = modalfuse.load_run(run.path)
    assert again.metrics == run.metrics and again.path == run.path
    valid = modalfuse.evaluate(again, split="valid")
    assert math.isclose(valid["accuracy"], run.metrics["valid"]["accuracy"], abs_tol=1e-9)
    assert math.isclose(run.evaluate("test")["accuracy"], run.metrics["test"]["accuracy"], abs_tol=1e-9)
    assert modalfuse.evaluate(str(run.path), split="valid")["accuracy"] == valid["accuracy"]


def test_load_run_of_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(UserError, match="not a run folder"):
        modalfuse.load_run(tmp_path)


def test_smoke_checks_a_config_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = modalfuse.smoke(TINY, overrides=["train.batch_size=16"])
    assert lines[0].startswith("config ok: model fusion")
    assert lines[1].startswith("train  batch of 16:") and "one optimizer step ok" in lines[1]
    assert lines[-1].startswith("smoke check passed")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match="train.lerning_rate"):
        modalfuse.smoke(TINY, overrides=["train.lerning_rate=1"])


def test_api_functions_survive_importing_their_submodules():
    """``modalfuse.predict`` / ``modalfuse.export`` stay functions when the serving modules that
    implement them are imported (they live in ``modalfuse.serving``, so nothing rebinds the names)."""
    import modalfuse.serving.export
    import modalfuse.serving.predict  # noqa: F401
    from modalfuse.serving.predict import predict as module_predict

    assert callable(modalfuse.predict) and modalfuse.predict.__module__ == "modalfuse.api"
    assert callable(modalfuse.export) and modalfuse.export.__module__ == "modalfuse.api"
    assert module_predict.__module__ == "modalfuse.serving.predict"


def test_export_and_predict_through_the_api(run, tmp_path):
    path = modalfuse.export(run, tmp_path / "model.pt2")
    assert path == tmp_path / "model.pt2" and path.is_file()
    # synthetic data has no input files to predict on (predict on real files: test_export)
    with pytest.raises(UserError) as e:
        modalfuse.predict(path, [str(path)], tmp_path / "out.csv")
    assert "\n" not in str(e.value) and not (tmp_path / "out.csv").exists()


def test_public_api_is_exported_and_documented():
    for name in [*modalfuse.api.__all__, "import_plugin"]:
        obj = getattr(modalfuse, name)
        assert name in modalfuse.__all__ and obj.__doc__ and len(obj.__doc__.strip()) > 20, name


@pytest.mark.slow
def test_docs_api_page_runs_as_written(tmp_path, monkeypatch):
    """docs/api.md is a notebook: its ```python cells run in order, in a fresh folder."""
    import re

    page = Path(__file__).resolve().parents[1] / "docs" / "api.md"
    cells = re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.S | re.M)
    assert len(cells) >= 4
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    for i, cell in enumerate(cells):
        exec(compile(cell, f"docs/api.md cell {i + 1}", "exec"), scope)
    assert (tmp_path / "runs" / "api-example.png").stat().st_size > 1000
    assert (tmp_path / "runs" / "compare-synthetic" / "report" / "report.md").is_file()
    assert scope["comparison"].summary and scope["same"].metrics == scope["run"].metrics


def test_compare_takes_jobs_and_reference_and_names_the_cli_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`modalfuse.compare` passes what `modalfuse compare --jobs/--reference` pass (issue 29), and its
    docstring names the default preset the command line uses."""
    import modalfuse
    from modalfuse import comparison
    from modalfuse.comparison import DEFAULT_PRESET

    seen = {}

    def fake(configs, **kwargs):
        seen.update(kwargs, configs=configs)
        return str(tmp_path)

    monkeypatch.setattr(comparison, "compare", fake)
    modalfuse.compare("synthetic", jobs=3, reference="text")
    assert seen["jobs"] == 3 and seen["reference"] == "text" and seen["configs"] == ["synthetic"]
    assert f'default ``"{DEFAULT_PRESET}"``' in modalfuse.compare.__doc__
