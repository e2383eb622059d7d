"""``modalfuse analyze RUN``: per-run analysis written beside a finished run as ``analysis.json``, so
reports read files only (``compare`` runs it after training each run).

Three parts, all on the run's best checkpoint:

- ``efficiency``: parameters, FLOPs per sample (``torch.utils.flop_counter``: matmul/conv FLOPs,
  2 per multiply-add), inference samples/s at batch 256 (median of 7 timed rounds, each round's
  rate in ``inference_samples_per_s_rounds``), and peak memory of one forward pass.
- ``ablation``: the evaluation split's metrics with every modality and with each one missing (its
  encoder state zeroed: ``models/missing.py``, the meaning modality dropout and robustness use).
- ``attention``: for models that return ``"attention"``, the weight each modality receives,
  averaged per true class (multiclass), per frequent label (multilabel) or per label sign
  (regression).
"""

from __future__ import annotations

import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .errors import UserError
from .training.runfolder import COMPLETE, PREDICTIONS, RunFolder

INFERENCE_BATCH = 256
THROUGHPUT_ROUNDS = 7  # timed rounds per run: the median is reported, with the rounds' spread
MAX_LABELS = 8  # multilabel attention: the most frequent labels only


# ---------------------------------------------------------------------------------------------
# Efficiency
# ---------------------------------------------------------------------------------------------

def _example_batch(ds: Any, size: int, device: torch.device) -> dict[str, Any]:
    """``size`` samples from ``ds`` (repeated when the split is smaller), on ``device``."""
    from .datasets.loader import eval_batches, move_batch

    parts = []
    for batch in eval_batches(ds, size):
        parts.append(batch)
        if sum(len(b["ids"]) for b in parts) >= size:
            break
    feats = {m: torch.cat([b["features"][m] for b in parts]) for m in parts[0]["features"]}
    masks = {m: torch.cat([b["masks"][m] for b in parts]) for m in parts[0]["masks"]}
    n = next(iter(feats.values())).shape[0]
    index = torch.arange(size) % n
    batch = {"features": {m: v[index] for m, v in feats.items()}, "masks": {m: v[index] for m, v in masks.items()},
             "label": torch.zeros(size), "ids": [str(i) for i in range(size)]}
    return move_batch(batch, device)


class _PeakTensorMemory(torch.utils._python_dispatch.TorchDispatchMode):
    """Peak bytes of tensors created while active (CPU has no allocator statistics like CUDA's
    ``max_memory_allocated``, and ``tracemalloc`` does not see torch's allocations)."""

    def __init__(self, existing: list[Tensor]) -> None:
        super().__init__()
        self.current = self.peak = 0
        self._live: set[int] = {t.untyped_storage().data_ptr() for t in existing}

    def _free(self, key: int, nbytes: int) -> None:
        self._live.discard(key)
        self.current -= nbytes

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, Tensor):
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key in self._live or storage.nbytes() == 0:
                    continue  # a view of a live tensor (or of a parameter): no new memory
                self._live.add(key)
                self.current += storage.nbytes()
                self.peak = max(self.peak, self.current)
                weakref.finalize(storage, self._free, key, storage.nbytes())
        return out


def _tensor_bytes(tensors: list[Tensor]) -> int:
    seen: dict[int, int] = {}
    for t in tensors:
        s = t.untyped_storage()
        seen[s.data_ptr()] = s.nbytes()
    return sum(seen.values())


