"""Tiled translation of images larger than a network pass can hold (satellite mosaics).

The image is cut into ``tile`` x ``tile`` tiles that overlap by ``overlap`` pixels. Each tile is
translated on its own; in the overlaps, tiles are blended with linear ramps (feathering), so no
seam shows. Work proceeds one row of tiles at a time: the float buffers hold one strip of
``tile`` rows and the output is written row by row. Image files (PNG, JPEG, TIFF) are decoded
whole, as 8 bits; a ``.npy`` source is memory-mapped and its result written to a memory-mapped
``.npy``, so memory stays bounded by the tile strip, not the image.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from tqdm import tqdm

from i2i.data.images import pil_to_array, uint_array_to_float
from i2i.errors import ConfigError

if TYPE_CHECKING:
    from i2i.infer.translator import Translator


def default_overlap(tile: int) -> int:
    """The overlap (px) when none is given: 64, or a quarter of a smaller tile."""
    return min(64, tile // 4)


def check_tiles(tile: int, overlap: int, multiple: int) -> None:
    """ConfigError, naming the flags and what fits, unless ``tile`` is a positive multiple of
    the generator's ``multiple`` and at least twice ``overlap`` (>= 0)."""
    if tile <= 0 or tile % multiple:
        fits = max(multiple, round(tile / multiple) * multiple)
        raise ConfigError(
            f"--tile {tile}: a tile must be a multiple of {multiple}, this generator's size "
            f"rule (e.g. --tile {fits})"
        )
    if overlap < 0 or tile < 2 * overlap:
        raise ConfigError(
            f"--tile {tile} needs --overlap of at most {tile // 2} px (got {overlap}); "
            f"leave --overlap out for {default_overlap(tile)}"
        )


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one side: every ``tile - overlap`` px, the last flush with the end."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def ramp(size: int, overlap: int, before: bool, after: bool) -> np.ndarray:
    """Blend weights along one side of a tile: rising over ``overlap`` px where a neighbour
    precedes, falling where one follows, 1 elsewhere (and always > 0)."""
    w = np.ones(size, np.float32)
    if overlap > 0:
        edge = (np.arange(size, dtype=np.float32) + 0.5) / overlap
        if before:
            w = np.minimum(w, edge)
        if after:
            w = np.minimum(w, edge[::-1])
    return w


def translate_tiled(
    translator: Translator,
    image: Image.Image | np.ndarray,
    tile: int = 512,
    overlap: int = 64,
    batch_size: int = 4,
    out: np.ndarray | str | Path | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Translate ``image`` (PIL, or a uint8/uint16 HxW[xC] array, memmaps included) tile by
    tile into an 8-bit HxWxC array: ``out`` if it is one, a memory-mapped ``.npy`` file if it is
    a path, else a new array. With a memmapped source and a path, memory stays bounded by one
    strip of tiles whatever the image's size. ``translator`` is an i2i ``Translator``."""
    check_tiles(tile, overlap, translator.size_multiple)
    channels = translator.input_channels
    if isinstance(image, Image.Image):
        width, height = image.size
        pil = image

        def read(y: int, x: int, h: int, w: int) -> np.ndarray:
            return pil_to_array(pil.crop((x, y, x + w, y + h)), channels)
    else:
        height, width = image.shape[:2]
        arr = image

        def read(y: int, x: int, h: int, w: int) -> np.ndarray:
            return uint_array_to_float(np.asarray(arr[y : y + h, x : x + w]), "image", channels)

    ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    th, tw = min(tile, height), min(tile, width)
    acc: np.ndarray | None = None  # rows [top, top + th) of the weighted sum
    weight = np.zeros((th, width), np.float32)
    top = 0
    for k, y in enumerate(tqdm(ys, disable=not progress, unit="row", desc="tiles")):
        shift = y - top  # rows already flushed; carry the overlap rows up
        if acc is not None and shift:
            acc[: th - shift], weight[: th - shift] = acc[shift:].copy(), weight[shift:].copy()
            acc[th - shift :], weight[th - shift :] = 0, 0
        top = y
        wy = ramp(th, overlap, y > 0, y + th < height)
        for i in range(0, len(xs), batch_size):  # a batch of tiles at a time, not the whole row
            batch = xs[i : i + batch_size]
            results = translator.translate_arrays([read(y, x, th, tw) for x in batch], batch_size)
            for x, result in zip(batch, results, strict=True):
                if acc is None:
                    acc = np.zeros((th, width, result.shape[-1]), np.float32)
                    shape = (height, width, result.shape[-1])
                    if out is None:
                        out = np.empty(shape, np.uint8)
                    elif not isinstance(out, np.ndarray):  # a .npy path: through a memmap
                        out = np.lib.format.open_memmap(out, "w+", np.uint8, shape)
                w2 = wy[:, None] * ramp(tw, overlap, x > 0, x + tw < width)[None, :]
                acc[:, x : x + tw] += result * w2[..., None]
                weight[:, x : x + tw] += w2
        end = ys[k + 1] if k + 1 < len(ys) else height  # rows no later tile touches
        assert acc is not None and isinstance(out, np.ndarray)
        for x in range(0, width, tile):  # finished rows, normalized a tile's width at a time
            done = acc[: end - y, x : x + tile] / weight[: end - y, x : x + tile, None]
            out[y:end, x : x + tile] = (np.clip(done, 0, 1) * 255 + 0.5).astype(np.uint8)
    assert isinstance(out, np.ndarray)
    return out
