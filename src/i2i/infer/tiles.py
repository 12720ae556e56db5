"""Tiled translation of images larger than a network pass can hold (satellite mosaics).

The image is cut into ``tile`` x ``tile`` tiles that overlap by ``overlap`` pixels. Each tile is
translated on its own; in the overlaps, tiles are blended with linear ramps (feathering), so no
seam shows. The ramps span the middle half of each overlap: the quarter nearest a tile's edge,
where the edge cuts the generator's receptive field, is left to its neighbour. Work proceeds
one row of tiles at a time: the float buffers hold one strip of ``tile`` rows and the output is
written row by row. Image files (PNG, JPEG, TIFF) are decoded
whole, as 8 bits; a ``.npy`` source is memory-mapped and its result written to a memory-mapped
``.npy``, so memory stays bounded by the tile strip, not the image.

Generators whose normalization uses each image's own statistics (instance norm, as CycleGAN's;
batch norm on per-image statistics, as the reference's pix2pix at test time) would normalize
every tile by that tile's statistics, and the result would show tile-shaped blocks (up to 70
levels apart from a whole-image pass). So the statistics come from one pass over the whole
image first: at full resolution up to ``STATS_PIXELS``, beyond that over a copy box-averaged
down to that size (read strip by strip, so memory stays bounded), and every tile is normalized
with them. Tiled and whole-image translations then differ only where a tile's border cuts the
network's receptive field, which the blended overlaps hide.

A model trained on random crops of its data at their own scale (``--preprocess crop``) saw only
crop-sized statistics in training; on a whole photo several times larger, its deeper layers get
statistics of another extent and the output drifts (parks missed, water paler). Tiles of the
training crop size, each normalized by its own statistics (``stats="tile"``, ``--tile-stats
tile``), give it what it was trained on. Measured on maps val (pix2pix on 256 px crops of the
600 px photos, 30 CPU minutes): mean palette IoU 0.443-0.447 whole, 0.471-0.479 in 256 px tiles
with their own statistics (docs/results.md). Neighbouring tiles may then differ a little in
tone; the overlaps blend them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
from PIL import Image
from tqdm import tqdm

from i2i.data.images import pil_to_array, uint_array_to_float
from i2i.errors import ConfigError

if TYPE_CHECKING:
    from i2i.infer.translator import Translator

TileStats = Literal["image", "tile"]  # where per-image normalization's statistics come from
STATS_PIXELS = 1024 * 1024  # largest statistics pass at full resolution, px (about 1 GiB peak)
STRIP_ROWS = 256  # rows of a large array box-averaged at a time for the statistics pass


def overview(image: Image.Image | np.ndarray, channels: int, max_pixels: int) -> np.ndarray:
    """``image`` as a float HxWxC array in [0, 1], box-averaged by the smallest whole factor
    that brings it to at most ``max_pixels`` (the image itself when it has no more). A large
    array (a memory-mapped ``.npy``) is read a strip of rows at a time."""
    height, width = (
        (image.height, image.width) if isinstance(image, Image.Image) else image.shape[:2]
    )
    k = max(1, math.ceil(math.sqrt(height * width / max_pixels)))
    if isinstance(image, Image.Image):
        if k == 1:
            return pil_to_array(image, channels)
        try:
            return pil_to_array(image.reduce(k), channels)
        except ValueError:  # modes reduce does not take: 16-bit, palette, 1-bit
            wide = "I" if image.mode.startswith("I") else "RGBA"
            return pil_to_array(image.convert(wide).reduce(k), channels)
    k = min(k, height, width)
    usable_h, usable_w = height // k * k, width // k * k
    rows = []
    step = k * max(1, STRIP_ROWS // k)  # whole blocks of k rows per strip
    for y in range(0, usable_h, step):
        rows_in = np.asarray(image[y : min(y + step, usable_h), :usable_w])
        strip = uint_array_to_float(rows_in, "image", channels)
        rows.append(strip.reshape(strip.shape[0] // k, k, usable_w // k, k, -1).mean(axis=(1, 3)))
    return np.concatenate(rows)


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


@dataclass(frozen=True)
class Tiling:
    """Translation in ``tile`` x ``tile`` px tiles overlapping by ``overlap`` px, layers that
    normalize per image taking ``stats``: the whole image's or each tile's own."""

    tile: int
    overlap: int
    stats: TileStats = "image"


def as_trained(preprocess: str, crop_size: int, image_statistics: bool) -> Tiling | None:
    """The tiling that shows a generator images as training did, or None for whole images.
    A generator with layers normalizing by each image's statistics (instance norm) trained on
    ``crop_size`` px crops at the data's own scale (``--preprocess crop``) saw statistics over
    a crop-sized field; translated whole, a larger image shifts them (on maps, parks fade into
    land): tiles of the crop size, each on its own statistics, give it what it saw."""
    if preprocess == "crop" and image_statistics:
        return Tiling(crop_size, default_overlap(crop_size), "tile")
    return None


def check_tile_stats(stats: str) -> TileStats:
    """``stats`` as a TileStats; ConfigError naming ``--tile-stats`` otherwise."""
    if stats not in get_args(TileStats):
        raise ConfigError(
            f"--tile-stats {stats!r}: use image (the whole image's statistics, seamless) or "
            "tile (each tile's own, as a model trained on crops of the tile's size saw them)"
        )
    return stats  # type: ignore[return-value]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one side: every ``tile - overlap`` px, the last flush with the end."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def ramp(size: int, overlap: int, before: bool, after: bool, margin: int = 0) -> np.ndarray:
    """Blend weights along one side of a tile: rising over ``overlap`` px where a neighbour
    precedes, falling where one follows, 1 elsewhere (and always > 0). With ``margin``, the
    ``margin`` px nearest the tile's edge get almost no weight and the ramp spans the
    ``overlap - 2 * margin`` px after them: a generator whose reach the tile's edge cuts is
    least right there."""
    w = np.ones(size, np.float32)
    if overlap > 0:
        span = max(overlap - 2 * margin, 1)
        edge = np.maximum((np.arange(size, dtype=np.float32) + 0.5 - margin) / span, 1e-3)
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
    stats_pixels: int = STATS_PIXELS,
    stats: TileStats = "image",
) -> np.ndarray:
    """Translate ``image`` (PIL, or a uint8/uint16 HxW[xC] array, memmaps included) tile by
    tile into an 8-bit HxWxC array: ``out`` if it is one, a memory-mapped ``.npy`` file if it is
    a path, else a new array. With a memmapped source and a path, memory stays bounded by one
    strip of tiles whatever the image's size. ``translator`` is an i2i ``Translator``. Layers
    that normalize by an image's own statistics take, with ``stats="image"``, the whole
    image's, measured on at most ``stats_pixels`` px; with ``stats="tile"``, each tile's own
    (module docstring). ConfigError for a tile, overlap or ``stats`` that does not fit."""
    check_tiles(tile, overlap, translator.size_multiple)
    check_tile_stats(stats)
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

    moments = None
    if translator.image_statistics and stats == "image":
        moments = translator.statistics(overview(image, channels, stats_pixels))
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
        wy = ramp(th, overlap, y > 0, y + th < height, overlap // 4)
        for i in range(0, len(xs), batch_size):  # a batch of tiles at a time, not the whole row
            batch = xs[i : i + batch_size]
            tiles = [read(y, x, th, tw) for x in batch]
            results = translator.translate_arrays(tiles, batch_size, moments=moments)
            for x, result in zip(batch, results, strict=True):
                if acc is None:
                    acc = np.zeros((th, width, result.shape[-1]), np.float32)
                    shape = (height, width, result.shape[-1])
                    if out is None:
                        out = np.empty(shape, np.uint8)
                    elif not isinstance(out, np.ndarray):  # a .npy path: through a memmap
                        out = np.lib.format.open_memmap(out, "w+", np.uint8, shape)
                w2 = wy[:, None] * ramp(tw, overlap, x > 0, x + tw < width, overlap // 4)[None, :]
                acc[:, x : x + tw] += result * w2[..., None]
                weight[:, x : x + tw] += w2
        end = ys[k + 1] if k + 1 < len(ys) else height  # rows no later tile touches
        assert acc is not None and isinstance(out, np.ndarray)
        for x in range(0, width, tile):  # finished rows, normalized a tile's width at a time
            done = acc[: end - y, x : x + tile] / weight[: end - y, x : x + tile, None]
            out[y:end, x : x + tile] = (np.clip(done, 0, 1) * 255 + 0.5).astype(np.uint8)
    assert isinstance(out, np.ndarray)
    return out
