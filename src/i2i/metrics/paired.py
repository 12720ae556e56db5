"""Paired metrics against ground truth, on 8-bit images.

The photo -> map protocol of the literature (GcGAN, CVPR 2019), used by ``evaluate_paired``:
output and target are resized to 256x256; *per-pixel accuracy* is the fraction of pixels whose
largest channel difference max(|dR|, |dG|, |dB|) is below 5 (8-bit values); *RMSE* per image is
sqrt(mean over pixels of the channel-summed squared difference), averaged over images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from tqdm import tqdm

from i2i.data.paired import PairedDataset

if TYPE_CHECKING:
    from i2i.infer.translator import Translator


def pixel_accuracy(output: np.ndarray, target: np.ndarray, threshold: float = 5.0) -> float:
    """Fraction of pixels whose largest per-channel |difference| (8-bit units) < threshold."""
    diff = np.abs(output.astype(np.int32) - target.astype(np.int32))
    per_pixel = diff.max(axis=-1) if diff.ndim == 3 else diff
    return float((per_pixel < threshold).mean())


def rmse(output: np.ndarray, target: np.ndarray) -> float:
    """sqrt(mean over pixels of the channel-summed squared difference), 8-bit units."""
    diff = output.astype(np.float64) - target.astype(np.float64)
    sq = (diff**2).sum(axis=-1) if diff.ndim == 3 else diff**2
    return float(np.sqrt(sq.mean()))


@dataclass
class PairedScores:
    pixel_accuracy: float
    rmse: float
    l1: float  # mean |difference| in [0, 1] units
    count: int


def to_uint8(x: np.ndarray, size: int) -> np.ndarray:
    """A float HxWxC image in [0, 1] as 8-bit, resized (bicubic) to size x size."""
    img = Image.fromarray((np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8).squeeze())
    return np.asarray(img.resize((size, size), Image.Resampling.BICUBIC))


def evaluate_paired(
    translator: Translator,
    dataset: PairedDataset,
    size: int = 256,
    threshold: float = 5.0,
    batch_size: int = 8,
    progress: bool = True,
) -> PairedScores:
    """Translate each pair's input (preprocessed as for evaluation) and score the output against
    the target at its original resolution, both resized to ``size``, by the protocol above.
    ``l1`` compares at the network's resolution, in [0, 1] units."""
    accs, errs, l1s = [], [], []
    for start in tqdm(range(0, len(dataset), batch_size), disable=not progress, desc="evaluate"):
        indices = range(start, min(start + batch_size, len(dataset)))
        items = [dataset[i] for i in indices]
        inputs = [((it["A"] + 1) / 2).permute(1, 2, 0).numpy() for it in items]
        outputs = translator.translate_arrays(inputs, batch_size)
        for i, it, out in zip(indices, items, outputs, strict=True):
            target = ((it["B"] + 1) / 2).permute(1, 2, 0).numpy()
            l1s.append(float(np.abs(out - target).mean()))
            o8, t8 = to_uint8(out, size), to_uint8(dataset.raw_target(i), size)
            accs.append(pixel_accuracy(o8, t8, threshold))
            errs.append(rmse(o8, t8))
    return PairedScores(float(np.mean(accs)), float(np.mean(errs)), float(np.mean(l1s)), len(accs))
