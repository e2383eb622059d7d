"""The training loop: one explicit function, ``fit``, phases marked by comments.

Per epoch: train on shuffled batches -> evaluate on the validation split -> log a line to
``metrics.jsonl`` -> write ``last`` (and ``best``) checkpoints -> early-stop check. At the end the
best checkpoint is evaluated on every split in ``eval.splits`` and ``metrics.json`` is written.
SIGINT/SIGTERM save a resumable checkpoint at the next step boundary; a non-finite loss stops the run
and keeps the last good checkpoint.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Config, TrainConfig
from ..datasets.base import BatchStream, DataBundle, TaskSpec
from ..datasets.loader import eval_batches, move_batch, num_train_batches, train_batches
from ..errors import UserError
from ..metrics import DEFAULT_MONITOR, compute_metrics, is_better
from ..robustness.augment import build_augment
from ..stats.predictions import split_labels
from . import distributed, evaluation
from .ema import build_ema, evaluated
from .loggers import Trackers
from .runfolder import CONFIG, RunFolder, nonfinite_parameters, rng_state, set_rng_state


class TrainingStopped(UserError):
    """The run stopped early: interrupted (resumable) or diverged (non-finite loss)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


LOG_EVERY_SECONDS = 60.0  # in-epoch progress lines when there is no progress bar
# Steps between reads of the loss from the device (and, under torchrun, between stop-flag checks).
SYNC_EVERY = 50


# ---------------------------------------------------------------------------------------------
# Pieces the loop is built from
# ---------------------------------------------------------------------------------------------

def task_loss(task: TaskSpec, cfg: TrainConfig, logits: Tensor, label: Tensor) -> Tensor:
    """Cross-entropy (multiclass), BCE over multi-hot labels (multilabel), L1/MSE (regression)."""
    kind = cfg.loss if cfg.loss != "auto" else {"multiclass": "cross_entropy", "multilabel": "bce", "regression": "l1"}[task.kind]
    logits = logits.float()
    if kind == "cross_entropy":
        return F.cross_entropy(logits, label.long(), label_smoothing=cfg.label_smoothing)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, label.float())
    pred = logits.reshape(-1)
    return F.l1_loss(pred, label.float()) if kind == "l1" else F.mse_loss(pred, label.float())


def model_loss(task: TaskSpec, cfg: TrainConfig, out: dict[str, Any], label: Tensor) -> Tensor:
    """The task loss on ``logits`` when they carry gradients, plus one term per ``aux_logits`` entry
    (decision-level fusion trains each modality's classifier with its own loss)."""
    terms = [task_loss(task, cfg, out["logits"], label)] if out["logits"].requires_grad else []
    aux = out.get("aux_logits") or {}
    terms += [task_loss(task, cfg, a, label) for a in (aux.values() if isinstance(aux, dict) else aux)]
    return torch.stack(terms).sum()


def to_scores(task: TaskSpec, logits: Tensor) -> Tensor:
    """What metrics read: logits (multiclass), probabilities (multilabel), predictions (regression)."""
    if task.kind == "multilabel":
        return torch.sigmoid(logits.float())
    if task.kind == "regression":
        return logits.float().reshape(-1)
    return logits.float()


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on biases and norm parameters (the usual AdamW practice).
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    # The fused kernel updates every parameter in one pass; on 2 CPU cores it made the AdamW step
    # of paper-size fc-late 7.5x faster than the default multi-tensor path (bench/optimizer_step.py),
    # and that step bounds the step time of the wide FC baselines.
    params = decay + no_decay
    fused = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return cls(groups, lr=cfg.learning_rate, fused=fused or None)


