"""How a run's networks execute, as opposed to what they compute (docs/performance.md).

Each setting keeps the math and changes only rounding: ``channels_last`` (NHWC tensors, which
tensor-core GPUs convolve fastest), ``precision="bf16"`` (autocast the networks to bfloat16: no
loss scaling is needed, unlike fp16) and ``compile`` (``torch.compile``, fusing the norm and
activation layers between convolutions). On a 2-core CPU all three are slower and stay off;
``benchmarks/train_speed.py`` measures them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
from typing import Any

import torch
from torch import nn

from i2i.config import TrainConfig


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return device


def configure_backends(device: torch.device, deterministic: bool) -> None:
    """On CUDA: autotuned cuDNN and TF32 matmuls (fast, not repeatable), or deterministic
    kernels. On the CPU: freed memory kept for the next step (``keep_freed_memory``)."""
    if device.type != "cuda":
        keep_freed_memory()
        return
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # repeatable cuBLAS
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cuda.matmul.allow_tf32 = not deterministic
    torch.backends.cudnn.allow_tf32 = not deterministic
    # warn_only: a few ops (e.g. reflection-pad backward) have no deterministic CUDA kernel
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


# glibc's mallopt parameters (<malloc.h>)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
# the ceiling of glibc's adaptive mmap threshold on 64-bit systems, which a process reaches once
# it has freed a block that large; the trim threshold follows at twice the mmap one
GLIBC_MMAP_CEILING = 32 * 2**20


def keep_freed_memory(keep: bool = True) -> bool:
    """Make the C allocator keep freed memory for the next allocations instead of returning it
    to the OS (``keep=False``: glibc's own thresholds at their ceiling, as a long-running
    process has them). Process-wide; glibc only: elsewhere it does nothing and returns False.

    Why: PyTorch has no caching allocator on the CPU, and glibc hands blocks larger than its mmap
    threshold (at most 32 MiB) back to the OS when they are freed, so each forward pass maps its
    largest tensors afresh and faults them in page by page, about 1.5 us per 4 KiB page on a
    2-core CPU. In translation that is most of the activations: keeping them measured 1.17x
    (unet_256) and 1.31x (resnet_9blocks) on batches of 8 256 px images, 1.2x on unet_256 at
    1024 px (docs/performance.md). A training step faults far less per FLOP (its 32 MiB weight
    gradients): 1.01x, within noise. The usual remedy, jemalloc or tcmalloc through
    ``LD_PRELOAD``, needs a library installed and set before the process starts. The cost:
    memory freed after the peak stays with the process.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)  # the process's own C library, already loaded
    # kept: blocks up to 1 GiB come from the heap, which is never trimmed (2 GiB is the most
    # that mallopt's int takes)
    mapped_above, trimmed_above = (
        (2**30, 2**31 - 1) if keep else (GLIBC_MMAP_CEILING, 2 * GLIBC_MMAP_CEILING)
    )
    return bool(
        libc.mallopt(_M_MMAP_THRESHOLD, mapped_above)
        and libc.mallopt(_M_TRIM_THRESHOLD, trimmed_above)
    )


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
