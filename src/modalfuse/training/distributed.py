"""Multi-process training under ``torchrun``: process group, device, and gathering results on rank 0.

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; without them everything here is a
no-op for a single process. gloo on CPU, NCCL on GPU.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(choice: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` fails clearly when it is not."""
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            from ..errors import ConfigError

            raise ConfigError("config key 'train.device': 'cuda' asked for, but no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def setup(device_choice: str) -> tuple[Dist, torch.device]:
    """Join the process group if launched by torchrun; return this process's place and device."""
    if not launched():
        return Dist(), pick_device(device_choice)
    world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_choice, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # device_id binds NCCL to this rank's GPU (barrier and object collectives need to know it).
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                device_id=device if device.type == "cuda" else None)
    return Dist(rank, world, local_rank), device


def teardown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()


def launched() -> bool:
    """Whether this process is one of several started by torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def exit_worker(code: int) -> NoReturn:
    """End a torchrun worker process without the interpreter's finalization.

    gloo's worker threads free a finished collective's tensors after the call has returned, and a
    tensor that Python had already dropped needs the GIL to be freed. If the main thread is
    finalizing the interpreter by then, that thread is killed while unwinding and the process aborts
    ("terminate called without an active exception", SIGABRT; caught under gdb in
    ``ProcessGroupGloo::runLoop`` -> ``~AsyncGatherWork`` -> ``decref_pyobject`` during
    ``Py_FinalizeEx``, about 1 run in 40 on 2 cores; destroy_process_group does not join those
    threads). Everything the run writes is closed by now, so only the standard streams need flushing.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing left to save
            pass
    os._exit(code)


def broadcast(d: Dist, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not d.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(d: Dist, obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` as a list on rank 0 (``None`` elsewhere)."""
    if not d.enabled:
        return [obj]
    out: list[Any] | None = [None] * d.world_size if d.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def all_reduce_sum(d: Dist, values: list[float]) -> list[float]:
    if not d.enabled:
        return values
    # NCCL reduces CUDA tensors only; gloo reduces CPU ones.
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def lockstep(d: Dist, items: Iterable[T]) -> Iterator[T]:
    """Yield ``items`` while every rank still has one.

    Rank-sharded streams can give ranks different numbers of batches; a rank that ran out while the
    others still step would leave them waiting forever in DDP's gradient all-reduce. The uneven tail
    (fewer than one batch per rank) is dropped.
    """
    if not d.enabled:
        yield from items
        return
    it = iter(items)
    while True:
        item = next(it, None)
        if all_reduce_sum(d, [0.0 if item is None else 1.0])[0] < d.world_size:
            return
        yield item
