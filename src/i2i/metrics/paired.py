"""Paired metrics against ground truth, on 8-bit images (Nx{1,3}xHxW uint8 tensors), one value
per image; reports average them over images.

The photo -> map protocol of the literature (GcGAN, CVPR 2019; ``../shared/data/README.md``):
output and target at 256x256; *per-pixel accuracy* is the fraction of pixels whose largest
channel difference max(|dR|, |dG|, |dB|) is below 5 (8-bit values); *RMSE* is
sqrt(mean over pixels of the channel-summed squared difference).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from i2i.metrics.features import FeatureWeightsMissing


def pixel_accuracy(
    output: torch.Tensor, target: torch.Tensor, threshold: float = 5.0
) -> torch.Tensor:
    """Per image: fraction of pixels whose largest per-channel |difference| < threshold."""
    diff = (output.int() - target.int()).abs().amax(dim=1)
    return (diff < threshold).float().mean(dim=(1, 2))


def rmse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per image: sqrt(mean over pixels of the channel-summed squared difference)."""
    sq = ((output.double() - target.double()) ** 2).sum(dim=1)
    return sq.mean(dim=(1, 2)).sqrt()


def l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per image: mean |difference| in [0, 1] units (the pix2pix reconstruction term)."""
    return (output.float() - target.float()).abs().mean(dim=(1, 2, 3)) / 255.0


def psnr(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per image PSNR in dB, peak 255 (identical images give +inf)."""
    return peak_signal_noise_ratio(
        output.double(), target.double(), data_range=255.0, reduction="none", dim=(1, 2, 3)
    )


def ssim(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per image SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5)."""
    out = structural_similarity_index_measure(
        output.double(), target.double(), data_range=255.0, reduction="none"
    )
    assert isinstance(out, torch.Tensor)  # a tuple only with return_full_image
    return out


class LPIPS:
    """LPIPS distance with the AlexNet backbone (torchmetrics' implementation), when its ImageNet
    weights are in the torch hub cache; we never download them from inside an evaluation."""

    def __init__(self, device: str | torch.device = "cpu") -> None:
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity
        from torchvision.models import AlexNet_Weights

        url = AlexNet_Weights.DEFAULT.url
        cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]
        if not cached.is_file():
            raise FeatureWeightsMissing(
                f"LPIPS needs torchvision's AlexNet weights at {cached}; download {url} there "
                "(or leave lpips out of --metrics)"
            )
        self.device = torch.device(device)
        self.metric = LearnedPerceptualImagePatchSimilarity("alex", reduction="mean").to(
            self.device
        )

    @torch.inference_mode()
    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        def prep(x: torch.Tensor) -> torch.Tensor:
            x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
            return (x.float() / 127.5 - 1).to(self.device)

        net = self.metric.net
        return net(prep(output), prep(target)).flatten().cpu()


def to_uint8(x: np.ndarray, size: int | None = None) -> np.ndarray:
    """A float HxWxC image in [0, 1] as 8-bit HxWxC, optionally resized (bicubic) to a square."""
    arr = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
    if size is None or arr.shape[:2] == (size, size):
        return arr
    img = Image.fromarray(arr.squeeze(-1) if arr.shape[-1] == 1 else arr)
    out = np.array(img.resize((size, size), Image.Resampling.BICUBIC))
    return out[..., None] if out.ndim == 2 else out
