"""Networks: generators and discriminators, built by name from their configs (a registry in the
manner of timm: ``build_generator(GeneratorConfig(kind="unet_256"), 3, 3)``)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from i2i.config import DiscriminatorConfig, GeneratorConfig
from i2i.nets.layers import init_weights, norm_layer
from i2i.nets.patchgan import PatchDiscriminator, PixelDiscriminator, receptive_field
from i2i.nets.resnet import ResnetGenerator
from i2i.nets.unet import UNetGenerator

Generator = UNetGenerator | ResnetGenerator
"""Every generator is fully convolutional and says which input sizes it takes (size_multiple)."""


def _unet(depth: int) -> Callable[[GeneratorConfig, int, int], Generator]:
    def build(cfg: GeneratorConfig, c_in: int, c_out: int) -> Generator:
        return UNetGenerator(
            c_in, c_out, cfg.depth or depth, cfg.ngf, cfg.norm, cfg.dropout, cfg.skip
        )

    return build


def _resnet(blocks: int) -> Callable[[GeneratorConfig, int, int], Generator]:
    def build(cfg: GeneratorConfig, c_in: int, c_out: int) -> Generator:
        if not cfg.skip:
            raise ValueError("skip=False is a U-Net option; ResNet generators have no U-Net skips")
        return ResnetGenerator(c_in, c_out, cfg.depth or blocks, cfg.ngf, cfg.norm, cfg.dropout)

    return build


GENERATORS: dict[str, Callable[[GeneratorConfig, int, int], Generator]] = {
    "unet_128": _unet(7),  # 128 px input -> 1x1 bottleneck
    "unet_256": _unet(8),  # 256 px input -> 1x1 bottleneck
    "resnet_6blocks": _resnet(6),
    "resnet_9blocks": _resnet(9),
}


def build_generator(cfg: GeneratorConfig, in_channels: int, out_channels: int) -> Generator:
    if cfg.kind not in GENERATORS:
        raise ValueError(f"unknown generator {cfg.kind!r}; choose from {sorted(GENERATORS)}")
    return GENERATORS[cfg.kind](cfg, in_channels, out_channels)


def build_discriminator(cfg: DiscriminatorConfig, in_channels: int) -> nn.Module:
    if cfg.kind == "patch":
        return PatchDiscriminator(in_channels, cfg.ndf, cfg.n_layers, cfg.norm)
    if cfg.kind == "pixel":
        return PixelDiscriminator(in_channels, cfg.ndf, cfg.norm)
    raise ValueError(f"unknown discriminator {cfg.kind!r}; use patch or pixel")


__all__ = [
    "GENERATORS",
    "Generator",
    "PatchDiscriminator",
    "PixelDiscriminator",
    "ResnetGenerator",
    "UNetGenerator",
    "build_discriminator",
    "build_generator",
    "init_weights",
    "norm_layer",
    "receptive_field",
]
