"""``modalfuse predict``: a run's best model on new input files -> top-k classes with names, per sample.

The model is rebuilt from the run folder alone (``config.yaml`` / the checkpoint's config and
``data.json``: modalities, task, class names), so predicting never needs the training data. The
inputs are read with the run's own dataset type and parameters, only the file locations replaced:

- ``yt8m``: TFRecord shards (``train``/``valid``/``test`` all set to the inputs);
- datasets with one ``path`` (``packed``, ``mmsa``, ``mult``) and the bundled ``mosi`` (a packed
  file): each input file in turn, every split; features are z-scored with the run's own training
  statistics (kept in ``data.json``), never the input's;
- datasets that read no files (``synthetic``) or several files per sample (``cmu-sdk``): a
  ``UserError`` that says so.

Output formats: ``csv`` (``id,rank,class,name,score``, one row per prediction), ``jsonl`` (one object
per sample) and ``kaggle`` (``VideoId,LabelConfidencePairs``: "class score class score ..."). The file
is written to a temporary name and renamed, so a failed run never leaves half a file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..datasets.base import ModalitySpec, TaskSpec
from ..errors import DataError, UserError

FORMATS = ("csv", "jsonl", "kaggle")


def _input_sections(data: dict[str, Any], inputs: list[str]) -> list[tuple[str, dict[str, Any], list[str]]]:
    """``(description, data section, splits to read)`` for each read of the inputs."""
    from ..registry import DATASETS

    name = data["name"]
    fields = DATASETS.info(name)["params"].model_fields
    missing = [p for p in inputs if not any(Path(x).exists() for x in _expand(p))]
    if missing:
        raise UserError(f"--input {missing[0]}: file not found")
    # Each file must be of a format the run's dataset reads: say what the file is and what the model
    # reads, rather than failing somewhere inside the wrong reader.
    from ..readers.registry import check_input, formats_read_by

    reader_dataset = "packed" if name == "mosi" else name
    if formats_read_by(reader_dataset):  # datasets that read no files get the message below
        for pattern in inputs:
            for path in _expand(pattern):
                check_input(path, reader_dataset)
    if {"train", "valid", "test"} <= set(fields):  # shard globs per split (yt8m)
        joined = ",".join(inputs)
        return [(joined, {**data, "train": joined, "valid": joined, "test": joined}, ["test"])]
    if "path" in fields or name == "mosi":
        # The bundled ``mosi`` is a packed dataset: new inputs are packed files of the same features.
        base = {**data, "name": "packed"} if name == "mosi" else dict(data)
        # Features are scaled with the run's own training statistics (applied by ``predict``).
        base["normalize"] = False
        return [(p, {**base, "path": p}, ["train", "valid", "test"]) for p in inputs]
    raise UserError(
        f"predict: the run's dataset '{name}' does not read input files that predict can replace "
        f"(supported: datasets with train/valid/test shard globs such as yt8m, or one 'path' such as "
        f"packed, mmsa, mult)"
    )


def _expand(pattern: str) -> list[str]:
    import glob

    return sorted(glob.glob(pattern)) or [pattern]


def _scores(task: TaskSpec, logits: torch.Tensor) -> torch.Tensor:
    """Probabilities per class: sigmoid (multi-label), softmax (multi-class); the value (regression)."""
    if task.kind == "multilabel":
        return torch.sigmoid(logits.float())
    if task.kind == "multiclass":
        return torch.softmax(logits.float(), dim=-1)
    return logits.float().reshape(-1, 1)


def _check_modalities(where: str, want: dict[str, ModalitySpec], got: dict[str, ModalitySpec]) -> None:
    for m, spec in sorted(want.items()):
        if m not in got:
            raise UserError(f"{where}: the model needs modality '{m}', the inputs hold {', '.join(sorted(got))}")
        if got[m].dim != spec.dim:
            raise UserError(f"{where}: modality '{m}' has {got[m].dim} features, the model was trained on "
                            f"{spec.dim} (e.g. mean-only vs mean+std YouTube-8M features)")


def predict(run_dir: str | Path, inputs: list[str], out: str | Path, *, top_k: int = 20, fmt: str = "csv",
            batch_size: int = 256) -> int:
    """Write the top-``top_k`` classes of every sample in ``inputs`` to ``out``.

    Args:
        run_dir: a finished run folder, or a ``.pt2``/``.onnx`` file written by ``modalfuse export``.
        inputs: files of the kind the run's dataset reads (globs allowed for shards).
        out: output file (written atomically).
        top_k: classes per sample (capped at the number of classes; 1 for regression).
        fmt: ``csv``, ``jsonl`` or ``kaggle``.

    Returns:
        The number of samples predicted.
    """
    from .. import plugins
    from ..config import build_config
    from ..training.runfolder import atomic_write_text

    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    if top_k < 1:
        raise UserError(f"--top-k {top_k}: expected a positive number")
    plugins.load()
    run_dir = Path(run_dir)
    forward, modalities, task, raw, normalization = _load_scorer(run_dir)
    cfg = build_config(raw)
    k = 1 if task.kind == "regression" else min(top_k, task.num_classes)
    rows = _predict_rows(run_dir, cfg, [str(p) for p in inputs], forward, modalities, task, normalization, k,
                         batch_size)
    text = _format(rows, task, fmt)
    out = Path(out)
    if out.parent and not out.parent.exists():
        raise UserError(f"--out {out}: folder {out.parent} does not exist")
    atomic_write_text(out, text)
    return len(rows)


def _load_scorer(run_dir: Path) -> tuple[Any, dict[str, ModalitySpec], TaskSpec, dict[str, Any], dict[str, Any] | None]:
    """``(forward(features, masks) -> logits, modalities, task, raw config, normalization)`` of a run
    folder or of a model from ``modalfuse export`` (onnxruntime or torch.export)."""
    from .. import plugins

    if run_dir.suffix in (".onnx", ".pt2"):
        from .export import load_exported

        scorer = load_exported(run_dir)
        for module in scorer.meta.get("plugins") or []:  # the run's plugins: its config names their entries
            plugins.import_plugin(module, source=f"{run_dir} (exported from a run trained with plugin '{module}')")
        if "config" not in scorer.meta:
            raise UserError(f"{run_dir}: no run config in its metadata; export it with `modalfuse export RUN_DIR`")
        raw, t = scorer.meta["config"], scorer.meta["task"]
        modalities = {m: ModalitySpec(int(v["dim"]), v.get("seq_len")) for m, v in scorer.meta["modalities"].items()}
        task = TaskSpec(t["kind"], int(t["num_classes"]), tuple(scorer.class_names) if scorer.class_names else None)
        forward = lambda feats, masks: torch.from_numpy(scorer(feats, masks))  # noqa: E731
        return forward, modalities, task, raw, scorer.meta.get("normalization")
    from ..training.runfolder import RunFolder
    from .export import load_run_model

    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: predict reads a run folder or an exported .pt2/.onnx model")
    model, modalities, task, raw = load_run_model(run_dir)
    forward = lambda feats, masks: model(feats, masks)["logits"]  # noqa: E731
    return forward, modalities, task, raw, RunFolder(run_dir).read_normalization()


def _predict_rows(run_dir: Path, cfg: Any, inputs: list[str], forward: Any, modalities: dict[str, ModalitySpec],
                  task: TaskSpec, normalization: dict[str, Any] | None, k: int,
                  batch_size: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(id, class indices [k], scores [k])`` of every sample of every input, in input order.

    Raises:
        DataError: an id that occurs twice (its rows could not be told apart in the output).
    """
    from ..datasets import build_data
    from ..datasets.loader import eval_batches

    rows: list[tuple[str, np.ndarray, np.ndarray]] = []
    seen: dict[str, str] = {}  # id -> the input it came from
    for where, section, splits in _input_sections(cfg.data, inputs):
        if cfg.data.get("normalize") and not normalization and section.get("normalize") is False:
            raise UserError(f"{run_dir}: the run z-scored its features but kept no statistics (trained by "
                            f"an older modalfuse); retrain it to predict on new files")
        bundle = build_data(section)
        _check_modalities(where, modalities, bundle.modalities)
        for split in splits:
            ds = {"train": bundle.train, "valid": bundle.valid, "test": bundle.test}[split]
            if ds is None:
                continue
            if normalization and section.get("normalize") is False:
                from ..datasets.sentiment import apply_normalization

                apply_normalization(ds, normalization)
            with torch.no_grad():
                for batch in eval_batches(ds, batch_size):
                    s = _scores(task, forward(batch["features"], batch["masks"]))
                    val, idx = torch.topk(s, k, dim=-1) if task.kind != "regression" else (s, torch.zeros_like(s, dtype=torch.long))
                    for vid, i, v in zip(batch["ids"], idx.numpy(), val.numpy()):
                        # the splits of one input are disjoint, so a repeat is a repeated record
                        if vid in seen:
                            raise DataError(f"--input {where}: id '{vid}' occurs more than once (in "
                                            f"{seen[vid]} and {where}); each sample needs its own id")
                        seen[vid] = where
                        rows.append((str(vid), i, v))
    return rows


