"""Entry points over the loop: ``train`` a config into a new run folder, ``evaluate_run``, ``load_run``."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from ..config import Config, apply_overrides, build_config, load_yaml
from ..datasets import DataBundle, build_data
from ..datasets.base import ModalitySpec, TaskSpec
from ..errors import DataError, UserError
from ..listing import PRESET_DIR
from ..models import build_model, count_parameters
from . import distributed
from .loop import fit, predict_split, seed_everything, split_metrics
from . import runfolder
from .. import plugins
from .loggers import banner
from .runfolder import RESULT_NEUTRAL, RunFolder, config_difference, new_run_dir

log = logging.getLogger("modalfuse")


def resolve_config_path(config: str | Path) -> Path:
    """A YAML path as given, or a preset name (``synthetic``, ``yt8m/attend-fusion``) from the package."""
    from .. import listing
    from ..files import find_file

    return find_file(config, PRESET_DIR, listing.preset_names(), "config file or preset", "presets")


def _echo(msg: str) -> None:
    print(msg, flush=True)


# Settings a resumed run may change: where and how fast it runs, not what it computes.
RESUME_SETTINGS = RESULT_NEUTRAL


def _resume_config(folder: Path, config: str | Path | dict[str, Any] | None,
                   overrides: list[str]) -> Config:
    """The config of an interrupted run, with only the settings a resume may change applied.

    Raises:
        UserError: not a resumable run folder, a setting that would change results, or a ``config``
            that differs from the run's own.
    """
    run = RunFolder(folder)
    run.require(runfolder.CONFIG, what="a run folder")
    if run.is_finished():
        raise UserError(f"{folder}: this run already finished ({runfolder.COMPLETE} exists); nothing to resume")
    raw = run.read_config()
    plugins.require_run(folder)  # the plugin modules the run was trained with (plugins.json)
    changed = [o.split("=", 1)[0].strip() for o in overrides]
    fixed = [k for k in changed if k not in RESUME_SETTINGS]
    if fixed:
        raise UserError(f"--resume {folder}: '{fixed[0]}' cannot change in a resumed run (it would change its "
                        f"results); only {', '.join(RESUME_SETTINGS)} can")
    cfg = build_config(apply_overrides(raw, overrides))
    if config is not None:  # the config named on the command line must be the run's own
        given = (config if isinstance(config, Config) else
                 build_config(config if isinstance(config, dict) else load_yaml(resolve_config_path(config))))
        # the overrides change only result-neutral keys, which the difference ignores: cfg is the run's
        diff = config_difference(cfg.to_dict(), given.to_dict())
        if diff:
            raise UserError(f"--resume {folder}: the config given is not the run's ({diff}); resume with "
                            f"`modalfuse train {folder / runfolder.CONFIG} --resume {folder}`")
    return cfg


def _validation_metric_names(task: TaskSpec) -> list[str]:
    """The scalar metrics validation reports for ``task`` (what ``train.monitor`` may name), from
    the metric functions themselves on two made-up samples."""
    import numpy as np

    from ..metrics import compute_metrics

    c = max(task.num_classes, 2)
    if task.kind == "multiclass":
        outputs, labels = np.eye(2, c, dtype=np.float32), np.array([0, 1])
    elif task.kind == "multilabel":
        outputs, labels = np.eye(2, c, dtype=np.float32), np.eye(2, c, dtype=np.float32)
    else:
        outputs, labels = np.array([0.5, -0.5], np.float32), np.array([1.0, -1.0], np.float32)
    metrics = compute_metrics(task.kind, outputs, labels, num_classes=c)
    return sorted(k for k, v in metrics.items() if isinstance(v, (int, float, np.floating)))


def check_monitor(cfg: Config, task: TaskSpec) -> None:
    """Refuse a ``train.monitor`` that is not a validation metric of the task, before any epoch.

    Raises:
        ConfigError: naming the key, the closest metric and the available ones.
    """
    from ..errors import ConfigError, closest

    if cfg.train.monitor is None:
        return
    names = _validation_metric_names(task)
    if cfg.train.monitor not in names:
        raise ConfigError(f"config key 'train.monitor': '{cfg.train.monitor}' is not a validation metric of this "
                          f"{task.kind} task{closest(cfg.train.monitor, names)}; available: {', '.join(names)}")


def train(config: str | Path | dict[str, Any] | Config | None, *, overrides: list[str] | None = None,
          out: str | Path = "runs", resume: str | Path | None = None, run_dir: str | Path | None = None,
          quiet: bool = False, on_epoch: Any = None) -> Path | None:
    """Train one model; returns its run folder (``None`` on ranks other than 0 under torchrun).

    The run folder is created only once the data and the model have been built, so a run that
    fails on bad input leaves no folder behind. Training holds the folder's lock (see
    ``runfolder.folder_lock``): a second train or resume of the same folder is refused.

    Args:
        config: a YAML path, a preset name, a raw config dict or a validated ``Config`` (used as
            it is when there are no overrides); with ``resume`` it may be None (the run's own
            config), and otherwise must equal the run's config.
        overrides: ``a.b=c`` strings applied on top of the config.
        out: folder that receives a new run folder ``<name>-<timestamp>``.
        resume: an interrupted run folder to continue (its saved config is used).
        run_dir: an explicit, new (or empty) run folder instead of one under ``out``.
        on_epoch: called with each epoch's ``metrics.jsonl`` row (``fit``'s ``on_epoch``).
    """
    say = (lambda m: None) if quiet else _echo
    overrides = list(overrides or [])
    if resume is not None:
        folder = Path(resume)
        cfg = _resume_config(folder, config, overrides)
        name = None
    else:
        cfg, name = _new_config(config, overrides)

    d, device = distributed.setup(cfg.train.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    try:
        # Data and model first: bad input fails here, before any folder exists.
        data = build_data(cfg.data)
        check_monitor(cfg, data.task)
        # The weights' initial values follow train.seed (the same on every rank; DDP also
        # broadcasts rank 0's), not whatever this process drew from the RNG before.
        seed_everything(cfg.train.seed, cfg.train.deterministic)
        model = build_model(cfg.model, data.modalities, data.task)
        if resume is None:
            folder = _pick_folder(d, run_dir, out, f"{name}-{cfg.model['name']}")
        run = RunFolder(folder)
        # Only rank 0 writes into the folder, so only rank 0 locks it.
        with run.lock() if d.is_main else nullcontext():
            if d.is_main:
                _start_folder(run, cfg, data, model, resumed=resume is not None, overrides=overrides)
                say(banner(cfg, device, d.world_size, folder, count_parameters(model)))
            fit(cfg, data, model, run, resume=resume is not None, d=d, device=device,
                log=say if d.is_main else (lambda m: None), on_epoch=on_epoch)
    finally:
        distributed.teardown(d)
    return folder if d.is_main else None


def _new_config(config: str | Path | dict[str, Any] | Config | None, overrides: list[str]) -> tuple[Config, str]:
    """A new run's validated config and the name its folder starts with (the preset's, or "run")."""
    if config is None:
        raise UserError("train: a config (YAML file or preset name) is needed unless --resume is given")
    if isinstance(config, Config) and not overrides:
        return config, "run"  # validated once already (a comparison's plan)
    if isinstance(config, (dict, Config)):
        return build_config(apply_overrides(config if isinstance(config, dict) else config.to_dict(), overrides)), "run"
    path = resolve_config_path(config)
    raw = load_yaml(path)
    if "models" in raw and "data" not in raw:
        raise UserError(f"{config}: this is a comparison preset (it lists models); run it with "
                        f"`modalfuse compare {path.stem if path.parent.name == 'compare' else path}`")
    return build_config(apply_overrides(raw, overrides)), path.stem


def _pick_folder(d: distributed.Dist, run_dir: str | Path | None, out: str | Path, name: str) -> Path:
    """Rank 0 creates the new run folder and every rank uses it; an error there must reach the other
    ranks too, or they would wait in the broadcast forever."""
    folder, error = None, None
    if d.is_main:
        try:
            folder = _new_folder(run_dir, out, name)
        except UserError as e:
            error = str(e)
    folder, error = distributed.broadcast(d, (str(folder), error))
    if error:
        raise UserError(error)
    return Path(folder)


def _start_folder(run: RunFolder, cfg: Config, data: DataBundle, model: torch.nn.Module, *, resumed: bool,
                  overrides: list[str]) -> None:
    """What a run folder holds before the first epoch (rank 0, under the folder's lock)."""
    if resumed:
        run.clean_stale_temporaries()
    if not resumed or overrides:  # a resumed folder's config records the new settings
        run.write_config(cfg.to_dict())
    run.write_data_info(data_info(data, model))
    if not resumed:
        plugins.record_run(run.path, cfg.to_dict())  # plugins.json: what evaluate/predict/... must import


def data_info(data: DataBundle, model: torch.nn.Module) -> dict[str, Any]:
    """What ``data.json`` records: the modalities' sizes, the task, the parameter count, the data's info
    (``RunFolder.read_specs`` reads the first two back)."""
    return {
        "modalities": {m: {"dim": s.dim, "seq_len": s.seq_len} for m, s in data.modalities.items()},
        "task": {"kind": data.task.kind, "num_classes": data.task.num_classes,
                 "class_names": list(data.task.class_names) if data.task.class_names else None},
        "parameters": count_parameters(model), "info": data.info,
    }


def _new_folder(run_dir: str | Path | None, out: str | Path, name: str) -> Path:
    if run_dir is None:
        return new_run_dir(out, name)
    folder = Path(run_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise runfolder.write_error(folder, e) from e
    if any(p.name != runfolder.LOCK for p in folder.iterdir()):
        raise UserError(f"{folder}: run folder is not empty (runs never overwrite earlier runs)")
    return folder


def read_checkpoint(run_dir: str | Path, checkpoint: str = "best",
                    device: str | torch.device = "cpu") -> tuple[Config, dict[str, Any]]:
    """A run's ``checkpoints/<checkpoint>.pt`` and the config it was trained with."""
    run = RunFolder(run_dir)
    path = run.checkpoint_path(checkpoint)
    if not path.is_file():
        raise UserError(f"{run_dir}: not a finished run folder (no {path.relative_to(run.path)})")
    ck = run.load_checkpoint(checkpoint, map_location=device)
    if not isinstance(ck["config"], dict):
        raise DataError(f"{path}: not a modalfuse checkpoint ('config' is not a mapping)")
    plugins.require_run(run_dir)  # the plugin modules the run was trained with (plugins.json)
    try:
        return build_config(ck["config"]), ck
    except UserError as e:
        raise DataError(f"{path}: the checkpoint's config is not valid: {e}") from None


def restore_model(cfg: Config, ck: dict[str, Any], modalities: dict[str, ModalitySpec], task: TaskSpec,
                  device: str | torch.device = "cpu") -> torch.nn.Module:
    """The model ``cfg`` describes, built for ``modalities`` and ``task``, with the checkpoint's
    weights, on ``device`` in eval mode."""
    model = build_model(cfg.model, modalities, task)
    try:
        model.load_state_dict(ck["model"])
    except (RuntimeError, KeyError, TypeError) as e:  # missing/unexpected keys, size mismatch
        first = str(e).strip().splitlines()
        raise DataError(f"checkpoint weights do not fit the model its config builds "
                        f"({(first[1] if len(first) > 1 else first[0]).strip()[:160] if first else type(e).__name__})") from None
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
    pred = predict_split(model, ds, data.task, batch_size=cfg.eval.batch_size, device=torch.device("cpu"),
                         top_k=cfg.eval.top_k, threshold=cfg.eval.threshold)
    return {k: v for k, v in split_metrics(data.task, pred, cfg).items() if not k.startswith("per_class")}
