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
    apply_rule,
    image_size,
    list_images,
    open_image,
    read_with_hint,
    screen,
)
from i2i.data.layouts import unpaired_folders
from i2i.data.transforms import PixelDataset, SizeRule, augment, prepare, prepared_size


class ImageFolder:
    """The images of one folder, screened like paired data (clear errors or --skip-bad);
    ``rule`` checks each image's size from its header (``transforms.size_rule``)."""

    def __init__(self, folder: Path, skip_bad: bool = False, rule: SizeRule | None = None) -> None:
        self.sizes: dict[Path, tuple[int, int]] = {}

        def check(path: Path) -> None:
            self.sizes[path] = image_size(path)
            apply_rule(path, rule, *self.sizes[path])
            if skip_bad:
                open_image(path)

        self.files = screen(list_images(folder), check, skip_bad, "image")

    def stored_sizes(self) -> dict[tuple[int, int], str]:
        """Each distinct (width, height), with one file having it."""
        sizes: dict[tuple[int, int], str] = {}
        for path in self.files:
            sizes.setdefault(self.sizes[path], path.name)
        return sizes

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int, channels: int) -> np.ndarray:
        return read_with_hint(self.files[i], channels)


class UnpairedDataset(PixelDataset):
    """Samples ``{"A": image of domain A, "B": image of domain B}`` in [-1, 1] (uint8 from
    :meth:`pixels`).

    As with paired data, ``A`` is the input domain: ``direction='BtoA'`` swaps the folders.
    """

    def __init__(
        self, cfg: DataConfig, split: str, train: bool, rule: SizeRule | None = None
    ) -> None:
        found = unpaired_folders(cfg, split)
        if found is None:
            raise DataError(f"{cfg.root}: no '{split}' split found")
        a_dir, b_dir = found if cfg.direction == "AtoB" else found[::-1]
        self.a = ImageFolder(a_dir, cfg.skip_bad, rule)
        self.b = ImageFolder(b_dir, cfg.skip_bad, rule)
        self.cfg, self.train = cfg, train
        self.size = size = prepared_size(cfg, train)
        on, workers = cfg.cache and train, cfg.num_workers
        self.cache_a = prepared_cache(
            on, len(self.a), cfg.input_nc, size, workers, set(self.a.stored_sizes())
        )
        self.cache_b = prepared_cache(
            on, len(self.b), cfg.output_nc, size, workers, set(self.b.stored_sizes())
        )

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def stored_sizes(self) -> dict[tuple[int, int], str]:
        """Each distinct (width, height) of either domain, with one file having it."""
        return {**self.b.stored_sizes(), **self.a.stored_sizes()}

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
