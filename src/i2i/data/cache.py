"""Prepared training images kept in memory, so each image is decoded and resized once.

Decoding a JPEG/PNG and resizing it costs more than the crop and flip that follow, and it gives
the same result every epoch. A :class:`PreparedCache` holds one stream of prepared images
(uint8, CxSxS) in a preallocated tensor, filled on first use: an epoch-1 cost instead of an
every-epoch one, and about 3*S*S bytes per image (250 KiB at S = 286). Rows not yet filled cost
no memory. With data-loading worker processes the tensor is in shared memory, so all workers
fill and read one copy.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import torch

from i2i.data.images import DataError

SHARED_MEMORY = Path("/dev/shm")  # where Linux keeps tensors shared between processes


class PreparedCache:
    def __init__(self, n: int, shape: tuple[int, int, int], shared: bool) -> None:
        self.images = torch.empty((n, *shape), dtype=torch.uint8)  # pages taken when filled
        self.filled = torch.zeros(n, dtype=torch.bool)
        if shared:
            check_shared_memory(self.images.numel())
            self.images.share_memory_()
            self.filled.share_memory_()

    def get(self, index: int, make: Callable[[int], torch.Tensor]) -> torch.Tensor:
        if not self.filled[index]:
            self.images[index] = make(index)
            self.filled[index] = True
        return self.images[index]


def check_shared_memory(nbytes: int) -> None:
    """Fail now, with what to do, if the cache cannot fit in shared memory: a full /dev/shm
    (64 MiB in a default Docker container) would otherwise kill the run with SIGBUS mid-epoch,
    without a message."""
    if not SHARED_MEMORY.is_dir():  # not Linux: PyTorch shares memory another way
        return
    free = shutil.disk_usage(SHARED_MEMORY).free
    if nbytes > free:
        raise DataError(
            f"the image cache needs {nbytes / 2**20:,.0f} MiB of shared memory for the "
            f"data-loading workers, but {SHARED_MEMORY} has {free / 2**20:,.0f} MiB free: train "
            "with --num-workers 0 (the cache then stays in the training process) or --no-cache, "
            "or give the machine more (Docker: --shm-size)"
        )


def prepared_cache(
    enabled: bool,
    n: int,
    channels: int,
    size: int | None,
    workers: int | None,
    stored: set[tuple[int, int]] | None = None,
) -> PreparedCache | None:
    """A cache for ``n`` images of ``channels`` x ``size`` x ``size``, in shared memory when
    ``workers`` processes load. Images that keep their own size (``size`` None: ``crop`` and
    ``none`` preprocessing) are cached when they all have one size, ``stored`` = {(width,
    height)}; None when caching is off or the sizes differ."""
    if not enabled:
        return None
    if size is not None:
        return PreparedCache(n, (channels, size, size), shared=bool(workers))
    if stored is not None and len(stored) == 1:
        ((width, height),) = stored
        return PreparedCache(n, (channels, height, width), shared=bool(workers))
    return None


def cached(
    cache: PreparedCache | None, index: int, make: Callable[[int], torch.Tensor]
) -> torch.Tensor:
    """``make(index)``, from ``cache`` when there is one."""
    return make(index) if cache is None else cache.get(index, make)