@torch.no_grad()
def efficiency(model: nn.Module, ds: Any, device: torch.device, *, batch_size: int = INFERENCE_BATCH,
               min_seconds: float = 0.2) -> dict[str, Any]:
    """Parameters, FLOPs per sample, inference samples/s and peak memory at ``batch_size``.

    The batch is drawn from ``ds`` (repeated when it is smaller than ``batch_size``).
    """
    from torch.utils.flop_counter import FlopCounterMode

    from .models import count_parameters

    model.eval()
    batch = _example_batch(ds, batch_size, device)
    feats, masks = batch["features"], batch["masks"]
    with FlopCounterMode(display=False) as counter:
        model(feats, masks)
    flops = counter.get_total_flops() / batch_size

    # --- throughput: warm up, then REPEATS timed rounds; a round's rate is its fastest batch. On a
    # shared machine a batch is only ever slowed down by others (timeit's argument for the minimum);
    # the spread over rounds is reported so a reader sees how much of a difference is timing noise.
    for _ in range(2):
        model(feats, masks)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rounds: list[float] = []
    for _ in range(THROUGHPUT_ROUNDS):
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < 3 or (time.perf_counter() - start < min_seconds / THROUGHPUT_ROUNDS and len(times) < 50):
            sync()
            t0 = time.perf_counter()
            model(feats, masks)
            sync()
            times.append(time.perf_counter() - t0)
        rounds.append(batch_size / min(times))
    samples_per_s = float(np.median(rounds))

    # --- peak memory of one forward pass: weights + inputs + the largest set of live activations --
    inputs = [*feats.values(), *masks.values()]
    weights = [*model.parameters(), *model.buffers()]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        model(feats, masks)
        peak = torch.cuda.max_memory_allocated(device) - base + _tensor_bytes(weights + inputs)
        method = "torch.cuda.max_memory_allocated"
    else:
        tracker = _PeakTensorMemory(weights + inputs)
        with tracker:
            out = model(feats, masks)
        del out
        peak = tracker.peak + _tensor_bytes(weights + inputs)
        method = "live tensor storage, counted by a torch dispatch mode"
    return {
        "parameters": count_parameters(model), "flops_per_sample": float(flops),
        "inference_samples_per_s": samples_per_s, "inference_samples_per_s_rounds": rounds,
        "inference_batch_size": batch_size,
        "peak_memory_mb": peak / 2**20, "peak_memory_method": method, "device": str(device),
    }


# ---------------------------------------------------------------------------------------------
# Modality ablation and attention
# ---------------------------------------------------------------------------------------------

def ablation(model: nn.Module, ds: Any, data: Any, cfg: Any, device: torch.device) -> dict[str, Any]:
    """Scalar metrics of ``ds`` as is (``full``) and with each modality missing for every sample
    (``zeroed[m]``: its encoder state zeroed, ``models.missing``, as modality dropout and robustness)."""
    from .models.missing import missing_modalities
    from .training.loop import predict_split, scalars, split_metrics

    def metrics(modality: str | None) -> dict[str, float]:
        with missing_modalities(model, {modality: False} if modality else {}) as on_inputs:
            pred = predict_split(model, ds, data.task, batch_size=cfg.eval.batch_size, device=device,
                                 top_k=cfg.eval.top_k, threshold=cfg.eval.threshold,
                                 transform=on_inputs if modality else None)
        return scalars(split_metrics(data.task, pred, cfg))

    return {"full": metrics(None), "zeroed": {m: metrics(m) for m in sorted(data.modalities)}}


def _membership(task: Any, labels: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The groups attention is averaged over, and a batch's rows in each: ``(names [G], bool [B, G])``
    per class (multiclass), per label (multilabel: a video is in every group of its labels) or per
    label sign (regression)."""
    if task.kind == "multiclass":
        names = task.class_names or [str(c) for c in range(task.num_classes)]
        return [str(n) for n in names], labels.reshape(-1)[:, None] == np.arange(task.num_classes)
    if task.kind == "multilabel":
        names = task.class_names or [str(c) for c in range(labels.shape[1])]
        return [str(n) for n in names], labels > 0.5
    # regression (sentiment): the report's 3-class band (acc3_band), so both read the same classes
    from .stats.weighted import NEUTRAL_BAND, band_classes

    names = [f"negative (< -{NEUTRAL_BAND})", f"neutral (|label| <= {NEUTRAL_BAND})", f"positive (> {NEUTRAL_BAND})"]
    return names, band_classes(labels.reshape(-1))[:, None] == np.arange(3)


class GroupMeans:
    """Attention weights ``[B, K]`` summed per group batch by batch (``[G, K]`` sums, ``[G]`` counts):
    memory independent of the split's size (no ``[N, C]`` labels are kept, YouTube-8M's 3,862 included)."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.names: list[str] = []
        self.sums = self.counts = self.total = None
        self.n = 0

    def add(self, w: np.ndarray, labels: np.ndarray) -> None:
        self.names, member = _membership(self.task, labels)
        m = member.astype(np.float64)
        if self.sums is None:
            self.sums, self.counts, self.total = np.zeros((m.shape[1], w.shape[1])), np.zeros(m.shape[1]), np.zeros(w.shape[1])
        self.sums += m.T @ w
        self.counts += m.sum(0)
        self.total += w.sum(0)
        self.n += len(w)

    def summary(self) -> list[tuple[str, int, list[float]]]:
        """``(group, count, mean weights [K])`` of every group with a sample; multilabel: the
        ``MAX_LABELS`` most frequent labels only."""
        order = np.arange(len(self.counts))
        if self.task.kind == "multilabel":
            order = np.argsort(-self.counts, kind="stable")[:MAX_LABELS]
        return [(self.names[g], int(self.counts[g]), (self.sums[g] / self.counts[g]).tolist()) for g in order if self.counts[g] > 0]


