"""Paired ("aligned") datasets in three layouts, found automatically.

1. ``side_by_side``: one folder of images, A on the left half and B on the right (pix2pix).
2. ``ab_folders``: folders ``A/`` and ``B/`` whose files match by name (``A/x.jpg``, ``B/x.png``).
3. ``npz``: a NumPy archive with two image arrays (``arr_0`` sources, ``arr_1`` targets, uint8
   NHWC, as in the popular Keras pix2pix tutorial; other keys by ``npz_keys``).

Splits: ``ROOT/train`` (or ``ROOT/A/train`` + ``ROOT/B/train``, or ``ROOT/train.npz``); a root
without split folders is used whole as the training split and has no validation split.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Sampler

from i2i.config import DataConfig
from i2i.data.cache import cached, prepared_cache
from i2i.data.images import (
    BadImageError,
    DataError,
    apply_rule,
    crop,
    image_size,
    list_images,
    open_image,
    open_with_hint,
    picture_size,
    pil_to_array,
    read_image,
    read_with_hint,
    screen,
)
from i2i.data.layouts import Location, NpzReader, locate
from i2i.data.transforms import PixelDataset, SizeRule, augment, prepare, prepared_size


class PairReader(Protocol):
    """Where pairs come from: a count, a name per pair, the two images as float arrays, and
    each pair's stored size (width, height) of one image, read from the headers."""

    def __len__(self) -> int: ...
    def name(self, i: int) -> str: ...
    def size(self, i: int) -> tuple[int, int]: ...
    def load(self, i: int, channels_a: int, channels_b: int) -> tuple[np.ndarray, np.ndarray]: ...


