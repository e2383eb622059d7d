"""``compare --tune N``: every model gets the same N-trial hyperparameter search on the validation
split before its seeds are trained with the best trial's values.

The search space is declared per comparison preset, under ``tune:`` (config key -> space)::

    tune:
      train.learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}   # float (log scale)
      model.head.dropout: {low: 0.0, high: 0.5}                      # float
      model.head.hidden_dims: {choices: [[64], [128], [256, 128]]}   # categorical

Each model's study is an Optuna study (``optuna`` is the ``[tune]`` extra) named
``<comparison>-<model>``, sampled by a seeded TPE sampler (seed 0, the same for every model), in
``--tune-storage`` (any Optuna RDB storage URL: ``sqlite:///tune.db``, ``postgresql://...``, or the path
of an Optuna journal file, which works on a shared file system across nodes; default:
``<comparison>/tuning.db``, and ``<comparison>/tuning.journal`` under ``--launcher slurm``). The
storage is opened once, before any worker starts (``open_storage``): two workers that created an
SQLite schema at once failed with ``UNIQUE constraint failed: alembic_version.version_num``. A trial trains the model with the first seed of the comparison and
scores the validation metric its runs monitor (``run.json``'s ``best_valid``). A study stops at N
complete trials counted in the storage, so several machines pointing at one storage share the
work, and re-running continues an interrupted search. Trial history: ``tuning.csv``; chosen values:
``tuning.json`` (both in the comparison folder) and the report.

Where validation cannot select (runs that keep the last epoch, ``train.select: last``, because the
validation split is not like the test split: the bundled MOSI utterance features), tuning is refused.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from ..config import Config, apply_overrides, build_config
from ..errors import ConfigError, UserError, missing_extra
from ..metrics import DEFAULT_MONITOR, direction
from ..training.runfolder import RunFolder, atomic_write_text, write_json
from .plan import Plan

TUNE_SEED = 0
TUNING_CSV, TUNING_JSON = "tuning.csv", "tuning.json"


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise missing_extra("compare --tune", "optuna", "tune") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def open_storage(spec: str) -> Any:
    """The Optuna storage ``spec`` names, its schema created if new.

    Args:
        spec: an RDB URL (``sqlite:///tune.db``, ``postgresql://...``) or the path of a journal file
            (``JournalFileBackend``: file locks, no database server, safe on a shared file system).
    """
    optuna = _optuna()
    if "://" in spec:
        return optuna.storages.RDBStorage(spec)
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(spec))


def open_study(name: str, storage: str, goal: str) -> Any:
    """One model's study in ``storage`` (created if new), sampled by the seeded TPE sampler.

    Args:
        name: ``<comparison>-<model>``.
        storage: as ``open_storage`` takes it.
        goal: ``max`` or ``min`` (``metrics.direction`` of the monitored metric).
    """
    optuna = _optuna()
    return optuna.create_study(study_name=name, storage=open_storage(storage), load_if_exists=True,
                               direction="maximize" if goal == "max" else "minimize",
                               sampler=optuna.samplers.TPESampler(seed=TUNE_SEED))


def _suggest(trial: Any, key: str, space: Any) -> Any:
    if not isinstance(space, dict):
        raise ConfigError(f"tune.{key}: expected {{low:, high:[, log: true]}} or {{choices: [...]}}, found {space!r}")
    if "choices" in space:
        choices = list(space["choices"])
        # Optuna stores categorical choices that are plain scalars; lists go through their YAML text.
        text = [c if isinstance(c, (int, float, str, bool)) or c is None else yaml.safe_dump(c, default_flow_style=True).strip()
                for c in choices]
        picked = trial.suggest_categorical(key, text)
        return choices[text.index(picked)]
    if set(space) - {"low", "high", "log", "step"} or not {"low", "high"} <= set(space):
        raise ConfigError(f"tune.{key}: expected keys low, high (and optionally log, step); found {', '.join(space)}")
    low, high = space["low"], space["high"]
    if isinstance(low, int) and isinstance(high, int) and not space.get("log"):
        return trial.suggest_int(key, low, high, step=int(space.get("step", 1)))
    return trial.suggest_float(key, float(low), float(high), log=bool(space.get("log", False)))


def _override(key: str, value: Any) -> str:
    return f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"


def _objective_factory(raw: dict[str, Any], space: dict[str, Any], trial_root: Path) -> Any:
    def objective(trial: Any) -> float:
        from ..training.run import train

        chosen = {k: _suggest(trial, k, s) for k, s in space.items()}
        cfg_raw = apply_overrides(raw, [_override(k, v) for k, v in chosen.items()])
        folder = trial_root / f"trial-{trial.number}"
        if folder.exists():
            shutil.rmtree(folder)
        train(cfg_raw, run_dir=folder, quiet=True)
        run = RunFolder(folder)
        best_valid = run.read_completion()["best_valid"]
        trial.set_user_attr("run_dir", str(folder))
        trial.set_user_attr("values", {k: v for k, v in chosen.items()})
        shutil.rmtree(run.checkpoint_path().parent, ignore_errors=True)  # the trial's numbers stay, its weights go
        return float(best_valid)

    return objective


def _study(label: str, p: Plan, raw: dict[str, Any], space: dict[str, Any], trials: int, storage: str,
           trial_root: str) -> dict[str, Any]:
    """Run (or continue) one model's study up to ``trials`` complete trials; its rows and best trial."""
    import torch

    optuna = _optuna()
    torch.set_num_threads(1)
    cfg = build_config(raw)
    monitor = cfg.train.monitor or DEFAULT_MONITOR.get(_task_kind(cfg), "accuracy")
    study = open_study(f"{p.name}-{label}", storage, direction(monitor))
    done = lambda: len([t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE])  # noqa: E731
    if done() < trials:
        study.optimize(_objective_factory(raw, space, Path(trial_root) / label),
                       callbacks=[optuna.study.MaxTrialsCallback(trials, states=(optuna.trial.TrialState.COMPLETE,))],
                       n_trials=trials - done())
    return study_summary(label, monitor, study)


def study_summary(label: str, monitor: str, study: Any) -> dict[str, Any]:
    """One model's finished study: its trial rows (``tuning.csv``) and best trial."""
    rows = [{"model": label, "trial": t.number, "state": t.state.name, "value": t.value,
             **{k: json.dumps(v) for k, v in (t.user_attrs.get("values") or {}).items()}} for t in study.trials]
    best = study.best_trial
    return {"label": label, "monitor": monitor, "rows": rows, "best": {"value": best.value,
            "params": best.user_attrs.get("values", {}), "trial": best.number}}


def _task_kind(cfg: Config) -> str:
    """The task kind of a validated config's data (built once to see it)."""
    from ..datasets import build_data

    return build_data(cfg.data).task.kind


def tune_plan(p: Plan, folder: Path, *, trials: int, overrides: list[str], storage: str | None = None,
              jobs: int = 1, stream: Any = None, launcher: Any = None) -> dict[str, list[str]] | None:
    """Tune every model of ``p``; returns ``{label: overrides}`` of each model's best trial.

    With a cluster ``launcher`` (``slurm_runs.SlurmLauncher``) the trials run as its array tasks;
    None when it detached with trials still queued."""
    import sys

    stream = stream or sys.stderr
    if trials < 1:
        raise UserError(f"--tune {trials}: expected at least 1 trial")
    if not p.tune:
        raise UserError(f"comparison '{p.name}' declares no search space: add a 'tune:' section to its preset "
                        f"(e.g. tune: {{train.learning_rate: {{low: 1.0e-4, high: 1.0e-2, log: true}}}})")
    _optuna()
    first = {}
    for spec in p.runs:
        first.setdefault(spec.label, spec)
    blind = [lab for lab, spec in first.items() if spec.config.train.select == "last"]
    if blind:
        raise UserError(f"--tune: validation cannot select for {', '.join(blind)} (train.select: last: their "
                        f"validation split does not track the test split), so a search would fit noise; tune a "
                        f"comparison whose validation can select (e.g. yt8m-sample, synthetic), or --set "
                        f"train.select=best if you know it can")
    folder.mkdir(parents=True, exist_ok=True)
    storage = storage or (launcher.default_storage(folder) if launcher is not None
                          else f"sqlite:///{(folder / 'tuning.db').resolve()}")
    print(f"tuning {len(first)} models x {trials} trials ({', '.join(p.tune)}), storage {storage}",
          file=stream, flush=True)
    open_storage(storage)  # the schema, once, before any worker opens it (the workers raced to create it)
    args = [(lab, p, spec.raw, p.tune, trials, storage, str(folder / "tuning")) for lab, spec in first.items()]
    if launcher is not None:
        results = launcher.tune(p, folder, first, trials, storage, stream=stream)
        if results is None:
            return None
    elif jobs > 1 and len(args) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # One study per worker: TPE stays sequential within a study, so results do not depend on jobs.
        with ProcessPoolExecutor(max_workers=min(jobs, len(args)), mp_context=mp.get_context("spawn")) as pool:
            results = list(pool.map(_study_star, args))
    else:
        results = [_study(*a) for a in args]
    rows = [r for res in results for r in res["rows"]]
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(cols), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(folder / TUNING_CSV, buf.getvalue())
    monitor = results[0]["monitor"]
    write_json(folder / TUNING_JSON, {
        "trials": trials, "seed": TUNE_SEED, "train_seed": p.seeds[0], "monitor": monitor,
        "direction": direction(monitor), "space": p.tune, "storage": storage.split("://")[0].split(":")[0] if "://" in storage else "journal",  # the kind only: a URL may hold a password
        "best": {res["label"]: res["best"] for res in results}, "warnings": [],
    })
    for res in results:
        print(f"tuned {res['label']}: valid {res['monitor']} {res['best']['value']:.4f} with "
              + ", ".join(f"{k}={v}" for k, v in res["best"]["params"].items()), file=stream, flush=True)
    return {res["label"]: [_override(k, v) for k, v in res["best"]["params"].items()] for res in results}


def _study_star(a: tuple) -> dict[str, Any]:
    return _study(*a)