def build_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step multiplier: linear warmup, then constant / cosine to zero / step decay."""
    warmup = cfg.warmup_epochs * steps_per_epoch
    total = cfg.epochs * steps_per_epoch

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "cosine":
            progress = (step - warmup) / max(1.0, total - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        if cfg.schedule == "step":
            return cfg.gamma ** (step // (cfg.step_size * steps_per_epoch))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def seed_everything(seed: int, deterministic: bool) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


@torch.no_grad()
def predict_split(model: nn.Module, ds: Any, task: TaskSpec, *, batch_size: int, device: torch.device,
                  precision: str = "fp32", d: distributed.Dist = distributed.Dist(),
                  num_workers: int = 0, transform: Any = None, top_k: int = 20,
                  threshold: float = 0.5) -> dict[str, Any] | None:
    """A whole split's predictions, gathered on rank 0 (``None`` on other ranks): scores, labels and
    ids, or for a multilabel task each example's top entries only (``training.evaluation``;
    ``top_k``/``threshold`` are ``eval.top_k``/``eval.threshold``).

    ``transform(features)`` may edit the inputs first (modality ablation zeroes one modality).
    """
    model.eval()
    kept = evaluation.collector(task.kind, task.num_classes, top_k=top_k, threshold=threshold)
    for batch in eval_batches(ds, batch_size, rank=d.rank, world_size=d.world_size, num_workers=num_workers):
        batch = move_batch(batch, device)
        feats = transform(batch["features"]) if transform else batch["features"]
        with autocast(device, precision):
            out = model(feats, batch["masks"])
        kept.add(to_scores(task, out["logits"].float()).cpu().numpy(), batch["label"].cpu().numpy(), batch["ids"])
    parts = distributed.gather(d, kept)
    return None if parts is None else evaluation.merged(parts)


def split_metrics(task: TaskSpec, pred: dict[str, Any], cfg: Config) -> dict[str, Any]:
    streamed = evaluation.streamed_metrics(pred, cfg.eval.top_k, cfg.eval.threshold)
    if streamed is not None:
        return streamed
    return compute_metrics(task.kind, pred["scores"], pred["labels"], num_classes=task.num_classes,
                           threshold=cfg.eval.threshold, top_k=cfg.eval.top_k)


def final_predictions(model: nn.Module, data: DataBundle, cfg: Config, *, device: torch.device,
                      d: distributed.Dist = distributed.Dist(), precision: str = "fp32",
                      num_workers: int = 0) -> dict[str, dict[str, Any]]:
    """``predict_split`` of every split in ``eval.splits`` that the data has (rank 0; ``{}`` elsewhere)."""
    preds = {}
    for split in cfg.eval.splits:
        ds = data.valid if split == "valid" else data.test
        if ds is None:
            continue
        pred = predict_split(model, ds, data.task, batch_size=cfg.eval.batch_size, device=device,
                             precision=precision, d=d, num_workers=num_workers, top_k=cfg.eval.top_k,
                             threshold=cfg.eval.threshold)
        if pred is not None:
            preds[split] = pred
    return preds


def save_final_predictions(run: RunFolder, data: DataBundle, cfg: Config, preds: dict[str, dict[str, Any]]) -> None:
    """``predictions.npz`` of ``final_predictions``, with the training labels (the label-prior baseline)."""
    run.write_predictions(data.task.kind, preds, top_k=cfg.eval.top_k, threshold=cfg.eval.threshold,
                          train_labels=split_labels(data.train))


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float, np.floating))}


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


# ---------------------------------------------------------------------------------------------
# The loop's state and its named steps
# ---------------------------------------------------------------------------------------------

@dataclass
class _Fit:
    """What the steps of one ``fit`` share: the parts built once at setup, and ``state``, the loop
    state that ``last.pt`` saves and a resume restores."""

    cfg: Config
    data: DataBundle
    run: RunFolder
    d: distributed.Dist
    device: torch.device
    log: Any
    model: nn.Module  # the weights the optimizer trains
    net: nn.Module  # what a step calls: the model, DDP-wrapped and/or compiled
    ema: Any  # train.ema: the weights' moving average (torch AveragedModel), or None
    scored: nn.Module  # what validation, best.pt and the final evaluation see: the model or its average
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    augment: Any  # train.augment: robustness corruptions of training batches, or None
    monitor: str
    per_rank_batch: int
    steps_per_epoch: int
    state: dict[str, Any] = field(default_factory=lambda: {
        "epoch": 0, "step": 0, "best": None, "best_epoch": None, "bad_epochs": 0,
        "loss_sum": 0.0, "loss_count": 0, "seconds": 0.0, "train_seconds": 0.0})


def _setup(cfg: Config, data: DataBundle, model: nn.Module, run: RunFolder, d: distributed.Dist,
           device: torch.device, log: Any) -> _Fit:
    """Seeds, the model on its device (wrapped for DDP / compiled), optimizer, schedule, scaler."""
    tc = cfg.train
    per_rank_batch = max(1, tc.batch_size // d.world_size)  # train.batch_size is the global batch
    if tc.batch_size % d.world_size:
        log(f"note: train.batch_size {tc.batch_size} is not a multiple of {d.world_size} processes; "
            f"the global batch is {per_rank_batch * d.world_size}")
    seed_everything(tc.seed + d.rank, tc.deterministic)
    model.to(device)
    net: nn.Module = model
    if d.enabled:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if tc.compile:
        net = torch.compile(net)
    steps_per_epoch = num_train_batches(data.train, per_rank_batch, d.world_size) or 1
    optimizer = build_optimizer(model, tc)
    scheduler = build_scheduler(optimizer, tc, steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=tc.precision == "fp16")
    augment = build_augment(tc.augment, data, device, tc.seed)
    ema = build_ema(model, tc.ema)
    return _Fit(cfg, data, run, d, device, log, model, net, ema, evaluated(model, ema), optimizer, scheduler, scaler,
                augment, tc.monitor or DEFAULT_MONITOR[data.task.kind], per_rank_batch, steps_per_epoch)


def _checkpoint(f: _Fit, which: str, *, resumable: bool = True) -> None:
    """Called on every rank (each rank's RNG state is kept); only rank 0 writes.

    ``last.pt`` is resumable (optimizer, schedule, RNG and loop state); ``best.pt`` keeps what
    evaluation needs, the weights and the config (the optimizer moments would double its size).
    Non-finite weights are never written: the step that made them stops the run (exit 3) and the
    previous checkpoints stay as they were. Every rank holds the same weights, so every rank
    reaches the same verdict without a collective.
    """
    weights = f.scored.state_dict()
    bad = nonfinite_parameters(weights)
    if bad:
        raise TrainingStopped(f"non-finite weights ({len(bad)} tensors, e.g. '{bad[0]}') after epoch "
                              f"{f.state['epoch']}, step {f.state['step']}: stopped; {_last_good(f, 'written')} "
                              f"(try a lower train.learning_rate)", 3)
    rngs = distributed.gather(f.d, rng_state()) if resumable else None
    if not f.d.is_main:
        return
    if not resumable:
        f.run.save_checkpoint(which, {"model": weights, "config": f.cfg.to_dict(), "epoch": f.state["epoch"]})
        return
    f.run.save_checkpoint(which, {
        "model": f.model.state_dict(), **({"ema": f.ema.state_dict()} if f.ema is not None else {}),
        "optimizer": f.optimizer.state_dict(), "scheduler": f.scheduler.state_dict(), "scaler": f.scaler.state_dict(),
        "rng": rngs[0], "rng_ranks": rngs, "state": dict(f.state), "config": f.cfg.to_dict(),
    })


def _last_good(f: _Fit, written: str) -> str:
    last = f.run.checkpoint_path("last")
    return f"the last good checkpoint is {last}" if f.d.is_main and last.exists() else f"no checkpoint was {written}"


def _resume(f: _Fit) -> None:
    """Everything as it was when ``last.pt`` was written. Rank 0 reads the file (on CPU: RNG states
    must stay CPU tensors) and hands it to the others, so only rank 0's node needs the run folder."""
    ck = None
    if f.d.is_main and f.run.checkpoint_path("last").exists():
        ck = f.run.load_checkpoint("last", map_location="cpu",
                                   need=("model", "optimizer", "scheduler", "scaler", "rng", "state", "config"))
    ck = distributed.broadcast(f.d, ck)
    if ck is not None:
        f.model.load_state_dict(ck["model"])
        if f.ema is not None and "ema" in ck:
            f.ema.load_state_dict(ck["ema"])
        f.optimizer.load_state_dict(ck["optimizer"])
        f.scheduler.load_state_dict(ck["scheduler"])
        f.scaler.load_state_dict(ck["scaler"])
        same_world = len(ck.get("rng_ranks") or []) == f.d.world_size
        set_rng_state(ck["rng_ranks"][f.d.rank] if same_world else ck["rng"])
        f.state.update(ck["state"])
        if not f.d.is_main:  # the saved partial-epoch loss is already summed over all ranks
            f.state.update(loss_sum=0.0, loss_count=0)
        f.log(f"resumed at epoch {f.state['epoch'] + 1}, step {f.state['step']}")
    if f.d.is_main:
        # Drop log lines of epochs the checkpoint does not cover: an epoch's line is appended before
        # its checkpoint is written, so a run killed in between (or before its first checkpoint)
        # logged an epoch it will train again.
        f.run.truncate_history(f.state["epoch"])


def _diverged(f: _Fit, epoch: int) -> TrainingStopped:
    return TrainingStopped(f"non-finite loss on rank {f.d.rank} in epoch {epoch + 1} by step {f.state['step']}: "
                           f"stopped; {_last_good(f, 'written yet')} (try a lower train.learning_rate)", 3)


class _LossWindow:
    """The training loss, summed on the device between sync points and read back (with the
    non-finite check and, under torchrun, the stop flags) only every ``SYNC_EVERY`` steps, at log
    lines and at the end of the epoch: a GPU never waits on the host inside a window."""

    def __init__(self, device: torch.device) -> None:
        self.loss = torch.zeros((), dtype=torch.float64, device=device)
        self.bad = torch.zeros((), dtype=torch.int64, device=device)
        self.pending = 0  # samples summed since the last sync

    def add(self, loss: Tensor, n: int) -> None:
        self.loss += loss.double() * n
        self.bad += (~torch.isfinite(loss)).to(torch.int64)
        self.pending += n

    def sync(self, f: _Fit, signalled: bool) -> tuple[bool, bool]:
        """Move the sums into ``f.state``; returns (non-finite on any rank, stop requested on any)."""
        # One small all-reduce carries both flags: every rank must agree to stop, or DDP would wait
        # forever on the others.
        bad, stopping = distributed.all_reduce_sum(f.d, [float(self.bad), 1.0 if signalled else 0.0])
        if not bad:
            f.state["loss_sum"] += float(self.loss)
            f.state["loss_count"] += self.pending
        self.loss.zero_()
        self.bad.zero_()
        self.pending = 0
        return bool(bad), bool(stopping)


def _step(f: _Fit, batch: dict[str, Any], epoch: int) -> tuple[Tensor, int]:
    """One optimizer step on one batch; returns the loss (detached, on the device) and the batch size."""
    tc = f.cfg.train
    batch = move_batch(batch, f.device)
    batch = f.augment(batch, epoch, f.state["step"]) if f.augment else batch
    with autocast(f.device, tc.precision):
        out = f.net(batch["features"], batch["masks"])
        loss = model_loss(f.data.task, tc, out, batch["label"])
    f.optimizer.zero_grad(set_to_none=True)
    f.scaler.scale(loss).backward()
    if tc.grad_clip:
        f.scaler.unscale_(f.optimizer)
        nn.utils.clip_grad_norm_(f.model.parameters(), tc.grad_clip)
    f.scaler.step(f.optimizer)
    f.scaler.update()
    f.scheduler.step()
    if f.ema is not None:
        f.ema.update_parameters(f.model)
    f.state["step"] += 1
    return loss.detach(), len(batch["ids"])


def _stop_on_signal(f: _Fit, epoch: int, signum: int | None, t0: float) -> TrainingStopped:
    """Save a resumable ``last.pt`` mid-epoch and say how to continue."""
    f.state["seconds"] += time.perf_counter() - t0
    # the checkpoint holds the whole partial-epoch loss; resume gives it to rank 0
    f.state["loss_sum"], f.state["loss_count"] = distributed.all_reduce_sum(
        f.d, [f.state["loss_sum"], float(f.state["loss_count"])])
    _checkpoint(f, "last")
    name = signal.Signals(signum or signal.SIGTERM).name
    return TrainingStopped(f"{name} received: checkpoint saved at epoch {epoch + 1}, step {f.state['step']}; "
                           f"continue with: modalfuse train {f.run.file(CONFIG)} --resume {f.run.path}",
                           128 + int(signum or signal.SIGTERM))


def _train_epoch(f: _Fit, epoch: int, stop: _StopFlag, show_bar: bool, log_every: float | None) -> tuple[float, float, int]:
    """One pass over the shuffled training batches (from ``state["step"]`` when resumed mid-epoch).

    Returns:
        ``(seconds, mean training loss over all ranks, samples seen on this rank)``.
    """
    tc, d = f.cfg.train, f.d
    f.net.train()
    t0 = last_log = time.perf_counter()
    seen = 0
    batches = train_batches(f.data.train, f.per_rank_batch, seed=tc.seed, epoch=epoch, rank=d.rank,
                            world_size=d.world_size, start_step=f.state["step"], num_workers=tc.num_workers)
    if isinstance(f.data.train, BatchStream):  # shards may differ in length: stop together
        batches = distributed.lockstep(d, batches)
    bar = None
    if show_bar and d.is_main:
        from tqdm import tqdm

        bar = tqdm(total=f.steps_per_epoch, initial=f.state["step"], desc=f"epoch {epoch + 1}/{tc.epochs}",
                   leave=False, dynamic_ncols=True)
    window = _LossWindow(f.device)
    for batch in batches:
        loss, n = _step(f, batch, epoch)
        seen += n
        window.add(loss, n)
        # Single process: a signal is a host-side flag, checked every step at no cost. Under
        # torchrun ranks must agree, so they only look at the shared sync points.
        signalled = stop.signum is not None
        timed_log = log_every and time.perf_counter() - last_log >= log_every
        if not (f.state["step"] % SYNC_EVERY == 0 or timed_log or (signalled and not d.enabled)):
            if bar is not None:
                bar.update(1)
            continue
        bad, stopping = window.sync(f, signalled)
        if bad:
            raise _diverged(f, epoch)
        mean_loss = f.state["loss_sum"] / max(f.state["loss_count"], 1)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{mean_loss:.4f}")
        elif timed_log:
            last_log = time.perf_counter()
            f.log(f"epoch {epoch + 1}/{tc.epochs}  step {f.state['step']}/{f.steps_per_epoch}  train_loss "
                  f"{mean_loss:.4f}  {seen * d.world_size / max(last_log - t0, 1e-9):.0f} samples/s")
        if stopping:
            raise _stop_on_signal(f, epoch, stop.signum, t0)
    # end of epoch: the last window's sums and the non-finite check, before anything is saved
    bad, _ = window.sync(f, False)
    if bad:
        raise _diverged(f, epoch)
    if bar is not None:
        bar.close()
    seconds = f.state["seconds"] + time.perf_counter() - t0
    loss_sum, loss_count = distributed.all_reduce_sum(d, [f.state["loss_sum"], float(f.state["loss_count"])])
    f.state["train_seconds"] += seconds
    return seconds, loss_sum / max(loss_count, 1), seen


def _validate(f: _Fit) -> dict[str, float]:
    """The scored weights' scalar metrics on the validation split, the same on every rank."""
    cfg = f.cfg
    pred = predict_split(f.scored, f.data.valid, f.data.task, batch_size=cfg.eval.batch_size, device=f.device,
                         precision=cfg.train.precision, d=f.d, num_workers=cfg.train.num_workers,
                         top_k=cfg.eval.top_k, threshold=cfg.eval.threshold)
    valid = scalars(split_metrics(f.data.task, pred, cfg)) if pred is not None else {}
    valid = distributed.broadcast(f.d, valid)
    if f.monitor not in valid:
        raise UserError(f"config key 'train.monitor': '{f.monitor}' is not a validation metric of this task; "
                        f"available: {', '.join(sorted(valid))}")
    return valid


def _select(f: _Fit, epoch: int, valid: dict[str, float]) -> bool:
    """Whether this epoch becomes the best one (updating ``state``).

    select=last: every epoch replaces best.pt, so the final epoch is the one kept. The first epoch is
    kept even when its monitor is NaN, so best.pt exists; a NaN is never stored as the best value
    (is_better: anything beats it), and run.json gets null.
    """
    value, state = valid[f.monitor], f.state
    improved = (f.cfg.train.select == "last" or state["best_epoch"] is None
                or is_better(f.monitor, value, state["best"]))
    if improved:
        state.update(best=value if math.isfinite(value) else None, best_epoch=epoch + 1, bad_epochs=0)
    else:
        state["bad_epochs"] += 1
    return improved


def _end_epoch(f: _Fit, epoch: int, valid: dict[str, float], improved: bool, trained: tuple[float, float, int],
               track: Trackers, on_epoch: Any) -> None:
    """Log the epoch's row (``metrics.jsonl``, trackers, ``on_epoch``), then write ``best.pt`` when it
    improved and ``last.pt`` always."""
    seconds, train_loss, seen = trained
    row = {"epoch": epoch + 1, "train_loss": train_loss, **{f"valid_{k}": v for k, v in valid.items()},
           "lr": f.optimizer.param_groups[0]["lr"], "seconds": seconds,
           "samples_per_s": seen * f.d.world_size / max(seconds, 1e-9)}
    f.state.update(epoch=epoch + 1, step=0, loss_sum=0.0, loss_count=0, seconds=0.0)
    if f.d.is_main:
        f.run.append_history(row)
        track.epoch(row)
        if on_epoch is not None:
            on_epoch(row)
        f.log(f"epoch {epoch + 1}/{f.cfg.train.epochs}  train_loss {train_loss:.4f}  "
              f"valid_{f.monitor} {valid[f.monitor]:.4f}{'  *' if improved else ''}  {seconds:.1f}s")
    if improved:
        _checkpoint(f, "best", resumable=False)
    _checkpoint(f, "last")


def _early_stop(f: _Fit) -> bool:
    """train.patience epochs in a row without a better validation value."""
    return bool(f.cfg.train.patience and f.state["bad_epochs"] >= f.cfg.train.patience)


def _finish(f: _Fit, track: Trackers) -> dict[str, Any]:
    """The best checkpoint on every split in ``eval.splits``: ``metrics.json``, ``predictions.npz``,
    then the completion marker ``run.json``."""
    # Rank 0 reads the weights and hands them over: other nodes need not see the run folder.
    best = f.run.load_checkpoint("best")["model"] if f.d.is_main else None
    f.model.load_state_dict(distributed.broadcast(f.d, best))
    cfg, tc = f.cfg, f.cfg.train
    preds = final_predictions(f.model, f.data, cfg, device=f.device, d=f.d, precision=tc.precision,
                              num_workers=tc.num_workers)
    results = {split: split_metrics(f.data.task, pred, cfg) for split, pred in preds.items()}
    if f.d.is_main:
        f.run.write_metrics(results)  # per_class* entries go to per_class.json
        # per-example predictions, compact, so reports recompute metrics and intervals from files
        save_final_predictions(f.run, f.data, cfg, preds)
        # the completion marker comes last: a crash before it leaves a resumable run, never a
        # half-finished one that some commands call finished
        f.run.complete({
            "best_epoch": f.state["best_epoch"], "epochs_run": f.state["epoch"], "monitor": f.monitor,
            "best_valid": f.state["best"], "train_seconds": f.state["train_seconds"],
            "world_size": f.d.world_size, "device": str(f.device),
        })
    track.finish(results, f.state["epoch"])
    return results


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------

def fit(cfg: Config, data: DataBundle, model: nn.Module, run: RunFolder, *, resume: bool = False,
        d: distributed.Dist = distributed.Dist(), device: torch.device = torch.device("cpu"),
        log: Any = print, on_epoch: Any = None) -> dict[str, Any]:
    """Train ``model`` on ``data`` as ``cfg.train`` says, writing into the run folder ``run``.

    Args:
        on_epoch: called on rank 0 with each epoch's ``metrics.jsonl`` row once it is written
            (``compare`` shows progress with it).

    Returns:
        ``{"valid": {...}, "test": {...}}``: the best checkpoint's metrics (on rank 0; ``{}`` elsewhere).
    """
    tc = cfg.train
    f = _setup(cfg, data, model, run, d, device, log)
    if resume:
        _resume(f)
    show_bar = tc.progress == "bar" or (tc.progress == "auto" and sys.stderr.isatty())
    # Without a bar, long epochs (minutes each for the paper-size YouTube-8M models on CPU) still
    # report where they are, once a minute.
    log_every = None if show_bar or tc.progress == "none" or not d.is_main else LOG_EVERY_SECONDS
    # Experiment trackers (train.loggers: TensorBoard, MLflow) get each epoch's row and the final
    # metrics; only rank 0 writes.
    track = Trackers(tc.loggers if d.is_main else [], run.path, cfg.to_dict(), first_epoch=f.state["epoch"] + 1)
    with _StopFlag() as stop, track.closing():
        # a resumed run that had already stopped early (then crashed before its final files) does not train on
        stopped_early = _early_stop(f)
        while f.state["epoch"] < tc.epochs and not stopped_early:
            epoch = f.state["epoch"]
            trained = _train_epoch(f, epoch, stop, show_bar, log_every)  # --- train one epoch
            valid = _validate(f)  # --- validate
            improved = _select(f, epoch, valid)  # --- select the best epoch
            _end_epoch(f, epoch, valid, improved, trained, track, on_epoch)  # --- log, checkpoint
            if _early_stop(f):  # --- stop
                log(f"early stopping: no better valid_{f.monitor} for {tc.patience} epochs")
                break
    return _finish(f, track)  # --- final: the best checkpoint on every reported split
