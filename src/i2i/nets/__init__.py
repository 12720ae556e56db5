"""Networks: generators and discriminators built by name from their configs, through one
registry per role (in the manner of timm: ``build_generator(GeneratorConfig(kind="unet_256"),
3, 3)``). Every network is built from stock PyTorch layers; :mod:`i2i.kernels` can swap faster
CPU kernels in afterwards."""

from __future__ import annotations

from torch import nn

from i2i.config import DiscriminatorConfig, GeneratorConfig, NetConfig
from i2i.nets.colorizer import Colorizer
from i2i.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from i2i.nets.layers import init_weights, norm_layer
from i2i.nets.patch_mlp import PatchSampleMLP
from i2i.nets.patchgan import PatchDiscriminator, PixelDiscriminator, receptive_field
from i2i.nets.registry import DISCRIMINATORS, GENERATORS, HEADS, ROLES
from i2i.nets.resnet import ResnetGenerator
from i2i.nets.unet import UNetGenerator

Generator = UNetGenerator | ResnetGenerator | Colorizer
"""Every image-to-image generator is fully convolutional and says which input sizes it takes
(``size_multiple``)."""


def build_generator(
    cfg: GeneratorConfig, in_channels: int, out_channels: int
) -> UNetGenerator | ResnetGenerator:
    """Generator ``cfg.kind`` mapping NxC_inxHxW images in [-1, 1] to NxC_outxHxW in [-1, 1].
    Raises ConfigError for an unknown kind or an impossible option."""
    net = GENERATORS.get(cfg.kind)(cfg, in_channels, out_channels)
    assert isinstance(net, UNetGenerator | ResnetGenerator)
    return net


def build_discriminator(cfg: DiscriminatorConfig, in_channels: int) -> nn.Module:
    """Discriminator ``cfg.kind``: NxC_inxHxW images -> real/fake logits."""
    return DISCRIMINATORS.get(cfg.kind)(cfg, in_channels, None)


def build_net(role: str, cfg: NetConfig, in_channels: int, out_channels: int | None) -> nn.Module:
    """Any network of a model card: the builder of ``cfg.kind`` in the registry of ``role``
    (``generator``, ``discriminator``, ``patch projection head``)."""
    return ROLES[role].get(cfg.kind)(cfg, in_channels, out_channels)


__all__ = [
    "DISCRIMINATORS",
    "GENERATORS",
    "HEADS",
    "Colorizer",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "Generator",
    "PatchDiscriminator",
    "PatchSampleMLP",
    "PixelDiscriminator",
    "ResnetGenerator",
    "UNetGenerator",
    "build_discriminator",
    "build_generator",
    "build_net",
    "init_weights",
    "norm_layer",
    "receptive_field",
]
