"""Where networks run and how the backends are set up, for training and inference alike: the
device a name picks, cuDNN/TF32 settings, and on the CPU an allocator that keeps freed memory.
"""

from __future__ import annotations

import ctypes
import os
import platform

import torch

from i2i.errors import DeviceError


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when present, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Raises DeviceError when the device is not on this machine."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"--device {name}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"--device {name}: CUDA is not available on this machine (no GPU or no CUDA "
                "build of PyTorch); use --device cpu, or auto"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"--device {name}: this machine has {torch.cuda.device_count()} GPU(s), "
                f"numbered 0 to {torch.cuda.device_count() - 1}"
            )
    elif device.type not in ("cpu", "mps"):
        raise DeviceError(f"--device {name}: use auto, cpu, cuda or cuda:N")
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
