"""`modalfuse ensemble`: members' probabilities averaged into a run folder that evaluate, report,
predict and export read like any run."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from modalfuse.ensemble import build_ensemble_run
from modalfuse.errors import UserError
from modalfuse.training import evaluate_run, load_run, train

BASE = {
    "data": {"name": "synthetic", "n_train": 400, "n_valid": 150, "n_test": 150},
    "model": {"name": "fusion", "encoder": {"name": "mlp", "hidden_dims": [16]}, "head": {"name": "mlp", "hidden_dims": [16]}},
    "train": {"epochs": 2, "batch_size": 64, "learning_rate": 0.01, "progress": "none"},
}


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    runs = {}
    for task in ("multiclass", "multilabel"):
        runs[task] = [train(BASE, overrides=[f"train.seed={s}", f"data.task={task}"] + (["model.modalities=[text,audio]"] if s else []),
                            run_dir=root / f"{task}{s}", quiet=True) for s in (0, 1)]
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_ensemble_averages_member_probabilities_and_evaluates_like_a_run(members, tmp_path, task) -> None:
    out = build_ensemble_run([str(p) for p in members[task]], out=str(tmp_path / "ens"), quiet=True)
    cfg, model, data = load_run(out)
    batch = {m: torch.from_numpy(np.asarray(data.test.features[m][:32])) for m in data.modalities}
    squash = (lambda z: torch.sigmoid(z)) if task == "multilabel" else (lambda z: torch.softmax(z, -1))
    with torch.no_grad():
        want = torch.stack([squash(load_run(p)[1](batch, {})["logits"]) for p in members[task]]).mean(0)
        got = squash(model(batch, {})["logits"])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    saved = json.loads((out / "metrics.json").read_text())["test"]
    again = evaluate_run(out, split="test")
    for k, v in again.items():
        if isinstance(v, float):
            assert v == pytest.approx(saved[k], abs=1e-9), k
    assert json.loads((out / "run.json").read_text())["members"] == [str(p.resolve()) for p in members[task]]
    assert (out / "predictions.npz").is_file()


@pytest.mark.slow
def test_report_compares_the_ensemble_with_its_members(members, tmp_path) -> None:
    from modalfuse.report import render_report

    ens = build_ensemble_run([str(p) for p in members["multiclass"]], out=str(tmp_path / "ensemble-x"), quiet=True)
    md = render_report([*map(str, members["multiclass"]), str(ens)], out=str(tmp_path / "report"))
    text = open(md).read()
    assert "ensemble" in text
    rows = (tmp_path / "report" / "comparisons.csv").read_text()
    assert "ensemble" in rows


@pytest.mark.slow
def test_members_of_other_data_are_refused(members, tmp_path) -> None:
    with pytest.raises(UserError, match="other data"):
        build_ensemble_run([str(members["multiclass"][0]), str(members["multilabel"][0])], out=str(tmp_path / "e"), quiet=True)
    with pytest.raises(UserError, match="at least 2"):
        build_ensemble_run([str(members["multiclass"][0])], out=str(tmp_path / "e1"), quiet=True)


@pytest.mark.slow
def test_cli_ensemble_then_export_and_a_bad_call(members, tmp_path) -> None:
    run = [sys.executable, "-m", "modalfuse"]
    out = tmp_path / "ens"
    subprocess.run([*run, "ensemble", *map(str, members["multiclass"]), "--out", str(out)], check=True, capture_output=True)
    export = subprocess.run([*run, "export", str(out), "--out", str(tmp_path / "m.pt2")], capture_output=True, text=True)
    assert export.returncode == 0, export.stderr[-2000:]
    bad = subprocess.run([*run, "ensemble", str(members["multiclass"][0])], capture_output=True, text=True)
    assert bad.returncode == 2 and "at least 2" in bad.stderr and "Traceback" not in bad.stderr
