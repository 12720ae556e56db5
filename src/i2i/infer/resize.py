"""Translating at the training scale (``--resize``).

A generator works at the pixel scale it learned at: a 600 px photo through a model trained on
images resized to 286 px shows it objects three times larger than it ever saw, and it answers
with noise. ``--resize train`` scales the input so that its shorter side is the side the model
saw whole training images at (the card's ``scale``: the load size after resize_and_crop, the
crop size after resize), keeping the aspect ratio; ``--resize WxH`` scales it to W x H px
exactly (the reference test script's square 256 x 256 is ``--resize 256x256``). The result is
scaled back to the input's size. ``auto`` does what the web page does by default: the training
scale when the image's shorter side is more than twice the training side, else its own scale.
Models trained at their images' own scale (preprocess crop or none) take ``train`` as no
resizing. Resampling is PIL's bicubic, antialiased when downscaling, in float (no 8-bit step).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from i2i.errors import ConfigError

RESIZE_HELP = "train | auto | WxH | none: translate at the training scale, at W x H px, or as is"
AUTO_FACTOR = 2  # auto: the training scale for images over this many times the training side


@dataclass(frozen=True)
class Resize:
    """How to scale an image for translation: ``mode`` none (as it is), train, auto, or size
    (``size`` = (W, H) px)."""

    mode: Literal["none", "train", "auto", "size"] = "none"
    size: tuple[int, int] | None = None

    @classmethod
    def parse(cls, value: Resize | str | None, where: str = "--resize") -> Resize:
        """``train``, ``auto``, ``none`` or ``WxH`` (``None``: none); ConfigError otherwise."""
        if isinstance(value, Resize):
            return value
        text = (value or "none").strip().lower()
        if text in ("none", "train", "auto"):
            return cls(text)  # type: ignore[arg-type]
        match = re.fullmatch(r"(\d+)x(\d+)", text)
        if match and 0 < int(match.group(1)) <= 65536 and 0 < int(match.group(2)) <= 65536:
            return cls("size", (int(match.group(1)), int(match.group(2))))
        raise ConfigError(f"{where} {value!r}: use train, auto, none or WxH (e.g. 256x256)")

    def target(self, width: int, height: int, side: int | None) -> tuple[int, int] | None:
        """The size (W, H) to translate a ``width`` x ``height`` image at, or None for its own;
        ``side`` is the model's training side (None: it learned at its images' own scale)."""
        if self.mode == "size":
            return self.size
        if self.mode == "none" or side is None:
            return None
        if self.mode == "auto" and min(width, height) <= AUTO_FACTOR * side:
            return None
        f = side / min(width, height)
        size = (max(1, round(width * f)), max(1, round(height * f)))
        return None if size == (width, height) else size

    def describe(self, size: tuple[int, int], used: tuple[int, int] | None) -> str:
        """What was done, in words: ``1200x800 -> 384x256 (training scale) -> 1200x800``."""
        w, h = size
        if used is None:
            return f"{w}x{h} (own scale)"
        why = "training scale" if self.mode in ("train", "auto") else "as asked"
        return f"{w}x{h} -> {used[0]}x{used[1]} ({why}) -> {w}x{h}"


def resize_array(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An HxWxC array (float, or uint8 as it is) resized to ``size`` = (W, H): PIL bicubic,
    antialiased when downscaling; floats channel by channel in 32 bits (they may overshoot
    [0, 1] slightly)."""
    w, h = size
    bicubic = Image.Resampling.BICUBIC
    if arr.dtype == np.uint8:
        image = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
        return np.asarray(image.resize(size, bicubic)).reshape(h, w, -1)
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(arr[..., c], np.float32)).resize(size, bicubic)
        )
        for c in range(arr.shape[-1])
    ]
    return np.stack(channels, axis=-1)
