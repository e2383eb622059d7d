"""The evaluation pass: every run's best checkpoint on the test split under each corruption, each
modality (and all at once) and each level.

Batches are fixed here (one batch size for every model, read once and kept on the device), and
every corruption draws per (seed, corruption, modality, batch) (``corruptions.Draws``): all models
see exactly the same corrupted inputs, so their curves are paired example by example.

``missing`` zeroes the modality's encoder state per sample (``models.missing.missing_modalities``):
the one meaning of a missing modality, also that of ``model.modality_dropout`` and of the ablation,
so a model trained with modality dropout is tested against what it was trained for.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import UserError
from ..models.missing import missing_modalities
from ..stats.predictions import compact
from ..training.runfolder import RunFolder
from .corruptions import ALL, CORRUPTIONS, Corruption, Draws, default_corruptions


@dataclass(frozen=True)
class Point:
    """One point of one curve: a corruption at a level on one modality (or ``all``)."""

    corruption: str
    modality: str
    level: float


def model_modalities(model: nn.Module, data_modalities: list[str]) -> list[str]:
    """The modalities a model reads (``model.modalities``; all of the data's otherwise)."""
    return list(getattr(model, "modalities", None) or data_modalities)


@torch.no_grad()
def predict_point(model: nn.Module, batches: list[dict[str, Any]], task: Any, c: Corruption | None,
                  modalities: list[str], level: float, *, seed: int, std: dict[str, Tensor],
                  precision: str = "fp32", top_k: int = 20, threshold: float = 0.5) -> dict[str, Any]:
    """Predictions of the whole split with ``c`` at ``level`` on ``modalities`` (``c=None``: intact).

    Returns:
        What ``training.loop.predict_split`` returns: scores, labels and ids, or for a multilabel
        task each example's top entries only (``training.evaluation``; ``top_k``/``threshold`` are
        ``eval.top_k``/``eval.threshold``), so no ``[N, C]`` scores are held.
    """
    from ..training.evaluation import collector, merged
    from ..training.loop import autocast, to_scores

    model.eval()
    kept = collector(task.kind, task.num_classes, top_k=top_k, threshold=threshold)
    for b, batch in enumerate(batches):
        feats, masks = dict(batch["features"]), dict(batch["masks"])
        keep: dict[str, Tensor] = {}
        if c is not None and level != c.clean:
            for m in modalities:
                draws = Draws(seed, c.name, m, b, feats[m].device)
                if c.where == "state":
                    keep[m] = draws("uniform", (feats[m].shape[0],)) >= level
                else:
                    feats[m], mask = c.apply(feats[m], masks.get(m), level, draws, std[m])
                    if mask is not None:
                        masks[m] = mask
        device = next(iter(feats.values())).device
        with missing_modalities(model, keep) as on_inputs, autocast(device, precision):
            out = model(on_inputs(feats), masks)
        kept.add(to_scores(task, out["logits"].float()).cpu().numpy(), batch["label"].cpu().numpy(), batch["ids"])
    return merged([kept])


def _targets(c: Corruption, modality: str, specs: dict[str, Any], run: str, explicit: bool) -> list[str]:
    """The modalities one point corrupts; errors for a modality the data lacks or cannot take."""
    names = sorted(specs)
    if modality != ALL and modality not in specs:
        raise UserError(f"{run}: the run's data has no modality '{modality}'; it has {', '.join(names)} (or 'all')")
    want = names if modality == ALL else [modality]
    ok = [m for m in want if c.needs == "any" or specs[m].seq_len is not None]
    if not ok and explicit and modality != ALL:
        raise UserError(f"{run}: '{c.name}' needs a sequence modality; '{modality}' is one vector per sample")
    return ok


class Plan:
    """What to evaluate: corruptions with their levels, and the modalities (names or ``all``)."""

    def __init__(self, corruptions: list[tuple[Corruption, list[float]]] | None, modalities: list[str] | None) -> None:
        self.corruptions = corruptions
        self.modalities = modalities

    def resolve(self, specs: dict[str, Any], dataset: str, run: str) -> list[tuple[Corruption, str, list[str], list[float]]]:
        """``(corruption, modality, targets, levels)`` per curve for data with modality ``specs``."""
        explicit = self.corruptions is not None
        if self.corruptions is None:
            seq = any(s.seq_len is not None for s in specs.values())
            chosen = [(CORRUPTIONS[n], list(CORRUPTIONS[n].levels)) for n in default_corruptions(seq, dataset)]
        else:
            chosen = self.corruptions
        mods = self.modalities or [*sorted(specs), ALL]
        curves = []
        for c, levels in chosen:
            if c.name == "shift":
                # a shift must leave at least one step of content
                longest = min((s.seq_len for s in specs.values() if s.seq_len), default=1)
                bad = [lv for lv in levels if lv > longest - 1]
                if not explicit:
                    levels, bad = [lv for lv in levels if lv <= longest - 1], []
                if bad:
                    raise UserError(f"--corruption shift: level {bad[0]:g} is out of range for this data; "
                                    f"expected at most {longest - 1} steps (sequences of {longest})")
            for m in mods:
                targets = _targets(c, m, specs, run, explicit)
                if targets:
                    curves.append((c, m, targets, levels))
        if not curves:
            raise UserError(f"{run}: none of the requested corruptions applies to this data's modalities")
        return curves


@dataclass
class RunResult:
    """One run's predictions at every point, compacted as ``predictions.npz`` keeps them."""

    label: str
    seed: int
    folder: Path
    kind: str
    points: dict[Point, dict[str, np.ndarray]]
    ids: np.ndarray
    train_seconds: float
    monitor: str


def _device(name: str | None) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def evaluate_runs(runs: list[tuple[str, int, Path]], plan: Plan, *, seed: int = 0, batch_size: int = 1024,
                  device: str | None = None, log: Any = None) -> tuple[list[RunResult], dict[str, Any]]:
    """Evaluate every run at every point of ``plan``.

    Args:
        runs: ``(label, seed, folder)`` of finished runs.
        plan: corruptions, levels, modalities.
        seed: the corruption seed (the same draws for every model).
        batch_size: evaluation batch (fixed for every model: the draws are per batch).
        device: ``cpu``/``cuda``; default CUDA when present.

    Returns:
        The results per run, and ``{"curves": [...], "seconds": ...}`` for ``robustness.json``.
    """
    from ..datasets import build_data
    from ..datasets.loader import eval_batches, move_batch
    from ..training.run import read_checkpoint, restore_model
    from .augment import feature_std

    dev = _device(device)
    cache: dict[str, Any] = {}  # data config -> (data, batches, std)
    results: list[RunResult] = []
    curves_info: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    first_ids: tuple[Path, np.ndarray] | None = None
    for label, run_seed, folder in runs:
        cfg, ck = read_checkpoint(folder, device=dev)
        key = json.dumps(cfg.data, sort_keys=True, default=str)
        if key not in cache:
            data = build_data(cfg.data)
            ds = data.test if data.test is not None else data.valid
            batches = [move_batch(b, dev) for b in eval_batches(ds, batch_size)]
            curves = plan.resolve(data.modalities, str(cfg.data.get("name")), str(folder))
            needs_std = any(c.name == "noise" for c, *_ in curves)
            cache[key] = (data, batches, feature_std(data.train, dev) if needs_std else {}, curves)
        data, batches, std, curves = cache[key]
        ids = np.asarray([i for b in batches for i in b["ids"]], dtype=np.str_)
        if first_ids is None:
            first_ids = (folder, ids)
            curves_info = [{"corruption": c.name, "modality": m, "targets": t, "levels": lv} for c, m, t, lv in curves]
        elif len(ids) != len(first_ids[1]) or not np.array_equal(ids, first_ids[1]):
            raise UserError(f"{folder}: its {len(ids)} test examples differ from those of {first_ids[0]} "
                            f"({len(first_ids[1])}); robustness curves are paired: runs must share their test split")
        model = restore_model(cfg, ck, data.modalities, data.task, dev)
        reads = set(model_modalities(model, sorted(data.modalities)))
        kind = data.task.kind
        pack = lambda pred: compact(kind, pred, top_k=cfg.eval.top_k, threshold=cfg.eval.threshold)
        point_kw = {"seed": seed, "std": std, "precision": cfg.train.precision, "top_k": cfg.eval.top_k,
                    "threshold": cfg.eval.threshold}
        clean = pack(predict_point(model, batches, data.task, None, [], 0.0, **point_kw))
        points: dict[Point, dict[str, np.ndarray]] = {}
        for c, m, targets, levels in curves:
            for level in levels:
                point = Point(c.name, m, level)
                if level == c.clean or not reads & set(targets):
                    points[point] = clean  # intact, or only modalities this model does not read
                    continue
                points[point] = pack(predict_point(model, batches, data.task, c, targets, level, **point_kw))
        run_info = RunFolder(folder).read_completion() or {}
        results.append(RunResult(label, run_seed, folder, kind, points, ids, float(run_info.get("train_seconds") or 0.0),
                                 str(run_info.get("monitor") or "")))
        if log:
            log(f"{folder.name}: {len(points)} points")
        del model
    return results, {"curves": curves_info, "seconds": time.perf_counter() - t0, "device": str(dev),
                     "batch_size": batch_size, "seed": seed}
