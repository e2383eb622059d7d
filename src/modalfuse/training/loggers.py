"""Experiment tracking beside the run folder: TensorBoard and MLflow (``train.loggers``), and the
start banner.

The run folder's own files (``metrics.jsonl``, ``metrics.json``, ...) are always written; trackers
get the same numbers:

- per epoch: ``train/loss``, ``valid/<metric>`` for every validation metric, ``lr``,
  ``throughput/samples_per_s`` and ``time/epoch_seconds`` (TensorBoard tags; MLflow keys use ``_``
  for ``/``: ``valid_accuracy``), with the epoch number (1, 2, ...) as the step;
- the resolved config, flattened (``train.learning_rate``), as hyperparameters;
- at the end, the evaluated checkpoint's metrics per split (``final/test/<metric>``,
  ``final/valid/<metric>``; MLflow ``final_test_<metric>``); TensorBoard shows them with the config in
  its HParams dashboard.

TensorBoard writes event files into ``<run>/tensorboard`` through ``torch.utils.tensorboard`` (the
``[tensorboard]`` extra: ``tensorboard --logdir runs``). MLflow logs through ``MlflowClient`` to
``$MLFLOW_TRACKING_URI`` when set, otherwise to a local file store ``<runs root>/mlruns`` shared by
every run under the same ``--out`` (the ``[mlflow]`` extra: ``mlflow ui --backend-store-uri
runs/mlruns``); the experiment is ``$MLFLOW_EXPERIMENT_NAME`` or ``modalfuse``, the MLflow run is named
after the run folder, and its id is kept in ``<run>/loggers.json`` so ``--resume`` continues it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import UserError, missing_extra

LOGGERS = ("tensorboard", "mlflow")
STATE_FILE = "loggers.json"  # in the run folder: {"mlflow": {"tracking_uri": ..., "run_id": ...}}


def banner(cfg: Any, device: Any, world_size: int, run_dir: str | Path, parameters: int | None = None) -> str:
    """The one-line start banner of a training run (``training.run.train`` prints it).

    Args:
        cfg: the resolved ``Config`` (its ``model.name`` and ``train.precision``).
        device: the torch device training runs on.
        world_size: processes training together (1 without torchrun).
        run_dir: the run folder.
        parameters: the model's parameter count, when known.

    Returns:
        e.g. ``"modalfuse 0.1.0 | device cpu | precision fp32 | threads 2 | world size 1 | run folder
        runs/x | model fusion, 7,716 parameters"``.
    """
    import torch

    from .._version import __version__

    model = f" | model {cfg.model['name']}" + (f", {parameters:,} parameters" if parameters is not None else "")
    return (f"modalfuse {__version__} | device {device} | precision {cfg.train.precision} | threads "
            f"{torch.get_num_threads()} | world size {world_size} | run folder {run_dir}{model}")


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"epochs": 2}}`` -> ``{"train.epochs": 2}``; lists become their JSON text."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    value = json.dumps(obj) if isinstance(obj, (list, tuple)) else obj
    return {prefix[:-1]: value}


def epoch_scalars(row: dict[str, Any]) -> dict[str, float]:
    """A ``metrics.jsonl`` row as tracker scalars (TensorBoard tags)."""
    names = {"train_loss": "train/loss", "lr": "lr", "samples_per_s": "throughput/samples_per_s",
             "seconds": "time/epoch_seconds"}
    out = {}
    for k, v in row.items():
        if k == "epoch" or not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        tag = names.get(k) or (f"valid/{k[len('valid_'):]}" if k.startswith("valid_") else k)
        out[tag] = float(v)
    return out


def final_scalars(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """``{"test": {"accuracy": 0.7}}`` -> ``{"final/test/accuracy": 0.7}`` (scalars only)."""
    return {f"final/{split}/{k}": float(v) for split, m in results.items() for k, v in m.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _missing(extra: str, package: str) -> UserError:
    return missing_extra(f"train.loggers '{extra}'", package, extra)


class _TensorBoard:
    def __init__(self, run_dir: Path, config: dict[str, Any], first_epoch: int) -> None:
        try:
            import tensorboard  # noqa: F401 -- torch.utils.tensorboard needs it, and says so less clearly
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise _missing("tensorboard", "tensorboard") from None
        self.config = config
        # purge_step: a resumed run drops whatever an interrupted attempt logged past its checkpoint.
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=first_epoch if first_epoch > 1 else None)
        if first_epoch <= 1:
            import yaml

            self.writer.add_text("config", "```\n" + yaml.safe_dump(config, sort_keys=False) + "```", 0)

    def epoch(self, step: int, scalars: dict[str, float]) -> None:
        for tag, v in scalars.items():
            self.writer.add_scalar(tag, v, step)
        self.writer.flush()

    def finish(self, step: int, scalars: dict[str, float]) -> None:
        # The HParams dashboard: the flattened config against the final metrics, in this run's folder
        # (add_hparams also writes each final metric as a scalar, once).
        params = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in flatten(self.config).items()}
        self.writer.add_hparams(params, scalars, run_name=".")
        self.writer.close()

    def close(self) -> None:
        self.writer.close()


class _MLflow:
    def __init__(self, run_dir: Path, config: dict[str, Any], state: dict[str, Any]) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise _missing("mlflow", "mlflow (or mlflow-skinny)") from None
        uri = state.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            uri = (run_dir.resolve().parent / "mlruns").as_uri()
        if uri.startswith("file:"):
            # MLflow 3 keeps the file store (the local default the issue asks for) but refuses it
            # unless told to; this opts in for this process only.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(tracking_uri=uri)
        if state.get("run_id"):  # --resume: the same MLflow run
            self.run_id = state["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "modalfuse")
            exp = self.client.get_experiment_by_name(name)
            exp_id = exp.experiment_id if exp else self.client.create_experiment(name)
            self.run_id = self.client.create_run(exp_id, run_name=run_dir.name,
                                                 tags={"modalfuse.run_dir": str(run_dir.resolve())}).info.run_id
            from mlflow.entities import Param

            params = [Param(k, str(v)[:6000]) for k, v in flatten(config).items()]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                self.client.log_batch(self.run_id, params=params[i:i + 100])
        self.state = {"tracking_uri": uri, "run_id": self.run_id}

    def _log(self, step: int, scalars: dict[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        # MLflow metric keys: "valid_accuracy" rather than TensorBoard's "valid/accuracy" tags.
        metrics = [Metric(k.replace("/", "_"), v, now, step) for k, v in scalars.items()]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 1000])

    def epoch(self, step: int, scalars: dict[str, float]) -> None:
        self._log(step, scalars)

    def finish(self, step: int, scalars: dict[str, float]) -> None:
        self._log(step, scalars)
        self.client.set_terminated(self.run_id, status="FINISHED")

    def close(self) -> None:
        self.client.set_terminated(self.run_id, status="KILLED")


class Trackers:
    """The trackers ``train.loggers`` names, fed by the training loop (rank 0 only).

    Args:
        names: logger names from ``train.loggers`` (``tensorboard``, ``mlflow``).
        run_dir: the run folder.
        config: the resolved config (``Config.to_dict()``), logged as hyperparameters.
        first_epoch: the epoch training starts at (1, or later on ``--resume``).
    """

    def __init__(self, names: list[str], run_dir: str | Path, config: dict[str, Any], first_epoch: int = 1) -> None:
        self.run_dir = Path(run_dir)
        self.active: list[Any] = []
        saved = self._read_state()
        for name in dict.fromkeys(names):
            if name == "tensorboard":
                self.active.append(_TensorBoard(self.run_dir, config, first_epoch))
            elif name == "mlflow":
                try:
                    self.active.append(_MLflow(self.run_dir, config, saved.get("mlflow", {}) if first_epoch > 1 else {}))
                except UserError:
                    raise
                except Exception as e:  # MlflowException, connection errors: a bad URI or an unreachable server
                    uri = os.environ.get("MLFLOW_TRACKING_URI") or "the local file store"
                    first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
                    raise UserError(f"train.loggers 'mlflow': could not start a run at {uri} ({first})") from None
                self._write_state({"mlflow": self.active[-1].state})
            else:
                raise UserError(f"config key 'train.loggers': unknown logger '{name}'; known: {', '.join(LOGGERS)}")

    def _read_state(self) -> dict[str, Any]:
        p = self.run_dir / STATE_FILE
        return json.loads(p.read_text()) if p.is_file() else {}

    def _write_state(self, state: dict[str, Any]) -> None:
        from .runfolder import atomic_write

        atomic_write(self.run_dir / STATE_FILE, json.dumps(state, indent=2) + "\n")

    def epoch(self, row: dict[str, Any]) -> None:
        """Log one ``metrics.jsonl`` row (its ``epoch`` is the step)."""
        scalars = epoch_scalars(row)
        for t in self.active:
            t.epoch(int(row["epoch"]), scalars)

    def finish(self, results: dict[str, dict[str, Any]], last_epoch: int) -> None:
        """Log the final metrics of each evaluated split and close every tracker."""
        scalars = final_scalars(results)
        for t in self.active:
            t.finish(last_epoch, scalars)
        self.active = []

    def close(self) -> None:
        """Close without final metrics (the run stopped early); MLflow marks the run KILLED."""
        for t in self.active:
            t.close()
        self.active = []

    @contextmanager
    def closing(self) -> Iterator[Trackers]:
        """Around the epochs: an exception (interrupt, divergence) closes the trackers first."""
        try:
            yield self
        except BaseException:
            self.close()
            raise


__all__ = ["LOGGERS", "STATE_FILE", "Trackers", "banner", "epoch_scalars", "final_scalars", "flatten"]
