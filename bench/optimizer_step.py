"""AdamW step time on a paper-size model: PyTorch's default (multi-tensor ``foreach``) against the
fused kernel that ``modalfuse`` training uses.

    python bench/optimizer_step.py [--preset fc-late] [--repeats 5] [--threads N]

Builds the preset's model at the paper setting (MF+STD inputs, 3862 classes), gives every parameter
a random gradient, and times ``optimizer.step()`` for both implementations, interleaved repeat by
repeat so both see the same machine load; each figure is the median over repeats. It also checks
that the two give the same parameters after one step from the same state (``max_abs_diff``). The
last line is one JSON object; ``speedup`` is foreach seconds over fused seconds.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch

from modalfuse.config import load_yaml
from modalfuse.models import build_model, count_parameters
from modalfuse.listing import PRESET_DIR
from modalfuse.models import PAPER_SPECS as PAPER_MODALITIES, PAPER_TASK


def _optimizer(model: torch.nn.Module, fused: bool) -> torch.optim.Optimizer:
    kind = {"fused": True} if fused else {"foreach": True}
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, **kind)


def _time_step(opt: torch.optim.Optimizer) -> float:
    t = time.perf_counter()
    opt.step()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="fc-late")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = load_yaml(PRESET_DIR / "yt8m" / f"{args.preset}.yaml")
    models = {"foreach": build_model(cfg["model"], PAPER_MODALITIES, PAPER_TASK)}
    models["fused"] = copy.deepcopy(models["foreach"])
    for p, q in zip(models["foreach"].parameters(), models["fused"].parameters()):
        p.grad = torch.randn_like(p) * 1e-3
        q.grad = p.grad.clone()
    opts = {k: _optimizer(m, fused=(k == "fused")) for k, m in models.items()}
    for opt in opts.values():  # first step allocates the moment buffers; not timed
        opt.step()
    diff = max((p - q).abs().max().item() for p, q in zip(models["foreach"].parameters(), models["fused"].parameters()))
    times: dict[str, list[float]] = {k: [] for k in opts}
    for _ in range(args.repeats):
        for k, opt in opts.items():
            times[k].append(_time_step(opt))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({
        "model": args.preset, "parameters": count_parameters(models["fused"]), "repeats": args.repeats,
        "threads": torch.get_num_threads(), "foreach_seconds": round(med["foreach"], 4),
        "fused_seconds": round(med["fused"], 4), "speedup": round(med["foreach"] / med["fused"], 2),
        "max_abs_diff": diff,
    }))


if __name__ == "__main__":
    main()
