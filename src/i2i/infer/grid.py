"""Sample grids: the picture of a batch a person looks at (training samples, DCGAN samples,
evaluation galleries), with each column labelled."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid

LABEL_HEIGHT = 18  # px of the header band that names the columns


def sample_grid(
    columns: Sequence[torch.Tensor], labels: Sequence[str] | None = None, min_side: int = 128
) -> torch.Tensor:
    """Images in [-1, 1] as a grid: one row per example, one column per NxCxHxW tensor in
    ``columns`` (1 or 3 channels), ``labels`` written above the columns. Returns a 3xHxW
    tensor in [0, 1].

    Tiles smaller than ``min_side`` are enlarged by a whole factor (nearest neighbour), so a grid
    of 32 px images is still readable and its pixels stay honest.
    """
    n = columns[0].shape[0]
    as_rgb = [c.expand(-1, 3, -1, -1) if c.shape[1] == 1 else c for c in columns]
    tiles = torch.stack(as_rgb, dim=1).reshape(n * len(columns), 3, *columns[0].shape[2:])
    factor = max(1, min_side // min(tiles.shape[-2:]))
    if factor > 1:
        tiles = torch.nn.functional.interpolate(tiles.float(), scale_factor=factor, mode="nearest")
    grid = make_grid((tiles.float().cpu() + 1) / 2, nrow=len(columns), padding=2, pad_value=1.0)
    if not labels:
        return grid
    return label_columns(grid, list(labels), tiles.shape[-1] + 2)


def label_columns(grid: torch.Tensor, labels: list[str], pitch: int) -> torch.Tensor:
    """``grid`` (3xHxW in [0, 1]) with a white band on top naming each column of width
    ``pitch`` px."""
    pixels = (grid.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    band = Image.new("RGB", (pixels.shape[1], LABEL_HEIGHT), "white")
    draw = ImageDraw.Draw(band)
    font = ImageFont.load_default(size=12)
    for i, label in enumerate(labels):
        width = draw.textlength(label, font=font)
        draw.text((i * pitch + (pitch - width) / 2, 2), label, fill="black", font=font)
    out = np.concatenate([np.asarray(band), pixels])
    return torch.from_numpy(out).permute(2, 0, 1).float() / 255