def _format(rows: list[tuple[str, np.ndarray, np.ndarray]], task: TaskSpec, fmt: str) -> str:
    """The output file's text: ``kaggle`` (the competition's submission format), ``csv`` or ``jsonl``."""
    names = task.class_names

    def label(i: int) -> str:
        if task.kind == "regression":
            return "score"
        return names[i] if names and i < len(names) else str(i)

    buf = io.StringIO()
    if fmt == "kaggle":
        buf.write("VideoId,LabelConfidencePairs\n")
        for vid, idx, val in rows:
            buf.write(vid + "," + " ".join(f"{int(i)} {float(v):.6f}" for i, v in zip(idx, val)) + "\n")
    elif fmt == "csv":
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["id", "rank", "class", "name", "score"])
        for vid, idx, val in rows:
            for r, (i, v) in enumerate(zip(idx, val), 1):
                w.writerow([vid, r, "" if task.kind == "regression" else int(i), label(int(i)), f"{float(v):.6f}"])
    else:
        for vid, idx, val in rows:
            preds = [{"class": None if task.kind == "regression" else int(i), "name": label(int(i)),
                      "score": round(float(v), 6)} for i, v in zip(idx, val)]
            buf.write(json.dumps({"id": vid, "predictions": preds}) + "\n")
    return buf.getvalue()
