"""Generators laid out as the reference pix2pix/CycleGAN code lays them out, for the parity tests
of ``i2i import`` and the reference-style timing script.

The reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix, ``models/networks.py``)
nests its U-Net as recursive skip-connection blocks (state-dict keys ``model.model.1.model.3.``
...) and keeps its ResNet generator in one ``model`` Sequential (``model.10.conv_block.1.``
...). These classes, written from its published architecture, put the same layers at the same
positions, so they load that code's ``latest_net_G.pth`` files as they are and save files in
that format; ``tests/test_import.py`` checks them against outputs of the reference code itself
(``tests/fixtures/official``). In-place activations as there: in the U-Net the skip connection
sees the LeakyReLU'd features, which the decoder's ReLU makes no different from i2i's.
"""

from __future__ import annotations

import torch
from torch import nn


def norm(kind: str, channels: int) -> nn.Module:
    """The reference's norms: batch (affine, running statistics), instance (neither), none."""
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, norm_kind: str, dropout: bool, bias: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias),
                                   norm(norm_kind, dim), nn.ReLU(True)]  # fmt: skip
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm(norm_kind, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """``netG resnet_{n_blocks}blocks`` with reflection padding (the reference's default)."""

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, norm_kind: str = "batch",
                 dropout: bool = False, n_blocks: int = 9) -> None:  # fmt: skip
        super().__init__()
        bias = norm_kind == "instance"  # the reference's use_bias: no bias before batch norm
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias),
                                   norm(norm_kind, ngf), nn.ReLU(True)]  # fmt: skip
        for mult in (1, 2):
            c = ngf * mult
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), norm(norm_kind, 2 * c),
                       nn.ReLU(True)]  # fmt: skip
        layers += [ResnetBlock(4 * ngf, norm_kind, dropout, bias) for _ in range(n_blocks)]
        for mult in (4, 2):
            c = ngf * mult
            layers += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=bias),
                       norm(norm_kind, c // 2), nn.ReLU(True)]  # fmt: skip
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UnetSkipConnectionBlock(nn.Module):
    """One level of the recursive U-Net: down, the inner levels (``submodule``), up; the
    output is the input concatenated with the up path's (except at the outermost level)."""

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None,
                 submodule: nn.Module | None = None, outermost: bool = False,
                 innermost: bool = False, norm_kind: str = "batch",
                 dropout: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.outermost = outermost
        bias = norm_kind == "instance"
        down = nn.Conv2d(input_nc or outer_nc, inner_nc, 4, 2, 1, bias=bias)
        layers: list[nn.Module]
        if outermost:
            assert submodule is not None
            up = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1)
            layers = [down, submodule, nn.ReLU(True), up, nn.Tanh()]
        elif innermost:
            up = nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, norm(norm_kind, outer_nc)]
        else:
            assert submodule is not None
            up = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, norm(norm_kind, inner_nc), submodule,
                      nn.ReLU(True), up, norm(norm_kind, outer_nc)]  # fmt: skip
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """``netG unet_128`` (num_downs 7) or ``unet_256`` (8), built from the innermost level out;
    dropout in the ``num_downs - 5`` levels of 8 ngf next to the innermost one."""

    def __init__(self, input_nc: int, output_nc: int, num_downs: int = 8, ngf: int = 64,
                 norm_kind: str = "batch", dropout: bool = False) -> None:  # fmt: skip
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm_kind=norm_kind)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block,
                                            norm_kind=norm_kind, dropout=dropout)  # fmt: skip
        for mult in (4, 2, 1):
            block = UnetSkipConnectionBlock(ngf * mult, ngf * mult * 2, submodule=block,
                                            norm_kind=norm_kind)  # fmt: skip
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc, block, outermost=True,
                                             norm_kind=norm_kind)  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def define_g(netg: str, input_nc: int = 3, output_nc: int = 3, ngf: int = 64,
             norm_kind: str = "batch", dropout: bool = False) -> nn.Module:  # fmt: skip
    """The generator the reference's ``--netG`` names: resnet_9blocks, resnet_6blocks, unet_128,
    unet_256 (weights as PyTorch initializes them)."""
    if netg.startswith("resnet_"):
        n_blocks = int(netg.removeprefix("resnet_").removesuffix("blocks"))
        return ResnetGenerator(input_nc, output_nc, ngf, norm_kind, dropout, n_blocks)
    num_downs = {"unet_128": 7, "unet_256": 8}[netg]
    return UnetGenerator(input_nc, output_nc, num_downs, ngf, norm_kind, dropout)
