"""How a run's networks execute, as opposed to what they compute (docs/performance.md).

Each setting keeps the math and changes only rounding: ``channels_last`` (NHWC tensors, which
tensor-core GPUs convolve fastest), ``precision="bf16"`` (autocast the networks to bfloat16: no
loss scaling is needed, unlike fp16) and ``compile`` (``torch.compile``, fusing the norm and
activation layers between convolutions). On a 2-core CPU all three are slower and stay off;
``benchmarks/train_speed.py`` measures them.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch
from torch import nn

from i2i.config import TrainConfig


def loader_workers(requested: int | None, device: torch.device) -> int:
    """Data-loading processes for a run: ``requested``, or by default up to 4 per CUDA process,
    so that decoding, cropping and batching overlap the GPU's step (at batch 16 an H100 steps
    faster than one process loads), and none elsewhere (on the CPU the compute threads need
    the cores; other devices are unmeasured)."""
    if requested is not None:
        return requested
    if device.type != "cuda":
        return 0
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))  # set by torchrun
    return min(4, (os.cpu_count() or 1) // (2 * processes))


def accelerate(model: nn.Module, train: TrainConfig) -> None:
    """Apply ``train.channels_last`` and ``train.compile`` to ``model``'s networks in place
    (``Module.compile`` keeps parameter names, so checkpoints do not change)."""
    if train.channels_last:
        model.to(memory_format=torch.channels_last)
    if train.compile:
        for net in model.children():
            if any(p.requires_grad for p in net.parameters()):
                net.compile()


def autocast(train: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """The forward passes' precision: a bfloat16 autocast, or nothing."""
    if train.precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(batch: dict[str, Any], device: torch.device, channels_last: bool) -> dict[str, Any]:
    """A batch's tensors on ``device`` (asynchronously from pinned memory), in the run's layout."""
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=True)
            if channels_last and value.dim() == 4:
                value = value.contiguous(memory_format=torch.channels_last)
        out[key] = value
    return out
