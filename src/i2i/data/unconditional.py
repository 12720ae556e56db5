"""Unconditional datasets: one collection of images (MNIST-style IDX files or an image folder).

IDX is MNIST's format: a big-endian header (two zero bytes, a type code, the number of
dimensions, then each dimension as a 32-bit integer) followed by the raw values. Files may be
gzip-compressed (``*-idx3-ubyte.gz``). Only unsigned-byte IDX (type 0x08) holds images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from i2i.config import DataConfig
from i2i.data.cache import cached, prepared_cache
from i2i.data.images import DataError, apply_rule, match_channels
from i2i.data.layouts import has_images, is_idx, read_idx
from i2i.data.transforms import PixelDataset, SizeRule, augment, prepare, prepared_size
from i2i.data.unpaired import ImageFolder
from i2i.nets.colorizer import zero_chroma


def image_split(root: str | Path, split: str) -> Path | None:
    """Folder ``ROOT/split`` of an image collection, or None when it has no such split."""
    folder = Path(root) / split
    return folder if has_images(folder) else None


class ImageDataset(PixelDataset):
    """Samples ``{"image": CxHxW in [-1, 1]}`` (uint8 from :meth:`pixels`) from an IDX file or
    an image folder: ``ROOT/split`` when that folder exists, else ``ROOT`` itself (a collection
    without split folders is used whole).

    Channels follow ``data.output_nc`` (the generator's output); images are resized to
    ``data.crop_size`` unless ``preprocess`` is ``none``; training may flip them.
    """

    def __init__(
        self,
        cfg: DataConfig,
        train: bool,
        split: str | None = None,
        rule: SizeRule | None = None,
    ) -> None:
        root = Path(cfg.root)
        if not root.exists():
            raise DataError(f"{root}: dataset not found (an IDX file or an image folder)")
        self.cfg = cfg
        self.array: np.ndarray | None = None
        self.folder: ImageFolder | None = None
        if is_idx(root):
            array = read_idx(root)
            if array.ndim != 3:
                raise DataError(f"{root}: expected N x H x W images, got shape {array.shape}")
            apply_rule(root, rule, array.shape[2], array.shape[1])
            self.array = array
        else:
            folder = image_split(root, split) if split else None
            self.folder = ImageFolder(folder or root, cfg.skip_bad, rule)
        self.train, self.size = train, prepared_size(cfg, train)
        self.cache = prepared_cache(
            cfg.cache and train, len(self), cfg.output_nc, self.size, cfg.num_workers
        )

    def stored_sizes(self) -> dict[tuple[int, int], str]:
        """Each distinct (width, height), with one file having it."""
        if self.array is not None:
            return {(self.array.shape[2], self.array.shape[1]): self.cfg.root}
        assert self.folder is not None
        return self.folder.stored_sizes()

    def __len__(self) -> int:
        return len(self.array) if self.array is not None else len(self.folder)  # type: ignore[arg-type]

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as stored: HxWxC float32 in [0, 1], not preprocessed."""
        if self.array is not None:
            arr = match_channels(
                self.array[index, :, :, None] / np.float32(255), self.cfg.output_nc
            )
        else:
            arr = self.folder.load(index, self.cfg.output_nc)  # type: ignore[union-attr]
        return arr.astype(np.float32)

    def prepared(self, index: int) -> torch.Tensor:
        return prepare(self.load(index), self.size)

    def pixels(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        (img,) = augment((cached(self.cache, index, self.prepared),), self.cfg, self.train, seed)
        return {"image": img}


class GrayPairs:
    """Colour images as (gray, colour) pairs, ``{"A": its gray, "B": image}`` (3xHxW in
    [-1, 1]; the gray has the image's CIE L and no chroma): what colorization is scored on.
    ``raw_target`` gives the stored image, as ``PairedDataset.raw_target``."""

    def __init__(self, images: ImageDataset) -> None:
        self.images, self.cfg = images, images.cfg

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = self.images[index]["image"]
        return {"A": zero_chroma(image[None])[0], "B": image}

    def raw_target(self, index: int) -> np.ndarray:
        return self.images.load(index)