@torch.no_grad()
def attention(model: nn.Module, ds: Any, data: Any, cfg: Any, device: torch.device) -> dict[str, Any] | None:
    """Attention weight per modality averaged per group of samples, or ``None`` when the model
    returns no ``"attention"``. Weights ``[B, ..., K]`` are averaged over the middle axes to
    ``[B, K]``: what each of the ``K`` keys (modalities) receives."""
    from .datasets.loader import eval_batches, move_batch

    model.eval()
    means = GroupMeans(data.task)
    for batch in eval_batches(ds, cfg.eval.batch_size):
        batch = move_batch(batch, device)
        att = model(batch["features"], batch["masks"]).get("attention")
        if not isinstance(att, Tensor):
            return None
        att = att.float()
        w = (att.flatten(1, -2).mean(1) if att.dim() > 2 else att.reshape(att.shape[0], -1)).cpu().numpy()
        means.add(w.astype(np.float64), batch["label"].cpu().numpy())
    if not means.n:
        return None
    modalities = getattr(model, "modalities", None) or sorted(data.modalities)
    k = len(means.total)
    keys = list(modalities) if len(modalities) == k else [f"key {i}" for i in range(k)]
    groups = means.summary()
    return {
        "keys": keys, "groups": [g for g, _, _ in groups], "counts": [c for _, c, _ in groups],
        "weights": [w for _, _, w in groups], "overall": (means.total / means.n).tolist(),
    }


# ---------------------------------------------------------------------------------------------
# The analysis file
# ---------------------------------------------------------------------------------------------

def save_run_predictions(run: RunFolder, cfg: Any, model: nn.Module, data: Any, device: torch.device) -> None:
    """Write ``predictions.npz`` of a run trained before the training loop wrote it, as the loop
    writes it (``final_predictions`` of the loaded checkpoint)."""
    from .training.loop import final_predictions, save_final_predictions

    save_final_predictions(run, data, cfg, final_predictions(model, data, cfg, device=device))


def analyze_run(run_dir: str | Path, *, data: Any = None, device: str | None = None,
                min_seconds: float = 0.2) -> dict[str, Any]:
    """Analyse a finished run's best checkpoint and write ``analysis.json`` atomically (and
    ``predictions.npz`` when the run has none).

    Args:
        run_dir: a finished run folder (``metrics.json`` and ``checkpoints/best.pt``).
        data: the run's ``DataBundle`` when already built (saves rebuilding it per run).
        device: ``cpu``/``cuda``; default: the run's ``train.device`` (``auto``: CUDA when present).
        min_seconds: how long to time inference for samples/s.
    """
    from . import plugins
    from .training.run import load_run

    run = RunFolder(run_dir)
    if not run.is_finished():
        raise UserError(f"{run_dir}: not a finished run folder (no {COMPLETE}); analyse runs that finished training")
    plugins.require_run(run_dir)  # a run trained with plugins names their entries in its config
    cfg, model, data = load_run(run_dir, device="cpu", data=data)  # the config is validated once, here
    want = device or cfg.train.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(want)
    model.to(dev)
    if not run.has(PREDICTIONS):  # a run trained before the loop saved them
        save_run_predictions(run, cfg, model, data, dev)
    split = "test" if data.test is not None else "valid"
    ds = data.split(split)
    result = {
        "split": split,
        "efficiency": efficiency(model, ds, dev, min_seconds=min_seconds),
        "ablation": ablation(model, ds, data, cfg, dev),
        "attention": attention(model, ds, data, cfg, dev),
    }
    run.write_analysis(result)
    return result
