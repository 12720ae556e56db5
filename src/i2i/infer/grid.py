"""Sample grids: the picture of a batch a person looks at (training samples, DCGAN samples,
evaluation galleries)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.utils import make_grid


def sample_grid(columns: Sequence[torch.Tensor], min_side: int = 128) -> torch.Tensor:
    """Images in [-1, 1] as a grid: one row per example, one column per tensor in ``columns``.

    Tiles smaller than ``min_side`` are enlarged by a whole factor (nearest neighbour), so a grid
    of 32 px images is still readable and its pixels stay honest.
    """
    n = columns[0].shape[0]
    as_rgb = [c.expand(-1, 3, -1, -1) if c.shape[1] == 1 else c for c in columns]
    tiles = torch.stack(as_rgb, dim=1).reshape(n * len(columns), 3, *columns[0].shape[2:])
    factor = max(1, min_side // min(tiles.shape[-2:]))
    if factor > 1:
        tiles = torch.nn.functional.interpolate(tiles.float(), scale_factor=factor, mode="nearest")
    return make_grid((tiles.float().cpu() + 1) / 2, nrow=len(columns), padding=2, pad_value=1.0)
