"""Entry points over the loop: ``train`` a config into a new run folder, ``evaluate_run``, ``load_run``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
import yaml

from ..config import Config, apply_overrides, build_config, load_yaml
from ..datasets import DataBundle, build_data
from ..datasets.base import ModalitySpec, TaskSpec
from ..errors import UserError
from ..listing import PRESET_DIR
from ..models import build_model, count_parameters
from . import distributed
from .loop import fit, predict_split, seed_everything, split_metrics
from .runfolder import load_checkpoint, new_run_dir, write_json, write_yaml

log = logging.getLogger("modalfuse")


def resolve_config_path(config: str | Path) -> Path:
    """A YAML path as given, or a preset name (``synthetic``, ``yt8m/attend-fusion``) from the package."""
    path = Path(config)
    if path.is_file():
        return path
    preset = PRESET_DIR / f"{config}.yaml"
    if preset.is_file():
        return preset
    from .. import listing

    names = listing.preset_names()
    from ..errors import closest

    raise UserError(f"{config}: no such config file or preset{closest(str(config), names)}; presets: {', '.join(names)}")


def _echo(msg: str) -> None:
    print(msg, flush=True)


# Settings a resumed run may change: where and how fast it runs, not what it computes.
RESUME_SETTINGS = ("train.threads", "train.progress", "train.num_workers", "train.device")


def train(config: str | Path | dict[str, Any], *, overrides: list[str] | None = None, out: str | Path = "runs",
          resume: str | Path | None = None, run_dir: str | Path | None = None, quiet: bool = False) -> Path | None:
    """Train one model; returns its run folder (``None`` on ranks other than 0 under torchrun).

    Args:
        config: a YAML path, a preset name, or a raw config dict.
        overrides: ``a.b=c`` strings applied on top of the config.
        out: folder that receives a new run folder ``<name>-<timestamp>``.
        resume: an interrupted run folder to continue (its saved config is used).
        run_dir: an explicit, new (or empty) run folder instead of one under ``out``.
    """
    say = (lambda m: None) if quiet else _echo
    if resume is not None:
        folder = Path(resume)
        if not (folder / "config.yaml").is_file():
            raise UserError(f"{folder}: not a run folder (no config.yaml)")
        if (folder / "metrics.json").is_file():
            raise UserError(f"{folder}: this run already finished (metrics.json exists); nothing to resume")
        raw = yaml.safe_load((folder / "config.yaml").read_text())
        changed = [o.split("=", 1)[0].strip() for o in overrides or []]
        fixed = [k for k in changed if k not in RESUME_SETTINGS]
        if fixed:
            raise UserError(f"--resume {folder}: '{fixed[0]}' cannot change in a resumed run (it would change its "
                            f"results); only {', '.join(RESUME_SETTINGS)} can")
        cfg = build_config(apply_overrides(raw, overrides or []))
        name = None
    else:
        if isinstance(config, dict):
            raw, name = apply_overrides(config, overrides or []), "run"
        else:
            path = resolve_config_path(config)
            raw = load_yaml(path)
            if "models" in raw and "data" not in raw:
                raise UserError(f"{config}: this is a comparison preset (it lists models); run it with "
                                f"`modalfuse compare {path.stem if path.parent.name == 'compare' else path}`")
            raw, name = apply_overrides(raw, overrides or []), path.stem
        cfg = build_config(raw)

    d, device = distributed.setup(cfg.train.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    try:
        if resume is not None and overrides and d.is_main:  # the folder's config records the new settings
            write_yaml(folder / "config.yaml", cfg.to_dict())
        if resume is None:
            # Rank 0 picks the folder and every rank uses it; an error there must reach the other
            # ranks too, or they would wait in the broadcast forever.
            folder, error = None, None
            if d.is_main:
                try:
                    folder = _new_folder(run_dir, out, f"{name}-{cfg.model['name']}")
                    write_yaml(folder / "config.yaml", cfg.to_dict())
                except UserError as e:
                    error = str(e)
            folder, error = distributed.broadcast(d, (str(folder), error))
            if error:
                raise UserError(error)
            folder = Path(folder)
        data = build_data(cfg.data)
        # The weights' initial values follow train.seed (the same on every rank; DDP also
        # broadcasts rank 0's), not whatever this process drew from the RNG before.
        seed_everything(cfg.train.seed, cfg.train.deterministic)
        model = build_model(cfg.model, data.modalities, data.task)
        if d.is_main:
            write_json(folder / "data.json", {
                "modalities": {m: {"dim": s.dim, "seq_len": s.seq_len} for m, s in data.modalities.items()},
                "task": {"kind": data.task.kind, "num_classes": data.task.num_classes,
                         "class_names": list(data.task.class_names) if data.task.class_names else None},
                "parameters": count_parameters(model), "info": data.info,
            })
            say(f"run folder {folder}  ({cfg.model['name']}, {count_parameters(model):,} parameters, {device})")
        fit(cfg, data, model, folder, resume=resume is not None, d=d, device=device,
            log=say if d.is_main else (lambda m: None))
    finally:
        distributed.teardown(d)
    return folder if d.is_main else None


def _new_folder(run_dir: str | Path | None, out: str | Path, name: str) -> Path:
    if run_dir is None:
        return new_run_dir(out, name)
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise UserError(f"{folder}: run folder is not empty (runs never overwrite earlier runs)")
    return folder


def read_checkpoint(run_dir: str | Path, checkpoint: str = "best",
                    device: str | torch.device = "cpu") -> tuple[Config, dict[str, Any]]:
    """A run's ``checkpoints/<checkpoint>.pt`` and the config it was trained with."""
    path = Path(run_dir) / "checkpoints" / f"{checkpoint}.pt"
    if not path.is_file():
        raise UserError(f"{run_dir}: not a finished run folder (no checkpoints/{checkpoint}.pt)")
    ck = load_checkpoint(path, map_location=device)
    return build_config(ck["config"]), ck


def restore_model(cfg: Config, ck: dict[str, Any], modalities: dict[str, ModalitySpec], task: TaskSpec,
                  device: str | torch.device = "cpu") -> torch.nn.Module:
    """The model ``cfg`` describes, built for ``modalities`` and ``task``, with the checkpoint's
    weights, on ``device`` in eval mode."""
    model = build_model(cfg.model, modalities, task)
    model.load_state_dict(ck["model"])
    return model.to(device).eval()


def load_run(run_dir: str | Path, checkpoint: str = "best", device: str | torch.device = "cpu",
             data: DataBundle | None = None) -> tuple[Config, torch.nn.Module, DataBundle]:
    """A finished run's config, its model with the chosen checkpoint's weights, and its data."""
    cfg, ck = read_checkpoint(run_dir, checkpoint, device)
    data = data or build_data(cfg.data)
    return cfg, restore_model(cfg, ck, data.modalities, data.task, device), data


def evaluate_run(run_dir: str | Path, split: str = "test") -> dict[str, Any]:
    """Metrics of a run's best checkpoint on ``split`` (``train``, ``valid`` or ``test``)."""
    cfg, model, data = load_run(run_dir)
    try:
        ds = data.split(split)
    except KeyError as e:
        raise UserError(f"{run_dir}: {e.args[0]}") from None
    pred = predict_split(model, ds, data.task, batch_size=cfg.eval.batch_size, device=torch.device("cpu"))
    return {k: v for k, v in split_metrics(data.task, pred, cfg).items() if not k.startswith("per_class")}
