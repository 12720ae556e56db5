"""Colorization in CIE Lab: the conversions and the network that colorizes RGB images.

A colorization generator sees the lightness L of an image and predicts its two chroma channels
a and b; the output is the input's L with the predicted a, b, converted back to RGB, so the
brightness of the input is kept. Conversions use ``kornia.color`` (CIE Lab, D65 white, 2°
observer, the formulas of scikit-image's ``rgb2lab``) on sRGB in [0, 1].

Normalization, the reference pix2pix/CycleGAN repository's (its colorization dataset and model),
so that its colorization generators keep their meaning here:

    network L  = L / 50 - 1     L in 0..100      -> [-1, 1]
    network ab = (a, b) / 110   sRGB's a, b lie in about -108..98 -> about [-1, 1]

:class:`Colorizer` wraps the L -> ab generator so that it maps RGB in [-1, 1] to RGB in [-1, 1]
like every image-to-image generator: translation, tiling, ONNX export (the Lab conversion is
inside the graph), serving and evaluation use it unchanged.
"""

from __future__ import annotations

import torch
from kornia.color import lab_to_rgb, linear_rgb_to_rgb, rgb_to_lab, rgb_to_linear_rgb
from torch import nn

from i2i.config import ColorizerConfig
from i2i.errors import ConfigError
from i2i.nets.registry import GENERATORS
from i2i.nets.resnet import ResnetGenerator
from i2i.nets.unet import UNetGenerator

L_SCALE = 50.0  # network L = L / 50 - 1
AB_SCALE = 110.0  # network ab = ab / 110
NORMALIZATION = ColorizerConfig.NORMALIZATION


def rgb_to_l_ab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nx3xHxW RGB in [-1, 1] -> (L Nx1xHxW, ab Nx2xHxW), both in the networks' scale (module
    docstring): L in [-1, 1], ab about [-1, 1]."""
    lab = rgb_to_lab(((rgb + 1) / 2).clamp(0, 1))
    return lab[:, :1] / L_SCALE - 1, lab[:, 1:] / AB_SCALE


def l_ab_to_rgb(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """(L Nx1xHxW, ab Nx2xHxW) in the networks' scale -> Nx3xHxW RGB in [-1, 1].

    Colours outside the sRGB gamut are desaturated at constant luminance rather than clipped
    per channel (clipping changes lightness, by up to tens of L units for saturated colours):
    in linear RGB the colour c is moved towards the gray y of the same luminance, to
    y + t (c - y) with the largest t in [0, 1] that keeps every channel in [0, 1]. Luminance is
    linear in linear RGB, so every point of that line has the colour's L. kornia has no gamut
    mapping, hence these few lines.
    """
    lab = torch.cat([(lightness + 1) * L_SCALE, ab * AB_SCALE], dim=1)
    colour = rgb_to_linear_rgb(lab_to_rgb(lab, clip=False))
    gray = rgb_to_linear_rgb(lab_to_rgb(torch.cat([lab[:, :1], torch.zeros_like(ab)], 1)))[:, :1]
    reach_one = (1 - gray) / (colour - gray).clamp(min=1e-6)  # t where a channel reaches 1
    reach_zero = gray / (gray - colour).clamp(min=1e-6)  # t where a channel reaches 0
    limit = torch.where(colour > 1, reach_one, torch.where(colour < 0, reach_zero, 1.0))
    t = limit.amin(dim=1, keepdim=True).clamp(0, 1)
    linear = (gray + t * (colour - gray)).clamp(0, 1)  # the clamp only trims rounding
    return linear_rgb_to_rgb(linear) * 2 - 1


def zero_chroma(rgb: torch.Tensor) -> torch.Tensor:
    """Nx3xHxW RGB in [-1, 1] -> its gray of the same L (a = b = 0), RGB in [-1, 1]: what the
    colorizer sees, and the "predict no colour" baseline."""
    lightness, ab = rgb_to_l_ab(rgb)
    return l_ab_to_rgb(lightness, torch.zeros_like(ab))


class Colorizer(nn.Module):
    """RGB in [-1, 1] -> L -> ``generator`` -> ab -> RGB in [-1, 1] (Nx3xHxW both ways).

    Only the lightness of the input is used, so a gray image (repeated to 3 channels) and a
    colour one of the same lightness give the same output; the output's L is the input's.
    """

    def __init__(self, generator: UNetGenerator | ResnetGenerator) -> None:
        super().__init__()
        self.generator = generator  # L (Nx1xHxW) -> ab (Nx2xHxW), networks' scale

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this (the inner generator's)."""
        return self.generator.size_multiple

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        lightness, _ = rgb_to_l_ab(rgb)
        return l_ab_to_rgb(lightness, self.generator(lightness))


@GENERATORS.register("colorizer")
def colorizer(cfg: ColorizerConfig, c_in: int, c_out: int | None) -> Colorizer:
    """RGB -> RGB (3 -> 3 channels) around an L -> ab generator of ``cfg.generator``."""
    if (c_in, c_out) != (3, 3):
        raise ConfigError(
            f"a colorizer maps RGB to RGB (3 -> 3 channels), not {c_in} -> {c_out}; "
            "colorization reads colour images and makes the gray input itself"
        )
    generator = GENERATORS.get(cfg.generator.kind)(cfg.generator, 1, 2)
    assert isinstance(generator, UNetGenerator | ResnetGenerator)
    return Colorizer(generator)
