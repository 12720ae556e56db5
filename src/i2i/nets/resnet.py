"""ResNet generator (Johnson et al. 2016, as used by CycleGAN): c7s1-64, d128, d256,
``n_blocks`` residual blocks, u128, u64, c7s1-out. Reflection padding avoids border artifacts."""

from __future__ import annotations

import torch
from torch import nn

from i2i.config import BatchStats, GeneratorConfig, Norm
from i2i.errors import ConfigError
from i2i.nets.layers import conv_bias, norm_layer
from i2i.nets.registry import GENERATORS


class ResidualBlock(nn.Module):
    def __init__(
        self, channels: int, norm: Norm, dropout: float, batch_stats: BatchStats = "running"
    ) -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm, batch_stats), conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            make_norm(channels),
            nn.ReLU(True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias)]
        layers.append(make_norm(channels))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    size_multiple = 4  # two stride-2 downsamplings

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        n_blocks: int = 9,
        ngf: int = 64,
        norm: Norm = "instance",
        dropout: float = 0.0,
        batch_stats: BatchStats = "running",
    ) -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm, batch_stats), conv_bias(norm)
        stem: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=bias),
            make_norm(ngf),
            nn.ReLU(True),
        ]
        for mult in (1, 2):
            c = ngf * mult
            stem += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), make_norm(2 * c), nn.ReLU(True)]
        self.encoder = nn.Sequential(*stem)
        self.blocks = nn.Sequential(
            *[ResidualBlock(4 * ngf, norm, dropout, batch_stats) for _ in range(n_blocks)]
        )
        head: list[nn.Module] = []
        for mult in (4, 2):
            c = ngf * mult
            head += [
                nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=bias),
                make_norm(c // 2),
                nn.ReLU(True),
            ]
        head += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.decoder = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.blocks(self.encoder(x)))

    def features(self, x: torch.Tensor, layers: list[int]) -> list[torch.Tensor]:
        """Outputs of encoder layers ``layers``, counting the stem's modules (0-9) then the
        residual blocks (10...), the numbering CUT's ``nce_layers`` use (0 = padded input)."""
        modules = [*self.encoder, *self.blocks]
        if max(layers) >= len(modules):
            raise ValueError(f"layer {max(layers)} does not exist; this encoder has {len(modules)}")
        feats = []
        for i, module in enumerate(modules[: max(layers) + 1]):
            x = module(x)
            if i in layers:
                feats.append(x)
        return feats


def _resnet(n_blocks: int) -> None:
    """Register the ResNet generator with ``n_blocks`` residual blocks (``depth`` overrides)."""

    @GENERATORS.register(f"resnet_{n_blocks}blocks")
    def build(cfg: GeneratorConfig, c_in: int, c_out: int | None) -> ResnetGenerator:
        assert c_out is not None
        if not cfg.skip:
            raise ConfigError(
                f"--no-skip (model.generator.skip: false) is a U-Net option: it removes a "
                f"U-Net's skip connections, and {cfg.kind} has none; use it with "
                "--generator unet_128 or unet_256"
            )
        n = cfg.depth or n_blocks
        return ResnetGenerator(c_in, c_out, n, cfg.ngf, cfg.norm, cfg.dropout, cfg.batch_stats)


_resnet(6)
_resnet(9)
