"""Preprocessing in two stages, so that the slow stage runs once per image.

1. :func:`prepare` (deterministic): resize a decoded image to ``load_size`` (training with
   ``resize_and_crop``) or ``crop_size`` (``resize``, and evaluation; ``crop`` and ``none``
   keep the image's own size), then round it to 8 bits per channel, the precision of the
   outputs. Its result may be cached (:mod:`i2i.data.cache`),
   so decoding and resizing happen once per image rather than once per epoch.
2. :func:`augment` (random, training only): a ``crop_size`` crop (``resize_and_crop``, ``crop``)
   and a
   horizontal flip (``flip``), as in the pix2pix paper. Both are slices of uint8 tensors. One draw
   applies to all images of a sample, so a pair stays aligned, and the sample's seed fixes it.

:func:`to_network` then maps 8-bit pixels to the networks' [-1, 1]. Datasets
(:class:`PixelDataset`) give each sample both ways: as 8-bit pixels, which training batches and
moves to the device before mapping them (:func:`network_range`), and in the networks' range.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from i2i.config import DataConfig
from i2i.errors import ConfigError

SizeRule = Callable[[int, int], None]
"""``rule(width, height)`` of an image as stored: raises ConfigError, saying why and what to do,
when training cannot use an image of that size."""


def prepared_size(cfg: DataConfig, train: bool) -> int | None:
    """The side that :func:`prepare` resizes to; None keeps each image's own size
    (``none``, and ``crop``, which crops at the image's own scale)."""
    if cfg.preprocess == "resize_and_crop" and train:
        return cfg.load_size
    if cfg.preprocess in ("resize_and_crop", "resize"):
        return cfg.crop_size
    return None


def size_rule(cfg: DataConfig, fits: SizeRule) -> SizeRule | None:
    """The check each training image's stored size must pass before training starts, or None
    when every image is resized to one size (which the caller checks once with ``fits``).
    ``fits(width, height)``: whether the networks take an input of that size."""
    if cfg.preprocess == "none":
        return fits  # each image at its own size
    if cfg.preprocess == "crop":
        crop = cfg.crop_size

        def at_least_crop(width: int, height: int) -> None:
            if width < crop or height < crop:
                raise ConfigError(
                    f"{width}x{height} is smaller than the {crop} px crops of --preprocess crop; "
                    "use a smaller --crop-size or --preprocess resize_and_crop"
                )

        return at_least_crop
    return None


def prepare(image: np.ndarray, size: int | None) -> torch.Tensor:
    """HxWxC float array in [0, 1] -> CxHxW uint8 tensor, resized to ``size`` x ``size``."""
    t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    if size is not None and t.shape[-2:] != (size, size):
        t = TF.resize(t, [size, size], antialias=True)
    return t.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)


def augment(
    images: tuple[torch.Tensor, ...], cfg: DataConfig, train: bool, seed: int | None
) -> tuple[torch.Tensor, ...]:
    """One random crop and flip, drawn from ``seed``, applied to all ``images`` (training)."""
    if not train:
        return images
    rng = np.random.default_rng(seed)
    crop = cfg.crop_size if cfg.preprocess in ("resize_and_crop", "crop") else None
    if crop is not None:
        h, w = images[0].shape[-2:]
        top, left = int(rng.integers(h - crop + 1)), int(rng.integers(w - crop + 1))
        images = tuple(im[..., top : top + crop, left : left + crop] for im in images)
    if cfg.flip and rng.random() < 0.5:
        images = tuple(im.flip(-1) for im in images)
    return images


def to_network(image: torch.Tensor) -> torch.Tensor:
    """8-bit pixels 0..255 -> float32 -1..1."""
    return image.to(torch.float32).div_(127.5).sub_(1.0)


def network_range(sample: dict[str, Any]) -> dict[str, Any]:
    """``sample`` (or a batch) with its 8-bit image tensors mapped to the networks' [-1, 1]."""
    return {
        k: to_network(v) if isinstance(v, torch.Tensor) and v.dtype == torch.uint8 else v
        for k, v in sample.items()
    }


class PixelDataset(Dataset[dict[str, Any]]):
    """A dataset whose samples exist as 8-bit pixels (:meth:`pixels`); indexing gives them in the
    networks' range. Training batches the pixels instead and maps them on its device: a quarter
    of the bytes to batch, pin and copy, which lets one loader process keep up with a GPU."""

    def __len__(self) -> int:
        raise NotImplementedError

    def pixels(self, key: int | tuple[int, int]) -> dict[str, Any]:
        raise NotImplementedError

    def stored_sizes(self) -> dict[tuple[int, int], str]:
        """Each distinct (width, height) of the inputs as stored, with one file having it."""
        raise NotImplementedError

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        return network_range(self.pixels(key))
