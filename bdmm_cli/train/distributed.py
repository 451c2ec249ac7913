"""Process-group setup for `torchrun` and the small helpers the loop needs.

Under `torchrun` (env `RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`)
`setup()` initialises the default process group (NCCL when training on CUDA, gloo on
CPU) and pins each process to GPU `LOCAL_RANK`; multi-node runs work through torchrun's
rendezvous unchanged. Without those variables it is a single process (rank 0 of 1).
Only rank 0 writes (checkpoints, logs, samples).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from bdmm_cli.device import resolve_device


@dataclass(frozen=True)
class DistInfo:
    """rank / world_size / local_rank of this process, and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_world() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment (0, 1, 0 without it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    return rank, world, local


def setup(device: str = "auto") -> DistInfo:
    """Initialise the process group when launched by torchrun; returns this process's info."""
    rank, world, local = env_world()
    dev = str(resolve_device(device, local))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.startswith("cuda") else "gloo"
        if dev.startswith("cuda"):
            torch.cuda.set_device(torch.device(dev))
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local, dev)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def all_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of a tensor over all processes (identity in a single process)."""
    if not (info.enabled and dist.is_initialized()):
        return value
    out = value.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / info.world_size


def any_flag(flag: bool, info: DistInfo, device: str) -> bool:
    """True if `flag` is set on any process (used to stop all ranks together on Ctrl-C)."""
    if not (info.enabled and dist.is_initialized()):
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)
