"""Attend-Fusion (paper size) training throughput against this machine's fp32 matmul peak.

    python bench/train_throughput.py [--batch 256] [--repeats 5] [--preset attend-fusion] [--threads N]

Measures, in one process:
- samples/s of forward + backward (BCE-with-logits on multi-hot labels; no optimizer step) at the
  paper setting: MF+STD inputs (rgb 2048-d, audio 256-d), 3862 classes;
- FLOPs per sample of that forward + backward, counted by ``torch.utils.flop_counter``;
- the fp32 peak as achieved by one 4096x4096 ``torch.mm`` (2 * 4096^3 FLOPs).

Model steps and matmuls are interleaved, repeat by repeat, so both see the same machine load (other
processes on a shared machine slow both alike); each figure is the median over repeats. The last line
is one JSON object with the figures; ``fraction_of_peak`` is the achieved model FLOP/s over the peak.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from modalfuse.config import load_yaml
from modalfuse.models import build_model, count_parameters
from modalfuse.listing import PRESET_DIR
from modalfuse.models import PAPER_SPECS as PAPER_MODALITIES, PAPER_TASK

MM = 4096


def _inputs(batch: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    feats = {m: torch.randn(batch, s.dim, generator=g) for m, s in PAPER_MODALITIES.items()}
    labels = (torch.rand(batch, PAPER_TASK.num_classes, generator=g) < 3 / PAPER_TASK.num_classes).float()
    return feats, labels


def _step(model: torch.nn.Module, feats: dict[str, torch.Tensor], labels: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    loss = F.binary_cross_entropy_with_logits(model(feats)["logits"], labels)
    loss.backward()


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--preset", default="attend-fusion", help="model preset in configs/yt8m/")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads for both the model and the peak matmul (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    section = load_yaml(PRESET_DIR / "yt8m" / f"{args.preset}.yaml")["model"]
    model = build_model(section, PAPER_MODALITIES, PAPER_TASK).train()
    feats, labels = _inputs(args.batch)
    a, b = torch.randn(MM, MM), torch.randn(MM, MM)

    # FLOPs of one forward + backward, counted once (the count does not depend on timing).
    with FlopCounterMode(display=False) as counter:
        _step(model, feats, labels)
    flops_per_sample = counter.get_total_flops() / args.batch

    # Warm up both (allocator, thread pool, first-call dispatch), then interleave the timed repeats.
    _step(model, feats, labels)
    torch.mm(a, b)
    step_s, mm_s = [], []
    for r in range(args.repeats):
        mm_s.append(_timed(lambda: torch.mm(a, b)))
        step_s.append(_timed(lambda: _step(model, feats, labels)))
        print(f"repeat {r + 1}/{args.repeats}: step {step_s[-1]:.3f}s  mm {mm_s[-1]:.3f}s", flush=True)

    step, mm = statistics.median(step_s), statistics.median(mm_s)
    peak = 2 * MM**3 / mm
    achieved = flops_per_sample * args.batch / step
    result = {
        "model": args.preset, "parameters": count_parameters(model), "batch_size": args.batch,
        "repeats": args.repeats, "threads": torch.get_num_threads(),
        "samples_per_s": round(args.batch / step, 2),
        "flops_per_sample": int(flops_per_sample),
        "achieved_gflops": round(achieved / 1e9, 2),
        "peak_gflops_mm4096": round(peak / 1e9, 2),
        "fraction_of_peak": round(achieved / peak, 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
