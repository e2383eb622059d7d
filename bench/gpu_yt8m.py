"""One GPU session for YouTube-8M (issue 15, item 6): CUDA paths, throughput, and the paper protocol.

    python bench/gpu_yt8m.py [--data ../shared/data/yt8m/video] [--budget 540] [--out runs/gpu-yt8m]

Prepared for one run on one H200 within 10 minutes (``--budget`` seconds in all, 540 by default;
every phase has its own deadline, and the last line printed is one JSON object whatever fails):

1. ``throughput`` (about 2 min): for ``yt8m/fc-late`` and ``yt8m/attend-fusion`` (the presets, MF
   inputs: rgb 1024 + audio 128), training steps on real batches held in pinned host memory and copied
   with ``non_blocking``; bf16 autocast; fused AdamW; eager and ``torch.compile``; batch 64 (the
   preset's) and 1024. Reports samples/s and achieved TFLOP/s, and that as a fraction of the H200's
   dense bf16 peak (989 TFLOP/s, SXM), with FLOPs per sample counted by
   ``torch.utils.flop_counter.FlopCounterMode`` over one forward+backward.
2. ``nccl`` (about 1 min): ``torchrun --nproc_per_node 1 -m modalfuse train yt8m/attend-fusion`` for
   one epoch, so the DistributedDataParallel path runs on the NCCL backend with one process.
3. ``protocol`` (the rest): the paper protocol of the presets (AdamW, lr 1e-4, 20 epochs, early
   stopping on validation GAP) for fc-late and attend-fusion, seeds 0-2, on the 100-shard split
   (0000-0089 / 0090-0094 / 0095-0099), bf16, all six runs at once on the one GPU (each is far from
   filling it); run folders in ``--out``; reads back test GAP of the finished runs. A run cut by the
   deadline is listed as unfinished (``modalfuse train --resume`` continues it).

Copy the JSON line (and ``--out``'s run folders, for ``bench/yt8m_table.py``) into docs/results_yt8m.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

H200_BF16_DENSE_PEAK = 989e12  # FLOP/s, NVIDIA H200 SXM datasheet (dense; 2x with 2:4 sparsity)
MODELS = ("fc-late", "attend-fusion")


def _splits(data: str) -> dict[str, str]:
    return {"train": f"{data}/validate00[0-8][0-9].tfrecord", "valid": f"{data}/validate009[0-4].tfrecord",
            "test": f"{data}/validate009[5-9].tfrecord"}


def throughput(data: str, deadline: float, models: tuple[str, ...] = MODELS, device: str = "cuda",
               sizes: tuple[int, ...] = (64, 1024), steps: int = 200,
               compile_modes: tuple[bool, ...] = (False, True)) -> dict:
    """Samples/s and achieved FLOP/s of training steps (bf16 autocast, pinned host batches copied
    asynchronously). ``device="cpu"`` and small ``steps`` only check the code path (``--smoke``)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from modalfuse import plugins
    from modalfuse.config import build_config, load_yaml
    from modalfuse.listing import PRESET_DIR
    from modalfuse.models import build_model
    from modalfuse.registry import DATASETS
    from modalfuse.training.loop import build_optimizer, model_loss

    plugins.load()
    dev = torch.device(device)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    cuda = dev.type == "cuda"
    params = DATASETS.info("yt8m")["params"](train=_splits(data)["valid"], valid=_splits(data)["valid"], test=None)
    bundle = DATASETS.get("yt8m")(params)  # 1,459 real videos are enough to time steps
    feats = {m: torch.from_numpy(v) for m, v in bundle.train.features.items()}
    labels = torch.from_numpy(bundle.train.labels)
    n = len(labels)
    out: dict = {}
    for name in models:
        cfg = build_config(load_yaml(PRESET_DIR / "yt8m" / f"{name}.yaml"))
        for compiled in compile_modes:
            for bs in sizes:
                key = f"{name}/bs{bs}/{'compile' if compiled else 'eager'}"
                if time.time() > deadline:
                    out[key] = {"skipped": "deadline"}
                    continue
                try:
                    torch.manual_seed(0)
                    model = build_model(cfg.model, bundle.modalities, bundle.task).to(dev)
                    net = torch.compile(model) if compiled else model
                    opt = build_optimizer(model, cfg.train)

                    def host_batch(i: int) -> tuple[dict, torch.Tensor]:
                        """Batch ``i`` gathered on the host into pinned memory (what a loader hands over)."""
                        idx = torch.arange(i * bs, (i + 1) * bs) % n
                        x = {m: v.index_select(0, idx) for m, v in feats.items()}
                        y = labels.index_select(0, idx)
                        if cuda:
                            x, y = {m: v.pin_memory() for m, v in x.items()}, y.pin_memory()
                        return x, y

                    def batch(i: int, host: tuple | None = None) -> tuple[dict, torch.Tensor]:
                        x, y = host or host_batch(i)
                        # from pinned memory the copy is asynchronous: it overlaps the previous step
                        return {m: v.to(dev, non_blocking=True) for m, v in x.items()}, y.to(dev, non_blocking=True)

                    def step(x: dict, y: torch.Tensor) -> None:
                        with torch.autocast(dev.type, dtype=torch.bfloat16):
                            loss = model_loss(bundle.task, cfg.train, net(x, {}), y)
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
                        opt.step()

                    t = time.perf_counter()
                    for i in range(5):  # warm-up (and compilation)
                        step(*batch(i))
                    sync()
                    warm = time.perf_counter() - t
                    flops = None
                    if not compiled:
                        counter = FlopCounterMode(display=False)
                        with counter:
                            step(*batch(0))
                        flops = counter.get_total_flops() / bs
                    k = max(steps * 64 // bs, 2)  # the same samples per variant
                    hosts = [host_batch(i) for i in range(8)]
                    sync()
                    t = time.perf_counter()
                    for i in range(k):
                        step(*batch(i, hosts[i % 8]))
                    sync()
                    sec = time.perf_counter() - t
                    out[key] = {"samples_per_s": round(k * bs / sec, 1), "warmup_s": round(warm, 2),
                                "parameters": sum(p.numel() for p in model.parameters())}
                    if flops:
                        out[key]["flops_per_sample"] = flops
                except Exception as e:  # a failed variant must not cost the rest of the session
                    out[key] = {"error": f"{type(e).__name__}: {e}"[:300]}
                finally:
                    if cuda:
                        torch.cuda.empty_cache()
        eager_flops = {bs: out.get(f"{name}/bs{bs}/eager", {}).get("flops_per_sample") for bs in sizes}
        for key, v in out.items():
            if key.startswith(name + "/") and "samples_per_s" in v:
                f = eager_flops.get(int(key.split("/")[1][2:]))
                if f:
                    v["tflops"] = round(v["samples_per_s"] * f / 1e12, 2)
                    v["fraction_of_peak"] = round(v["samples_per_s"] * f / H200_BF16_DENSE_PEAK, 4)
    return out


def nccl(data: str, out_dir: Path, timeout: float) -> dict:
    """One epoch of attend-fusion under torchrun with one process (the NCCL backend on CUDA)."""
    s = _splits(data)
    cmd = ["torchrun", "--standalone", "--nproc_per_node", "1", "-m", "modalfuse", "train", "yt8m/attend-fusion",
           "--out", str(out_dir / "nccl"), "--set", f"data.train={s['train']}", "--set", f"data.valid={s['valid']}",
           "--set", "data.test=null", "--set", "train.epochs=1", "--set", "train.precision=bf16",
           "--set", "train.device=cuda", "--set", "train.progress=log", "--set", "eval.splits=[valid]"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    if p.returncode:
        return {"error": f"exit {p.returncode}: {(p.stderr or p.stdout)[-300:]}"}
    metrics = sorted((out_dir / "nccl").glob("*/metrics.jsonl"))
    first = json.loads(metrics[-1].read_text().splitlines()[0]) if metrics else {}
    return {"samples_per_s": first.get("samples_per_s"), "valid_gap": first.get("valid_gap"),
            "backend_log": [ln for ln in p.stdout.splitlines() + p.stderr.splitlines() if "nccl" in ln.lower()][:3]}


def protocol(data: str, out_dir: Path, timeout: float) -> dict:
    """Paper protocol, fc-late and attend-fusion, seeds 0-2, all at once on the one GPU."""
    s = _splits(data)
    procs = []
    for name in MODELS:
        for seed in range(3):
            folder = out_dir / "protocol" / name
            folder.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "modalfuse", "train", f"yt8m/{name}", "--out", str(folder),
                   "--set", f"data.train={s['train']}", "--set", f"data.valid={s['valid']}", "--set", f"data.test={s['test']}",
                   "--set", f"train.seed={seed}", "--set", "train.device=cuda", "--set", "train.precision=bf16",
                   "--set", "train.threads=2", "--set", "train.progress=log", "--set", "eval.batch_size=2048"]
            log = open(folder / f"seed{seed}.log", "w")
            procs.append((name, seed, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log))
    end = time.time() + timeout
    for _, _, p, _ in procs:
        try:
            p.wait(timeout=max(end - time.time(), 1))
        except subprocess.TimeoutExpired:
            p.terminate()  # SIGTERM: the run saves a resumable checkpoint
    for _, _, p, log in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()
    result: dict = {}
    for name in MODELS:
        runs = []
        for run in sorted((out_dir / "protocol" / name).glob("*/config.yaml")):
            folder = run.parent
            entry = {"folder": str(folder)}
            if (folder / "run.json").is_file() and (folder / "metrics.json").is_file():
                m = json.loads((folder / "metrics.json").read_text())
                r = json.loads((folder / "run.json").read_text())
                entry.update(test_gap=m.get("test", {}).get("gap"), valid_gap=m.get("valid", {}).get("gap"),
                             epochs=r.get("epochs_run"), best_epoch=r.get("best_epoch"),
                             train_seconds=r.get("train_seconds"))
            else:
                entry["unfinished"] = True
            runs.append(entry)
        gaps = [r["test_gap"] for r in runs if r.get("test_gap") is not None]
        result[name] = {"runs": runs, "test_gap_mean": sum(gaps) / len(gaps) if gaps else None, "finished": len(gaps)}
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = Path(__file__).resolve().parent.parent
    ap.add_argument("--data", default=str(here.parent / "shared" / "data" / "yt8m" / "video"))
    ap.add_argument("--budget", type=float, default=540.0, help="seconds for the whole script")
    ap.add_argument("--out", default="runs/gpu-yt8m")
    ap.add_argument("--smoke", action="store_true",
                    help="check the throughput code path on the CPU (attend-fusion, eager, a few steps) and exit")
    args = ap.parse_args()
    if args.smoke:
        print(json.dumps(throughput(args.data, time.time() + 600, ("attend-fusion",), "cpu", (64,), 4, (False,))))
        return
    start = time.time()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict = {"budget_s": args.budget}
    try:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("bench/gpu_yt8m.py needs a CUDA GPU")
        result["device"] = torch.cuda.get_device_name(0)
        result["torch"] = torch.__version__
        phases = (("throughput", 0.25), ("nccl", 0.12))
        for name, share in phases:
            t = time.time()
            try:
                if name == "throughput":
                    result[name] = throughput(args.data, t + share * args.budget)
                else:
                    result[name] = nccl(args.data, out_dir, share * args.budget)
            except Exception as e:
                result[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
            result[name + "_seconds"] = round(time.time() - t, 1)
            print(name, json.dumps(result[name])[:2000], flush=True)
        t = time.time()
        result["protocol"] = protocol(args.data, out_dir, args.budget - (t - start) - 20)
        result["protocol_seconds"] = round(time.time() - t, 1)
    finally:
        result["total_seconds"] = round(time.time() - start, 1)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
