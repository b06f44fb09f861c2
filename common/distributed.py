"""torchrun set-up: world size, rank and the process's device, joining the process group once."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .device import resolve_device


@dataclass(frozen=True)
class DistributedContext:
    world: int
    rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def distributed_context(device_name: str = "auto") -> DistributedContext:
    """(world, rank, device) from torchrun's WORLD_SIZE / RANK / LOCAL_RANK; (1, 0, device) without it.

    Under torchrun it joins the process group: NCCL when training on CUDA (each rank on GPU
    LOCAL_RANK), gloo on the CPU, also on a machine that has GPUs.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world == 1:
        return DistributedContext(1, 0, device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistributedContext(world, torch.distributed.get_rank(), device)


def global_sum(value: torch.Tensor, world: int) -> torch.Tensor:
    """Sum of a tensor over all ranks (the tensor itself when not distributed)."""
    if world > 1:
        value = value.clone()
        torch.distributed.all_reduce(value)
    return value
