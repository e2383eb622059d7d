"""The Python API: what the command line does, as functions that return objects.

    import modalfuse

    run = modalfuse.train("synthetic", overrides=["train.epochs=2"], out="runs")
    run.metrics["test"]["accuracy"]          # the best checkpoint's metrics
    modalfuse.evaluate(run, split="valid")   # metrics on another split
    run = modalfuse.load_run(run.path)       # the same Run from its folder, later
    cmp = modalfuse.compare(["synthetic"], seeds=2)
    cmp.summary                              # rows of report/summary.csv

Everything reads and writes run folders, so a ``Run`` from ``train`` and one from ``load_run`` are
the same thing; what is costly to build (the model, the data) is loaded on first access.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UserError

if TYPE_CHECKING:  # kept out of `import modalfuse`, which should not pay for torch until it is used
    from .config import Config
    from .datasets.base import DataBundle, ModalitySpec, TaskSpec


@dataclass(eq=False)
class Run:
    """A run folder, read lazily.

    Attributes:
        path: the run folder.
        config: the resolved ``Config`` it was trained with (``config.yaml``).
        metrics: ``{"valid": {...}, "test": {...}}`` of the evaluated checkpoint (``metrics.json``;
            ``{}`` while the run is unfinished).
        history: one dict per epoch (``metrics.jsonl``: ``train_loss``, ``valid_<metric>``, ``lr``, ...).
        info: ``data.json``: modalities, task, class names, parameter count.
        modalities: ``{name: ModalitySpec(dim, seq_len)}`` the model reads.
        task: ``TaskSpec(kind, num_classes, class_names)``.
        model: the model with the best checkpoint's weights, on CPU in eval mode (built on first use;
            needs no data). Its forward takes ``(features, masks)`` and returns a dict with
            ``"logits"`` ``[B, C]``.
        data: the run's ``DataBundle`` (splits), built from its config on first use (may read files).
        plugins: plugin modules the run needs (``plugins.json``).
    """

    path: Path
    _data: DataBundle | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from .training.runfolder import CONFIG, RunFolder

        self.path = Path(self.path)
        self._folder = RunFolder(self.path)  # every file of the folder is read through it
        self._folder.require(CONFIG, what="a run folder")

    @cached_property
    def plugins(self) -> list[str]:
        from . import plugins

        return plugins.require_run(self.path)

    @cached_property
    def config(self) -> Config:
        from .config import build_config

        self.plugins  # noqa: B018 -- its entries must be registered before the config validates
        return build_config(self._folder.read_config())

    @property
    def metrics(self) -> dict[str, Any]:
        return self._folder.read_metrics()

    @property
    def history(self) -> list[dict[str, Any]]:
        return self._folder.read_history()

    @property
    def finished(self) -> bool:
        """Whether the run wrote its completion marker (``run.json``)."""
        return self._folder.is_finished()

    @cached_property
    def info(self) -> dict[str, Any]:
        info = self._folder.read_data_info()
        if info is None:
            raise UserError(f"{self.path}: no data.json (the run stopped before its data was built)")
        return info

    @property
    def modalities(self) -> dict[str, ModalitySpec]:
        return self._folder.read_specs()[0]

    @property
    def task(self) -> TaskSpec:
        return self._folder.read_specs()[1]

    @cached_property
    def model(self) -> Any:
        from .serving.export import load_run_model

        self.plugins  # noqa: B018
        return load_run_model(self.path)[0]

    @property
    def data(self) -> DataBundle:
        if self._data is None:
            from .datasets import build_data

            self._data = build_data(self.config.data)
        return self._data

    def evaluate(self, split: str = "test") -> dict[str, Any]:
        """Metrics of the best checkpoint on ``split``; see :func:`evaluate`."""
        return evaluate(self, split=split)

    def __repr__(self) -> str:
        state = "finished" if self.finished else "unfinished"
        return f"Run({str(self.path)!r}, {state})"


@dataclass(eq=False)
class Comparison:
    """A comparison folder (``modalfuse compare``).

    Attributes:
        path: the comparison folder.
        runs: its finished runs, in plan order (``Run`` each).
        summary: rows of ``report/summary.csv`` (one per model: mean and std of each metric).
        report: ``report/report.md``.
    """

    path: Path

    @property
    def _folder(self) -> Any:
        from .training.runfolder import ComparisonFolder

        return ComparisonFolder(self.path)

    @property
    def runs(self) -> list[Run]:
        runs = [self._folder.run(r["folder"]) for r in self._folder.read_plan()["runs"]]
        return [Run(r.path) for r in runs if r.is_finished()]

    @property
    def summary(self) -> list[dict[str, str]]:
        with open(self._folder.report_dir / "summary.csv", newline="") as f:
            return list(csv.DictReader(f))

    @property
    def report(self) -> Path:
        return self._folder.report_dir / "report.md"


def _as_path(run: Run | str | Path) -> Path:
    return run.path if isinstance(run, Run) else Path(run)


def train(config: str | Path | dict[str, Any], *, overrides: list[str] | None = None, out: str | Path = "runs",
          run_dir: str | Path | None = None, quiet: bool = False) -> Run:
    """Train one model into a new run folder.

    Args:
        config: a YAML path, a preset name (``"synthetic"``, ``"mosi/early"``) or a config dict with
            sections ``data``, ``model``, ``train``, ``eval``.
        overrides: ``"a.b=c"`` strings (YAML values), as ``--set``.
        out: folder that receives the new run folder ``<name>-<model>-<timestamp>``.
        run_dir: an explicit new (or empty) run folder instead of one under ``out``.
        quiet: no progress lines on stdout.

    Returns:
        The finished ``Run``.
    """
    from .training.run import train as _train

    return Run(_train(config, overrides=overrides, out=out, run_dir=run_dir, quiet=quiet))


def smoke(config: str | Path | dict[str, Any], *, overrides: list[str] | None = None) -> list[str]:
    """Check a config fast, writing nothing: validate it, build its data and model, then run one
    batch of each split through the model (train: forward, loss, backward and one optimizer step;
    valid/test: forward and loss), checking that every loss and output is finite.

    Args:
        config: a YAML path, a preset name or a config dict (as :func:`train`).
        overrides: ``"a.b=c"`` strings.

    Returns:
        Lines describing what was checked (``modalfuse train CONFIG --smoke`` prints them).

    Raises:
        UserError: a bad config, unreadable data, or a non-finite loss/output (naming the split).
    """
    import time

    import torch

    from .config import apply_overrides, build_config, load_yaml
    from .datasets import build_data
    from .datasets.loader import eval_batches, train_batches
    from .models import build_model, count_parameters
    from .training.loop import build_optimizer, model_loss, seed_everything, task_loss
    from .training.run import resolve_config_path

    t0 = time.perf_counter()
    raw = dict(config) if isinstance(config, dict) else load_yaml(resolve_config_path(config))
    cfg = build_config(apply_overrides(raw, overrides or []))
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    data = build_data(cfg.data)
    seed_everything(cfg.train.seed, cfg.train.deterministic)
    model = build_model(cfg.model, data.modalities, data.task)
    lines = [f"config ok: model {cfg.model['name']}, {count_parameters(model):,} parameters; data "
             f"{cfg.data['name']}: {', '.join(f'{m} {s.dim}' + (f'x{s.seq_len}' if s.seq_len else '') for m, s in sorted(data.modalities.items()))}; "
             f"task {data.task.kind}, {data.task.num_classes} classes"]
    optimizer = build_optimizer(model, cfg.train)
    for split in ("train", "valid", "test"):
        ds = {"train": data.train, "valid": data.valid, "test": data.test}[split]
        if ds is None:
            lines.append(f"{split:<6} none")
            continue
        if split == "train":
            model.train()
            batch = next(iter(train_batches(ds, cfg.train.batch_size, seed=cfg.train.seed, epoch=0)), None)
        else:
            model.eval()
            batch = next(iter(eval_batches(ds, cfg.eval.batch_size)), None)
        if batch is None:
            raise UserError(f"smoke: the {split} split has no samples")
        with torch.set_grad_enabled(split == "train"):
            out = model(batch["features"], batch["masks"])
            # training: the loss the loop optimises (aux terms included); evaluation: the task loss
            loss = (model_loss(data.task, cfg.train, out, batch["label"]) if split == "train"
                    else task_loss(data.task, cfg.train, out["logits"], batch["label"]))
        logits = out["logits"]
        if not torch.isfinite(logits).all() or not torch.isfinite(loss):
            raise UserError(f"smoke: non-finite {'logits' if not torch.isfinite(logits).all() else 'loss'} on the "
                            f"first {split} batch (check the data for NaN/inf, or lower train.learning_rate)")
        text = f"{split:<6} batch of {len(batch['ids'])}: logits {list(logits.shape)}, loss {float(loss.detach()):.4f}"
        if split == "train":
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            text += ", backward and one optimizer step ok"
        lines.append(text)
    lines.append(f"smoke check passed in {time.perf_counter() - t0:.1f}s; nothing was written")
    return lines


def load_run(path: str | Path) -> Run:
    """The run in folder ``path`` (finished or not); loads the plugins it recorded."""
    run = Run(Path(path))
    run.plugins  # noqa: B018 -- fail here, naming a missing plugin, rather than on first use
    return run


def evaluate(run: Run | str | Path, split: str = "test") -> dict[str, Any]:
    """Metrics of a run's best checkpoint on ``split`` (``"train"``, ``"valid"`` or ``"test"``).

    Returns:
        ``{metric: value}`` (scalars, and the confusion matrix for multiclass tasks).
    """
    from .training.run import evaluate_run

    return evaluate_run(_as_path(run), split=split)


def predict(run: Run | str | Path, inputs: list[str], out: str | Path, *, top_k: int = 20,
            fmt: str = "csv") -> int:
    """Write the top-``top_k`` classes (names, scores) of every sample in ``inputs`` to ``out``.

    Args:
        run: a run, a run folder, or a model file written by :func:`export` (``.onnx``/``.pt2``).
        inputs: files of the kind the run's dataset reads (globs allowed for shards).
        out: the output file; ``fmt`` is ``"csv"``, ``"jsonl"`` or ``"kaggle"``.

    Returns:
        The number of samples predicted.
    """
    from .serving.predict import predict as _predict

    return _predict(_as_path(run), [str(i) for i in inputs], out, top_k=top_k, fmt=fmt)


def export(run: Run | str | Path, out: str | Path, fmt: str | None = None) -> Path:
    """Export a run's best model for serving.

    Args:
        out: the file to write; its suffix picks the format unless ``fmt`` is given.
        fmt: ``"pt2"`` (``torch.export`` ExportedProgram) or ``"onnx"``.

    Returns:
        The written file.
    """
    from .serving.export import export_run

    return Path(export_run(_as_path(run), fmt=fmt, out=out))


def compare(configs: list[str] | str | None = None, *, seeds: int | None = None, out: str | Path | None = None,
            overrides: list[str] | None = None, jobs: int | None = None, reference: str | None = None) -> Comparison:
    """Train (or reuse) every run of a comparison under identical data, splits and seeds, and render
    its report.

    Args:
        configs: comparison presets (``"mosi-words"``, ``"mosi"``, ``"synthetic"``, ...; ``modalfuse
            list presets``) and/or training configs; default ``"mosi-words"``, as ``modalfuse compare``.
        seeds: seeds per model (default: the preset's).
        out: the comparison folder (default ``runs/compare-<name>``).
        overrides: ``"a.b=c"`` applied to every run.
        jobs: runs trained at once, each in its own process (default: one per CPU core this
            process may use, as ``modalfuse compare --jobs auto``).
        reference: the model every other is compared with in the report (default: the best
            unimodal model).

    Returns:
        The ``Comparison`` (runs, summary rows, report path).
    """
    from .comparison import compare as _compare

    if isinstance(configs, str):
        configs = [configs]
    return Comparison(Path(_compare(list(configs or []), seeds=seeds, out=None if out is None else str(out),
                                    overrides=overrides, jobs=jobs, reference=reference)))


__all__ = ["Run", "Comparison", "train", "smoke", "load_run", "evaluate", "predict", "export", "compare"]
