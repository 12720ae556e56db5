"""Unpaired datasets: two image collections, A and B, drawn independently.

Layouts, for split ``train`` (likewise ``val``/``test``): ``ROOT/trainA`` + ``ROOT/trainB`` (the
CycleGAN layout), ``ROOT/train/A`` + ``ROOT/train/B``, or, for training, ``ROOT/A`` + ``ROOT/B``.
Each epoch pairs every A image with a random B image (the B draw is part of the sample's seed, so
resume stays exact); ``serial`` pairs A[i] with B[i] instead. Domains may differ in size: an
epoch covers the larger one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from i2i.config import DataConfig
from i2i.data.cache import cached, prepared_cache
from i2i.data.images import (
    DataError,
    image_size,
    list_images,
    open_image,
    read_with_hint,
    screen,
)
from i2i.data.layouts import unpaired_folders
from i2i.data.transforms import PixelDataset, augment, prepare, prepared_size


class ImageFolder:
    """The images of one folder, screened like paired data (clear errors or --skip-bad)."""

    def __init__(self, folder: Path, skip_bad: bool = False) -> None:
        def check(path: Path) -> None:
            image_size(path)
            if skip_bad:
                open_image(path)

        self.files = screen(list_images(folder), check, skip_bad, "image")

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int, channels: int) -> np.ndarray:
        return read_with_hint(self.files[i], channels)


class UnpairedDataset(PixelDataset):
    """Samples ``{"A": image of domain A, "B": image of domain B}`` in [-1, 1] (uint8 from
    :meth:`pixels`).

    As with paired data, ``A`` is the input domain: ``direction='BtoA'`` swaps the folders.
    """

    def __init__(self, cfg: DataConfig, split: str, train: bool) -> None:
        found = unpaired_folders(cfg, split)
        if found is None:
            raise DataError(f"{cfg.root}: no '{split}' split found")
        a_dir, b_dir = found if cfg.direction == "AtoB" else found[::-1]
        self.a, self.b = ImageFolder(a_dir, cfg.skip_bad), ImageFolder(b_dir, cfg.skip_bad)
        self.cfg, self.train = cfg, train
        self.size = size = prepared_size(cfg, train)
        on, workers = cfg.cache and train, cfg.num_workers
        self.cache_a = prepared_cache(on, len(self.a), cfg.input_nc, size, workers)
        self.cache_b = prepared_cache(on, len(self.b), cfg.output_nc, size, workers)

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def pixels(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        ia = index % len(self.a)
        if self.cfg.serial or seed is None:
            ib = index % len(self.b)
        else:
            ib = int(np.random.default_rng(seed).integers(len(self.b)))
        cfg = self.cfg
        a = cached(self.cache_a, ia, lambda i: prepare(self.a.load(i, cfg.input_nc), self.size))
        b = cached(self.cache_b, ib, lambda i: prepare(self.b.load(i, cfg.output_nc), self.size))
        # independent augmentations for the two domains, each fixed by the sample's seed
        (a,) = augment((a,), cfg, self.train, seed)
        (b,) = augment((b,), cfg, self.train, None if seed is None else seed + 1)
        return {"A": a, "B": b, "name": self.a.files[ia].name}


def open_unpaired(cfg: DataConfig, split: str, train: bool) -> UnpairedDataset | None:
    return UnpairedDataset(cfg, split, train) if unpaired_folders(cfg, split) else None
