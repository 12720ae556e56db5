"""Prepared training images kept in memory, so each image is decoded and resized once.

Decoding a JPEG/PNG and resizing it costs more than the crop and flip that follow, and it gives
the same result every epoch. A :class:`PreparedCache` holds one stream of prepared images
(uint8, CxSxS) in a preallocated tensor, filled on first use: an epoch-1 cost instead of an
every-epoch one, and about 3*S*S bytes per image (250 KiB at S = 286). Rows not yet filled cost
no memory. With data-loading worker processes the tensor is in shared memory, so all workers
fill and read one copy.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class PreparedCache:
    def __init__(self, n: int, shape: tuple[int, int, int], shared: bool) -> None:
        self.images = torch.empty((n, *shape), dtype=torch.uint8)
        self.filled = torch.zeros(n, dtype=torch.bool)
        if shared:
            self.images.share_memory_()
            self.filled.share_memory_()

    def get(self, index: int, make: Callable[[int], torch.Tensor]) -> torch.Tensor:
        if not self.filled[index]:
            self.images[index] = make(index)
            self.filled[index] = True
        return self.images[index]


def prepared_cache(
    enabled: bool, n: int, channels: int, size: int | None, workers: int
) -> PreparedCache | None:
    """A cache for ``n`` images of ``channels`` x ``size`` x ``size``; None when caching is off
    or the images keep their own, differing sizes (``preprocess: none``)."""
    if not enabled or size is None:
        return None
    return PreparedCache(n, (channels, size, size), shared=workers > 0)


def cached(
    cache: PreparedCache | None, index: int, make: Callable[[int], torch.Tensor]
) -> torch.Tensor:
    """``make(index)``, from ``cache`` when there is one."""
    return make(index) if cache is None else cache.get(index, make)
