"""DCGAN generator and discriminator (Radford et al. 2016): all-convolutional, batch norm,
ReLU in the generator, LeakyReLU in the discriminator. Sizes 4 * 2^k (8, 16, 32, 64, 128...)
start from a 4x4 map as in the paper; 7 * 2^k (14, 28, 56...) from a 7x7 map, which fits MNIST's
28x28 without padding."""

from __future__ import annotations

import torch
from torch import nn

from i2i.config import DCGANDiscriminatorConfig, DCGANGeneratorConfig
from i2i.errors import ConfigError
from i2i.nets.registry import DISCRIMINATORS, GENERATORS


def dcgan_plan(size: int) -> tuple[int, int]:
    """(start side, number of doublings) that reach ``size``."""
    for start in (4, 7):
        ups = 0
        while start * 2**ups < size:
            ups += 1
        if ups >= 1 and start * 2**ups == size:
            return start, ups
    below = max((s * 2**k for s in (4, 7) for k in range(1, 16) if s * 2**k <= size), default=8)
    raise ConfigError(
        f"--crop-size {size}: a DCGAN image size must be 4 or 7 times a power of two (8, 14, "
        f"16, 28, 32, 56, 64 ...), and {size} is not 4 or 7 times a power of two; use "
        f"--crop-size {below} (with --preprocess resize for images of another size)"
    )


class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, size: int, ngf: int = 64) -> None:
        super().__init__()
        start, ups = dcgan_plan(size)
        width = ngf * 2 ** (ups - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, width, start, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(ups - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.latent_dim = latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z.view(z.shape[0], self.latent_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    def __init__(self, channels: int, size: int, ndf: int = 64) -> None:
        super().__init__()
        start, ups = dcgan_plan(size)
        layers: list[nn.Module] = [
            nn.Conv2d(channels, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, True),
        ]
        width = ndf
        for _ in range(ups - 1):
            layers += [
                nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False),
                nn.BatchNorm2d(2 * width),
                nn.LeakyReLU(0.2, True),
            ]
            width *= 2
        layers.append(nn.Conv2d(width, 1, start, 1, 0, bias=False))  # one real/fake logit
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).flatten(1)


@GENERATORS.register("dcgan")
def dcgan_generator(cfg: DCGANGeneratorConfig, c_in: int, c_out: int | None) -> DCGANGenerator:
    """``c_in`` is the latent vector's length, ``c_out`` the image's channels."""
    assert c_out is not None
    return DCGANGenerator(c_in, c_out, cfg.size, cfg.ngf)


@DISCRIMINATORS.register("dcgan")
def dcgan_discriminator(
    cfg: DCGANDiscriminatorConfig, c_in: int, c_out: int | None
) -> DCGANDiscriminator:
    return DCGANDiscriminator(c_in, cfg.size, cfg.ndf)