class SideBySideReader:
    """Each file holds A on its left half and B on its right half. ``rule`` checks each
    half's size from the header (``transforms.size_rule``)."""

    def __init__(self, folder: Path, skip_bad: bool = False, rule: SizeRule | None = None) -> None:
        self.sizes: dict[Path, tuple[int, int]] = {}

        def check(path: Path) -> None:
            width, height = image_size(path)
            if width % 2:
                raise BadImageError(
                    path,
                    f"width {width} is odd, so its A|B halves differ in size; "
                    "a side-by-side pair is two halves of equal width",
                )
            apply_rule(path, rule, width // 2, height)
            if skip_bad:
                open_image(path)
            self.sizes[path] = (width // 2, height)

        self.files = screen(list_images(folder), check, skip_bad, "image")

    def size(self, i: int) -> tuple[int, int]:
        return self.sizes[self.files[i]]

    def __len__(self) -> int:
        return len(self.files)

    def name(self, i: int) -> str:
        return self.files[i].name

    def load(self, i: int, channels_a: int, channels_b: int) -> tuple[np.ndarray, np.ndarray]:
        path = self.files[i]
        im = open_with_hint(path)
        w, h = picture_size(im)
        a = pil_to_array(crop(im, (0, 0, w // 2, h)), channels_a, path)
        b = pil_to_array(crop(im, (w // 2, 0, w, h)), channels_b, path)
        return a, b


class FolderPairReader:
    """Folders A/ and B/; files pair up by name without extension."""

    def __init__(
        self, a_dir: Path, b_dir: Path, skip_bad: bool = False, rule: SizeRule | None = None
    ) -> None:
        a_files = {p.stem: p for p in list_images(a_dir)}
        b_files = {p.stem: p for p in list_images(b_dir)}
        unmatched = sorted(set(a_files) ^ set(b_files))
        if unmatched and not skip_bad:
            raise DataError(
                f"{len(unmatched)} file(s) in {a_dir} / {b_dir} have no partner of the same name "
                f"(e.g. {unmatched[:5]}); pairs match by file name without extension. "
                "Rename or remove them, or pass --skip-bad to skip them"
            )
        if unmatched:
            warnings.warn(
                f"skipped {len(unmatched)} unmatched file(s): {unmatched[:5]}", stacklevel=2
            )
        stems = sorted(set(a_files) & set(b_files))
        pairs = [(a_files[s], b_files[s]) for s in stems]
        self.sizes: dict[Path, tuple[int, int]] = {}

        def check(pair: tuple[Path, Path]) -> None:
            size_a, size_b = image_size(pair[0]), image_size(pair[1])
            if size_a != size_b:
                raise BadImageError(
                    pair[1],
                    f"size {size_b[0]}x{size_b[1]} differs from its partner {pair[0]} "
                    f"({size_a[0]}x{size_a[1]}), as viewers show them (EXIF orientation "
                    "applied); the two images of a pair must be the same size",
                )
            apply_rule(pair[0], rule, *size_a)
            if skip_bad:
                open_image(pair[0])
                open_image(pair[1])
            self.sizes[pair[0]] = size_a

        self.pairs = screen(pairs, check, skip_bad, "pair")

    def size(self, i: int) -> tuple[int, int]:
        return self.sizes[self.pairs[i][0]]

    def __len__(self) -> int:
        return len(self.pairs)

    def name(self, i: int) -> str:
        return self.pairs[i][0].name

    def load(self, i: int, channels_a: int, channels_b: int) -> tuple[np.ndarray, np.ndarray]:
        a_path, b_path = self.pairs[i]
        return read_with_hint(a_path, channels_a), read_with_hint(b_path, channels_b)


def open_reader(loc: Location, cfg: DataConfig, rule: SizeRule | None = None) -> PairReader:
    """The reader of ``loc``'s layout; ``rule`` checks each pair's size (training sets)."""
    if loc.layout == "npz":
        reader = NpzReader(loc.paths[0], cfg.npz_keys)
        if len(reader):
            apply_rule(loc.paths[0], rule, *reader.size(0))  # one size for all
        return reader
    if loc.layout == "ab_folders":
        return FolderPairReader(loc.paths[0], loc.paths[1], cfg.skip_bad, rule)
    return SideBySideReader(loc.paths[0], cfg.skip_bad, rule)


class PairedDataset(PixelDataset):
    """Pairs as ``{"A": input, "B": target, "name": str}``, tensors CxHxW in [-1, 1] (uint8
    from :meth:`pixels`).

    ``A`` is always the network's input: with ``direction='BtoA'`` the halves are swapped here,
    so models never look at the direction. Indexing with ``(index, seed)`` (what
    :class:`EpochBatchSampler` yields) makes the random crop and flip a function of that seed alone,
    so a resumed run sees exactly the augmentations an uninterrupted one would. Training sets
    keep each pair's prepared images in memory (``data.cache``): the same tensors either way.
    """

    def __init__(
        self, cfg: DataConfig, split: str | None, train: bool, rule: SizeRule | None = None
    ) -> None:
        loc = locate(cfg.root, split, cfg.layout)
        if loc is None:
            raise DataError(f"{cfg.root}: no '{split}' split found")
        self.location = loc
        self.reader = open_reader(loc, cfg, rule)
        self.cfg, self.train = cfg, train
        self.size = prepared_size(cfg, train)
        ab = cfg.direction == "AtoB"
        self.channels = (cfg.input_nc, cfg.output_nc) if ab else (cfg.output_nc, cfg.input_nc)
        channels = cfg.input_nc + cfg.output_nc  # A and B stacked, one row per pair
        on = cfg.cache and train
        self.cache = prepared_cache(
            on, len(self.reader), channels, self.size, cfg.num_workers, set(self.stored_sizes())
        )

    def __len__(self) -> int:
        return len(self.reader)

    def stored_sizes(self) -> dict[tuple[int, int], str]:
        """Each distinct (width, height) of the inputs as stored, with one file having it."""
        sizes: dict[tuple[int, int], str] = {}
        for i in range(len(self.reader)):
            sizes.setdefault(self.reader.size(i), self.reader.name(i))
        return sizes

    def raw_target(self, index: int) -> np.ndarray:
        """The target of pair ``index`` as stored (HxWxC float in [0, 1]), not preprocessed."""
        a, b = self.reader.load(index, *self.channels)
        return a if self.cfg.direction == "BtoA" else b

    def prepared(self, index: int) -> torch.Tensor:
        """Pair ``index`` decoded and resized: uint8 input channels, then target channels."""
        a, b = self.reader.load(index, *self.channels)
        if self.cfg.direction == "BtoA":
            a, b = b, a
        return torch.cat([prepare(a, self.size), prepare(b, self.size)])

    def pixels(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        ab = cached(self.cache, index, self.prepared)
        n_in = self.cfg.input_nc
        a, b = augment((ab[:n_in], ab[n_in:]), self.cfg, self.train, seed)
        return {"A": a, "B": b, "name": self.reader.name(index)}


def open_split(cfg: DataConfig, split: str, train: bool) -> PairedDataset | None:
    """The dataset for ``split``, or None when the data has no such split."""
    return PairedDataset(cfg, split, train) if locate(cfg.root, split, cfg.layout) else None


def steps_per_epoch(n: int, batch_size: int, world: int = 1) -> int:
    """Batches in an epoch of ``n`` samples: the last one partial with one process, dropped with
    several (so that all processes get equal slices)."""
    return n // batch_size if world > 1 else -(-n // batch_size)


class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of ``(index, augmentation_seed)`` for training steps ``start_step`` to
    ``total_steps``, epoch after epoch.

    Each epoch's order is fixed by ``(seed, epoch)`` and an epoch ends with its own (possibly
    smaller) batch, so a run resumed at any step sees exactly the batches, and augmentations,
    of an uninterrupted one. One sampler spans the whole run, so data-loading workers start once.
    With ``world`` processes, process ``rank`` gets every world-th sample of each global batch,
    and an epoch's last partial batch is dropped, so that all processes get equal slices.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        start_step: int,
        total_steps: int,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start_step, self.total_steps = start_step, total_steps
        self.rank, self.world = rank, world
        self.steps_per_epoch = steps_per_epoch(n, batch_size, world)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        while step < self.total_steps:
            epoch, first = divmod(step, self.steps_per_epoch)
            rng = np.random.default_rng([self.seed, epoch])
            order, aug_seeds = rng.permutation(self.n), rng.integers(0, 2**62, self.n)
            for b in range(first, self.steps_per_epoch):
                if step >= self.total_steps:
                    return
                positions = range(b * self.batch_size, min((b + 1) * self.batch_size, self.n))
                mine = positions[self.rank :: self.world]
                yield [(int(order[p]), int(aug_seeds[p])) for p in mine]
                step += 1

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)


__all__ = [
    "DataError",
    "EpochBatchSampler",
    "FolderPairReader",
    "Location",
    "NpzReader",
    "PairedDataset",
    "SideBySideReader",
    "locate",
    "open_split",
    "read_image",
]
