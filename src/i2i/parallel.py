"""Several processes working as one, launched by torchrun (PyTorch's elastic launcher): where
this process stands among them, its device, and the process group they share. Training
(data parallelism) and batch translation (sharded inputs) both stand on it.

``i2i train|translate --devices N`` runs the same command under ``torchrun --standalone
--nproc-per-node N``; across machines, ``torchrun --nnodes ... -m i2i ...`` on each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# torch is imported by the functions that join or leave a process group: a single process
# translating with ONNX Runtime imports this module and never needs torch (2-3 s)


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
    import torch
    import torch.distributed as dist

    from i2i.device import pick_device

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


def join_sharded(device_name: str) -> tuple[Processes, str, int]:
    """For work shared out by inputs (batch translation): join the process group over gloo
    (only counts and barriers cross it) and take this process's GPU, or its share of the CPU
    cores. Returns (place, device name, CPU threads)."""
    import torch

    procs, device = join(device_name, backend="gloo")
    threads = max(1, (os.cpu_count() or 1) // procs.local_world)
    torch.set_num_threads(threads)
    return procs, str(device), threads


def under_torchrun() -> bool:
    """Whether this process is one of several that torchrun started."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def finish(procs: Processes) -> None:
    """Wait for every process, then leave the process group."""
    import torch.distributed as dist

    if procs.world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
