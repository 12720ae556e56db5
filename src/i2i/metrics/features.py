"""Feature extractors for the distribution metrics (FID, KID, IS, precision/recall, MiFID).

An extractor maps a batch of 8-bit RGB images (Nx3xHxW uint8, already resized to its
``input_size``) to ``Features``: an embedding per image, and class logits when it has a classifier
head (the Inception Score needs them). The default is the FID Inception-v3 of the literature
(TTUR / torch-fidelity weights), so numbers compare with published ones.

Resizing: both real and generated images are resized to ``input_size`` with PIL's bicubic filter,
which low-passes before subsampling (as clean-fid recommends), instead of the aliasing bilinear
resampling of the original TensorFlow code. At 299x299 input, the extractor's own resize is then
a no-op. Real and fake sets always go through exactly the same path.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from i2i.errors import ConfigError, WeightsMissing

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_FILE
)
INCEPTION_ENV = "I2I_INCEPTION_WEIGHTS"


class FeatureWeightsMissing(WeightsMissing):
    """A feature extractor's pretrained weights are not on this machine."""


@dataclass
class Features:
    embedding: torch.Tensor  # N x D, float32
    logits: torch.Tensor | None = None  # N x classes, for the Inception Score


class FeatureExtractor(Protocol):
    name: str
    input_size: int  # images are resized to input_size x input_size before extraction

    def __call__(self, images: torch.Tensor) -> Features: ...


def resize_for_features(images: torch.Tensor, size: int) -> torch.Tensor:
    """Nx{1,3}xHxW uint8 -> Nx3xSxS uint8 with PIL bicubic (antialiased); gray becomes RGB."""
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if images.shape[-2:] == (size, size):
        return images.contiguous()
    out = [
        np.asarray(
            Image.fromarray(im.permute(1, 2, 0).numpy()).resize(
                (size, size), Image.Resampling.BICUBIC
            )
        )
        for im in images.cpu()
    ]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def inception_weights_path(explicit: str | None = None) -> Path:
    """Where the FID Inception weights are: ``explicit``, ``$I2I_INCEPTION_WEIGHTS``, or the
    torch hub cache (downloaded there when the network allows)."""
    given = explicit or os.environ.get(INCEPTION_ENV)
    if given:
        path = Path(given)
        if not path.is_file():
            raise FeatureWeightsMissing(f"{path}: Inception weights file not found")
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if cached.is_file():
        return cached
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(INCEPTION_URL, str(cached), progress=True)
    except Exception as exc:  # offline, proxy, disk: all end in the same instruction
        raise FeatureWeightsMissing(
            f"FID/KID/IS/precision/recall need the FID Inception weights {INCEPTION_FILE} "
            f"(92 MB), which could not be downloaded ({type(exc).__name__}). Fetch it from "
            f"{INCEPTION_URL} on a machine with internet, then pass --inception-weights PATH, "
            f"set {INCEPTION_ENV}=PATH, or put it at {cached}. "
            "Paired metrics (l1, rmse, psnr, ssim, pixel_acc) need no weights."
        ) from None
    return cached


class InceptionFeatures:
    """The FID Inception-v3: 2048-d pool features and the 1008 class logits."""

    name = "inception"
    input_size = 299

    def __init__(self, weights: str | None = None, device: str | torch.device = "cpu") -> None:
        from torch_fidelity import FeatureExtractorInceptionV3

        path = inception_weights_path(weights)
        # torch-fidelity unpickles the file with weights_only=False; refuse anything that is
        # not a plain tensor state dict before it gets there
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise FeatureWeightsMissing(
                f"{path}: not a plain PyTorch state dict of the Inception weights ({exc})"
            ) from None
        self.device = torch.device(device)
        self.net = FeatureExtractorInceptionV3(
            "inception-v3-compat",
            ["2048", "logits_unbiased"],
            feature_extractor_weights_path=str(path),
        ).to(self.device)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> Features:
        pool, logits = self.net(images.to(self.device))
        return Features(pool.float().cpu(), logits.float().cpu())


def build_extractor(
    name: str, weights: str | None = None, device: str | torch.device = "cpu"
) -> FeatureExtractor:
    """``inception`` (default), or ``package.module:factory`` naming a callable that returns
    an object with ``name``, ``input_size`` and ``__call__(uint8 images) -> Features``."""
    if name == "inception":
        return InceptionFeatures(weights, device)
    module, colon, attr = name.partition(":")
    if not colon:
        raise ConfigError(
            f"--features {name!r}: use 'inception' or 'package.module:factory' for your own"
        )
    try:
        factory: Callable[[], FeatureExtractor] = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--features {name!r}: cannot import it ({exc})") from None
    return factory()
