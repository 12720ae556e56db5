"""PatchGAN discriminator (Isola et al. 2017, section 3.2.2) and its 1x1 "PixelGAN" extreme.

The discriminator classifies each N x N patch as real or fake; N, its receptive field, grows with
``n_layers``: 1 -> 16 px, 3 -> 70 px (the paper's default), 5 -> 286 px. It is conditional in
pix2pix: its input is the source image and the (real or generated) target, concatenated.
"""

from __future__ import annotations

import torch
from torch import nn

from i2i.config import DiscriminatorConfig, Norm
from i2i.nets.layers import conv_bias, norm_layer
from i2i.nets.registry import DISCRIMINATORS


def receptive_field(net: nn.Module) -> int:
    """Receptive field in input pixels of one output unit, from the net's convolutions in order.

    Works backwards from one output unit: r <- (r - 1) * stride + kernel for each layer.
    """
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    r = 1
    for conv in reversed(convs):
        k, s = conv.kernel_size[0], conv.stride[0]
        r = (r - 1) * s + k
    return r


class PatchDiscriminator(nn.Module):
    def __init__(
        self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: Norm = "instance"
    ) -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for n in range(1, n_layers + 1):
            prev, width = width, ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last widening conv keeps the resolution
            layers += [
                nn.Conv2d(prev, width, 4, stride, 1, bias=bias),
                make_norm(width),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(width, 1, 4, 1, 1))  # one real/fake logit per patch
        self.model = nn.Sequential(*layers)
        self.n_layers = n_layers
        self.receptive_field = receptive_field(self.model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def extra_repr(self) -> str:
        return f"n_layers={self.n_layers}, receptive_field={self.receptive_field}px"


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: judges each pixel's colour alone (receptive field 1 px)."""

    def __init__(self, in_channels: int, ndf: int = 64, norm: Norm = "instance") -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        self.model = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, 2 * ndf, 1, bias=bias),
            make_norm(2 * ndf),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * ndf, 1, 1),
        )
        self.receptive_field = receptive_field(self.model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def extra_repr(self) -> str:
        return f"receptive_field={self.receptive_field}px"


@DISCRIMINATORS.register("patch")
def patch(cfg: DiscriminatorConfig, c_in: int, c_out: int | None) -> PatchDiscriminator:
    return PatchDiscriminator(c_in, cfg.ndf, cfg.n_layers, cfg.norm)


@DISCRIMINATORS.register("pixel")
def pixel(cfg: DiscriminatorConfig, c_in: int, c_out: int | None) -> PixelDiscriminator:
    return PixelDiscriminator(c_in, cfg.ndf, cfg.norm)
