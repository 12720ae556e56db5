"""Data-parallel training over several processes (``i2i.parallel``: torchrun, the process
group), each on its own device; for several machines, run ``torchrun --nnodes ... -m i2i
train ...`` on each (with a run folder they share). Each process trains its slice of every
global batch (``train.batch_size`` is the global batch) and the gradients are averaged across
processes in each update (``i2i.train.step.Updater``), so N processes take the steps one
process would take with the whole batch. Process 0 writes the run folder.

Why averaging in the update rather than ``DistributedDataParallel``: a GAN step backpropagates
through the discriminator twice, with its parameters frozen in between (the generator's update),
which DDP's gradient reducer does not expect unless every call site unwraps the model. Averaging
in the loop's update keeps the models free of wrappers and the checkpoints free of ``module.``
prefixes; the price is that communication does not overlap the backward pass. Batch norm
statistics stay per process (instance norm, the default, is per image anyway).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from i2i.errors import ConfigError
from i2i.parallel import Processes


def check_batch(batch_size: int, procs: Processes) -> None:
    if batch_size % procs.world:
        raise ConfigError(
            f"train.batch_size {batch_size} is the global batch and must divide evenly among "
            f"{procs.world} processes; use a multiple of {procs.world}"
        )


def share_start(model: nn.Module) -> None:
    """Start every process from process 0's weights."""
    for tensor in model.state_dict().values():
        dist.broadcast(tensor, src=0)


def average(values: torch.Tensor, procs: Processes) -> torch.Tensor:
    """The mean of ``values`` over the processes: losses of the whole global batch, from each
    process's slice."""
    if procs.world == 1:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / procs.world
