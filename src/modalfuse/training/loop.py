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
    tc, task = cfg.train, data.task
    monitor = tc.monitor or DEFAULT_MONITOR[task.kind]
    per_rank_batch = max(1, tc.batch_size // d.world_size)  # train.batch_size is the global batch
    if tc.batch_size % d.world_size:
        log(f"note: train.batch_size {tc.batch_size} is not a multiple of {d.world_size} processes; "
            f"the global batch is {per_rank_batch * d.world_size}")

    # --- setup: seeds, model on device, optimizer, schedule -------------------------------------
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
    augment = build_augment(tc.augment, data, device, tc.seed)  # train.augment: robustness corruptions, or None
    ema = build_ema(model, tc.ema)  # train.ema: the weights' moving average, validated and kept as best
    scored = evaluated(model, ema)
    state = {"epoch": 0, "step": 0, "best": None, "best_epoch": None, "bad_epochs": 0,
             "loss_sum": 0.0, "loss_count": 0, "seconds": 0.0, "train_seconds": 0.0}

    def checkpoint(which: str, *, resumable: bool = True) -> None:
        """Called on every rank (each rank's RNG state is kept); only rank 0 writes.

        ``last.pt`` is resumable (optimizer, schedule, RNG and loop state); ``best.pt`` keeps what
        evaluation needs, the weights and the config (the optimizer moments would double its size).
        Non-finite weights are never written: the step that made them stops the run (exit 3) and the
        previous checkpoints stay as they were. Every rank holds the same weights, so every rank
        reaches the same verdict without a collective.
        """
        weights = scored.state_dict()
        bad = nonfinite_parameters(weights)
        if bad:
            last = run.checkpoint_path("last")
            where = f"the last good checkpoint is {last}" if d.is_main and last.exists() else "no checkpoint was written"
            raise TrainingStopped(f"non-finite weights ({len(bad)} tensors, e.g. '{bad[0]}') after epoch "
                                  f"{state['epoch']}, step {state['step']}: stopped; {where} "
                                  f"(try a lower train.learning_rate)", 3)
        rngs = distributed.gather(d, rng_state()) if resumable else None
        if d.is_main:
            if not resumable:
                run.save_checkpoint(which, {"model": weights, "config": cfg.to_dict(), "epoch": state["epoch"]})
                return
            run.save_checkpoint(which, {
                "model": model.state_dict(), **({"ema": ema.state_dict()} if ema is not None else {}),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "rng": rngs[0], "rng_ranks": rngs, "state": dict(state), "config": cfg.to_dict(),
            })

    # --- resume: everything as it was when the last checkpoint was written -----------------------
    # Rank 0 reads the file (on CPU: RNG states must stay CPU tensors) and hands it to the others,
    # so only rank 0's node needs to see the run folder.
    ck = None
    if resume and d.is_main and run.checkpoint_path("last").exists():
        ck = run.load_checkpoint("last", map_location="cpu",
                                 need=("model", "optimizer", "scheduler", "scaler", "rng", "state", "config"))
    ck = distributed.broadcast(d, ck)
    if ck is not None:
        model.load_state_dict(ck["model"])
        if ema is not None and "ema" in ck:
            ema.load_state_dict(ck["ema"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        scaler.load_state_dict(ck["scaler"])
        same_world = len(ck.get("rng_ranks") or []) == d.world_size
        set_rng_state(ck["rng_ranks"][d.rank] if same_world else ck["rng"])
        state.update(ck["state"])
        if not d.is_main:  # the saved partial-epoch loss is already summed over all ranks
            state.update(loss_sum=0.0, loss_count=0)
        log(f"resumed at epoch {state['epoch'] + 1}, step {state['step']}")
        del ck
    if resume and d.is_main:
        # Drop log lines of epochs the checkpoint does not cover: an epoch's line is appended before
        # its checkpoint is written, so a run killed in between (or before its first checkpoint)
        # logged an epoch it will train again.
        run.truncate_history(state["epoch"])

    def diverged(epoch: int) -> TrainingStopped:
        last = run.checkpoint_path("last")
        where = f"the last good checkpoint is {last}" if d.is_main and last.exists() else "no checkpoint was written yet"
        return TrainingStopped(f"non-finite loss on rank {d.rank} in epoch {epoch + 1} by step {state['step']}: "
                               f"stopped; {where} (try a lower train.learning_rate)", 3)

    show_bar = tc.progress == "bar" or (tc.progress == "auto" and sys.stderr.isatty())
    # Without a bar, long epochs (minutes each for the paper-size YouTube-8M models on CPU) still
    # report where they are, once a minute.
    log_every = None if show_bar or tc.progress == "none" or not d.is_main else LOG_EVERY_SECONDS
    # Experiment trackers (train.loggers: TensorBoard, MLflow) get each epoch's row and the final
    # metrics; only rank 0 writes.
    track = Trackers(tc.loggers if d.is_main else [], run.path, cfg.to_dict(), first_epoch=state["epoch"] + 1)
    with _StopFlag() as stop, track.closing():
        # a resumed run that had already stopped early (then crashed before its final files) does not train on
        stopped_early = bool(tc.patience and state["bad_epochs"] >= tc.patience)
        while state["epoch"] < tc.epochs and not stopped_early:
            epoch = state["epoch"]
            # --- train one epoch ---------------------------------------------------------------
            net.train()
            t0, seen = time.perf_counter(), 0
            last_log = t0
            batches = train_batches(data.train, per_rank_batch, seed=tc.seed, epoch=epoch, rank=d.rank,
                                    world_size=d.world_size, start_step=state["step"], num_workers=tc.num_workers)
            if isinstance(data.train, BatchStream):  # shards may differ in length: stop together
                batches = distributed.lockstep(d, batches)
            bar = None
            if show_bar and d.is_main:
                from tqdm import tqdm

                bar = tqdm(total=steps_per_epoch, initial=state["step"], desc=f"epoch {epoch + 1}/{tc.epochs}",
                           leave=False, dynamic_ncols=True)
            # The loss stays on the device between sync points: summed there, and read back (with the
            # non-finite check and, under torchrun, the stop flags) only every SYNC_EVERY steps, at
            # log lines and at the end of the epoch. A GPU never waits on the host inside a window.
            loss_acc = torch.zeros((), dtype=torch.float64, device=device)
            bad_acc = torch.zeros((), dtype=torch.int64, device=device)
            pending = 0  # samples summed into loss_acc since the last sync

            def sync(signalled: bool) -> tuple[bool, bool]:
                """Move the device sums into ``state``; returns (non-finite anywhere, stop requested)."""
                nonlocal pending
                # One small all-reduce carries both flags: every rank must agree to stop, or DDP would
                # wait forever on the others.
                bad, stopping = distributed.all_reduce_sum(d, [float(bad_acc), 1.0 if signalled else 0.0])
                if not bad:
                    state["loss_sum"] += float(loss_acc)
                    state["loss_count"] += pending
                loss_acc.zero_()
                bad_acc.zero_()
                pending = 0
                return bool(bad), bool(stopping)

            for batch in batches:
                batch = move_batch(batch, device)
                batch = augment(batch, epoch, state["step"]) if augment else batch
                with autocast(device, tc.precision):
                    out = net(batch["features"], batch["masks"])
                    loss = model_loss(task, tc, out, batch["label"])
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if tc.grad_clip:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                if ema is not None:
                    ema.update_parameters(model)
                n = len(batch["ids"])
                seen += n
                state["step"] += 1
                loss_det = loss.detach()
                loss_acc += loss_det.double() * n
                bad_acc += (~torch.isfinite(loss_det)).to(torch.int64)
                pending += n
                # Single process: a signal is a host-side flag, checked every step at no cost. Under
                # torchrun ranks must agree, so they only look at the shared sync points.
                signalled = stop.signum is not None
                timed_log = log_every and time.perf_counter() - last_log >= log_every
                at_sync = state["step"] % SYNC_EVERY == 0 or timed_log or (signalled and not d.enabled)
                if not at_sync:
                    if bar is not None:
                        bar.update(1)
                    continue
                bad, stopping = sync(signalled)
                if bad:
                    raise diverged(epoch)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{state['loss_sum'] / max(state['loss_count'], 1):.4f}")
                elif timed_log:
                    last_log = time.perf_counter()
                    log(f"epoch {epoch + 1}/{tc.epochs}  step {state['step']}/{steps_per_epoch}  "
                        f"train_loss {state['loss_sum'] / max(state['loss_count'], 1):.4f}  "
                        f"{seen * d.world_size / max(last_log - t0, 1e-9):.0f} samples/s")
                if stopping:
                    state["seconds"] += time.perf_counter() - t0
                    # the checkpoint holds the whole partial-epoch loss; resume gives it to rank 0
                    state["loss_sum"], state["loss_count"] = distributed.all_reduce_sum(
                        d, [state["loss_sum"], float(state["loss_count"])])
                    checkpoint("last")
                    name = signal.Signals(stop.signum or signal.SIGTERM).name
                    raise TrainingStopped(
                        f"{name} received: checkpoint saved at epoch {epoch + 1}, step {state['step']}; "
                        f"continue with: modalfuse train {run.file(CONFIG)} --resume {run.path}",
                        128 + int(stop.signum or signal.SIGTERM))
            # end of epoch: the last window's sums and the non-finite check, before anything is saved
            bad, _ = sync(False)
            if bad:
                raise diverged(epoch)
            if bar is not None:
                bar.close()
            seconds = state["seconds"] + time.perf_counter() - t0
            loss_sum, loss_count = distributed.all_reduce_sum(d, [state["loss_sum"], float(state["loss_count"])])
            state["train_seconds"] += seconds

            # --- validate ----------------------------------------------------------------------
            pred = predict_split(scored, data.valid, task, batch_size=cfg.eval.batch_size, device=device,
                                 precision=tc.precision, d=d, num_workers=tc.num_workers, top_k=cfg.eval.top_k,
                                 threshold=cfg.eval.threshold)
            valid = scalars(split_metrics(task, pred, cfg)) if pred is not None else {}
            valid = distributed.broadcast(d, valid)
            if monitor not in valid:
                raise UserError(f"config key 'train.monitor': '{monitor}' is not a validation metric of this task; "
                                f"available: {', '.join(sorted(valid))}")

            # --- log, checkpoint, early stopping -------------------------------------------------
            # select=last: every epoch replaces best.pt, so the final epoch is the one kept.
            # The first epoch is kept even when its monitor is NaN, so best.pt exists; a NaN is never
            # stored as the best value (is_better: anything beats it), and run.json gets null.
            improved = (tc.select == "last" or state["best_epoch"] is None
                        or is_better(monitor, valid[monitor], state["best"]))
            if improved:
                finite = math.isfinite(valid[monitor])
                state.update(best=valid[monitor] if finite else None, best_epoch=epoch + 1, bad_epochs=0)
            else:
                state["bad_epochs"] += 1
            row = {"epoch": epoch + 1, "train_loss": loss_sum / max(loss_count, 1),
                   **{f"valid_{k}": v for k, v in valid.items()}, "lr": optimizer.param_groups[0]["lr"],
                   "seconds": seconds, "samples_per_s": seen * d.world_size / max(seconds, 1e-9)}
            state.update(epoch=epoch + 1, step=0, loss_sum=0.0, loss_count=0, seconds=0.0)
            if d.is_main:
                run.append_history(row)
                track.epoch(row)
                if on_epoch is not None:
                    on_epoch(row)
                log(f"epoch {epoch + 1}/{tc.epochs}  train_loss {row['train_loss']:.4f}  "
                    f"valid_{monitor} {valid[monitor]:.4f}{'  *' if improved else ''}  {seconds:.1f}s")
            if improved:
                checkpoint("best", resumable=False)
            checkpoint("last")
            if tc.patience and state["bad_epochs"] >= tc.patience:
                log(f"early stopping: no better valid_{monitor} for {tc.patience} epochs")
                break

    # --- final: the best checkpoint on every reported split -------------------------------------
    # Rank 0 reads the weights and hands them over: other nodes need not see the run folder.
    best = run.load_checkpoint("best")["model"] if d.is_main else None
    model.load_state_dict(distributed.broadcast(d, best))
    preds = final_predictions(model, data, cfg, device=device, d=d, precision=tc.precision, num_workers=tc.num_workers)
    results = {split: split_metrics(task, pred, cfg) for split, pred in preds.items()}
    if d.is_main:
        run.write_metrics(results)  # per_class* entries go to per_class.json
        # per-example predictions, compact, so reports recompute metrics and intervals from files
        save_final_predictions(run, data, cfg, preds)
        # the completion marker comes last: a crash before it leaves a resumable run, never a
        # half-finished one that some commands call finished
        run.complete({
            "best_epoch": state["best_epoch"], "epochs_run": state["epoch"], "monitor": monitor,
            "best_valid": state["best"], "train_seconds": state["train_seconds"],
            "world_size": d.world_size, "device": str(device),
        })
    track.finish(results, state["epoch"])
    return results
