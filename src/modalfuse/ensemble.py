"""``modalfuse ensemble RUN... | COMPARE_DIR [--label L] [--out DIR]``: average finished runs into one run.

The ensemble is a run folder like any other: its ``config.yaml`` has ``model: {name: ensemble,
members: [each member's model section]}`` (``models/ensemble.py``), its ``checkpoints/best.pt``
holds every member's best weights, and it is evaluated here as the training loop evaluates a run
(``final_predictions``: every split of ``eval.splits``, ``metrics.json``, ``predictions.npz``,
``run.json`` last). So ``evaluate``, ``report``, ``predict`` and ``export`` read it as they read a
run, and a report compares it with its members with the same paired verdicts.

Members must share the data section (the same examples in the same splits) and the task; the
ensemble takes the first member's ``data``, ``train`` and ``eval`` sections.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .errors import UserError


def member_folders(paths: list[str], labels: list[str] | None = None) -> list[Path]:
    """Run folders from run folders, or from one comparison folder (its finished runs, optionally only
    those of ``labels``)."""
    from .training.runfolder import COMPARE, is_finished

    if len(paths) == 1 and (Path(paths[0]) / COMPARE).is_file():
        root = Path(paths[0])
        runs = json.loads((root / COMPARE).read_text())["runs"]
        known = list(dict.fromkeys(r["label"] for r in runs))
        for lab in labels or []:
            if lab not in known:
                raise UserError(f"--label {lab}: no such model in {root / COMPARE}; models: {', '.join(known)}")
        folders = [root / r["folder"] for r in runs if not labels or r["label"] in labels]
        folders = [f for f in folders if is_finished(f)]
    else:
        if labels:
            raise UserError("--label picks models of a comparison folder; with run folders, name the runs")
        folders = [Path(p) for p in paths]
        for f in folders:
            if not is_finished(f):
                raise UserError(f"{f}: not a finished run folder (no run.json)")
    if len(folders) < 2:
        raise UserError(f"an ensemble needs at least 2 finished runs; found {len(folders)} in {' '.join(paths)}")
    return folders


def ensemble_config(members: list[tuple[Path, Any]]) -> dict[str, Any]:
    """The ensemble's config from its members' ``(folder, Config)``; refuses members of other data."""
    first_path, first = members[0]
    for path, cfg in members[1:]:
        if cfg.data != first.data:
            raise UserError(f"{path}: trained on other data than {first_path} (config 'data' differs); "
                            f"an ensemble averages runs scored on the same examples")
    cfg = first.to_dict()
    cfg["model"] = {"name": "ensemble", "members": [c.to_dict()["model"] for _, c in members]}
    return cfg


def build_ensemble_run(paths: list[str], *, out: str | None = None, labels: list[str] | None = None,
                       quiet: bool = False) -> Path:
    """Write the ensemble run folder of ``paths``; returns it.

    Args:
        paths: run folders, or one comparison folder.
        out: the new (or empty) folder; default ``ensemble-<stamp>`` beside the first member
            (inside the comparison folder for a comparison).
        labels: only these models of a comparison folder.
    """
    from . import plugins
    from .config import build_config
    from .datasets import build_data
    from .models import build_model
    from .training.loop import final_predictions, save_final_predictions, split_metrics
    from .training.run import _new_folder, data_info, read_checkpoint
    from .training.runfolder import ComparisonFolder, RunFolder

    folders = member_folders(paths, labels)
    read = [(f, *read_checkpoint(f)) for f in folders]
    cfg = build_config(ensemble_config([(f, c) for f, c, _ in read]))
    data = build_data(cfg.data)
    model = build_model(cfg.model, data.modalities, data.task)
    model.load_state_dict({f"members.{i}.{k}": v for i, (_, _, ck) in enumerate(read) for k, v in ck["model"].items()})
    root = Path(paths[0]) if len(paths) == 1 and ComparisonFolder.holds(paths[0]) else folders[0].parent
    run = RunFolder(_new_folder(out, root, "ensemble"))
    with run.lock():
        run.write_config(cfg.to_dict())
        plugins.record_run(run.path, cfg.to_dict())
        run.write_data_info(data_info(data, model))
        run.save_checkpoint("best", {"model": model.state_dict(), "config": cfg.to_dict(), "epoch": None})
        preds = final_predictions(model, data, cfg, device=torch.device("cpu"))
        results = {split: split_metrics(data.task, pred, cfg) for split, pred in preds.items()}
        run.write_metrics(results)
        save_final_predictions(run, data, cfg, preds)
        members = [str(f.resolve()) for f in folders]
        monitors = {RunFolder(f).read_completion().get("monitor") for f in folders}
        run.complete({"members": members, "monitor": monitors.pop() if len(monitors) == 1 else None,
                      "best_epoch": None, "epochs_run": 0, "train_seconds": sum(
                          float(RunFolder(f).read_completion().get("train_seconds") or 0) for f in folders)})
    if not quiet:
        print(f"ensemble of {len(folders)} runs -> {run.path}")
    return run.path
