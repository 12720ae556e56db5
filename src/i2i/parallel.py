"""Several processes working as one, launched by torchrun (PyTorch's elastic launcher): where
this process stands among them, its device, and the process group they share. Training
(data parallelism) and batch translation (sharded inputs) both stand on it.

``i2i train|translate --devices N`` runs the same command under ``torchrun --standalone
--nproc-per-node N``; across machines, ``torchrun --nnodes ... -m i2i ...`` on each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from i2i.device import pick_device


@dataclass(frozen=True)
class Processes:
    """This process's place: ``rank`` of ``world`` in all, ``local_rank`` of ``local_world``
    on this machine. One process (rank 0 of 1) without torchrun."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def join(device_name: str, backend: str | None = None) -> tuple[Processes, torch.device]:
    """This process's place (from torchrun's environment) and device, one GPU per process on
    a machine with GPUs; joins the process group (``backend``: nccl on CUDA, else gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = pick_device(device_name)
    if world == 1:
        return Processes(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if device.type == "cuda" else "gloo"))
    return Processes(rank, world, local_rank, local_world), device


def finish(procs: Processes) -> None:
    """Wait for every process, then leave the process group."""
    if procs.world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
