"""U-Net generator (Isola et al. 2017, section 3.1.1), written as an explicit encoder/decoder.

Encoder level i halves the resolution (conv 4x4 stride 2); decoder level i doubles it and, with
``skip=True``, sees the encoder's level-i features concatenated to its input. ``skip=False`` is
the paper's encoder-decoder ablation. Dropout sits in the 8*ngf-wide decoder levels between the
bottleneck and level 4 (three of them in unet_256), where the paper puts its noise.
"""

from __future__ import annotations

import torch
from torch import nn

from i2i.config import BatchStats, GeneratorConfig, Norm
from i2i.errors import ConfigError
from i2i.nets.layers import conv_bias, norm_layer
from i2i.nets.registry import GENERATORS


class UNetGenerator(nn.Module):
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: Norm = "instance",
        dropout: float = 0.5,
        skip: bool = True,
        batch_stats: BatchStats = "running",
    ) -> None:
        super().__init__()
        if num_downs < 2:
            raise ConfigError(
                f"model.generator.depth {num_downs}: a U-Net needs at least 2 downsamplings"
            )
        self.num_downs, self.skip = num_downs, skip
        make_norm, bias = norm_layer(norm, batch_stats), conv_bias(norm)
        # channels after each encoder level: ngf, 2ngf, 4ngf, 8ngf, 8ngf, ...
        widths = [ngf * min(2**i, 8) for i in range(num_downs)]

        self.down = nn.ModuleList()
        for i, width in enumerate(widths):
            layers: list[nn.Module] = []
            if i > 0:
                layers.append(nn.LeakyReLU(0.2, inplace=False))
            c_in = in_channels if i == 0 else widths[i - 1]
            layers.append(nn.Conv2d(c_in, width, 4, 2, 1, bias=bias or i == 0))
            if 0 < i < num_downs - 1:  # no norm on the input level nor the 1x1 bottleneck
                layers.append(make_norm(width))
            self.down.append(nn.Sequential(*layers))

        # decoder level i mirrors encoder level i and runs from the innermost (i = n-1) outward
        self.up = nn.ModuleList()
        for i in range(num_downs):
            innermost, outermost = i == num_downs - 1, i == 0
            c_in = widths[i] * (1 if innermost or not skip else 2)
            c_out = out_channels if outermost else widths[i - 1]
            layers = [nn.ReLU(inplace=False)]
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias or outermost))
            if outermost:
                layers.append(nn.Tanh())
            else:
                layers.append(make_norm(c_out))
                if dropout > 0 and 4 <= i < num_downs - 1:
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 2**self.num_downs

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features after each encoder level, outermost first."""
        feats = []
        for level in self.down:
            x = level(x)
            feats.append(x)
        return feats

    def features(self, x: torch.Tensor, layers: list[int]) -> list[torch.Tensor]:
        """Outputs of encoder levels ``layers`` (0 = the outermost)."""
        if max(layers) >= self.num_downs:
            raise ValueError(f"level {max(layers)} does not exist; this U-Net has {self.num_downs}")
        feats = self.encode(x)
        return [feats[i] for i in layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encode(x)
        y = feats[-1]
        for i in reversed(range(self.num_downs)):
            if i < self.num_downs - 1 and self.skip:
                y = torch.cat([feats[i], y], dim=1)
            y = self.up[i](y)
        return y


def _unet(num_downs: int) -> None:
    """Register the U-Net whose ``num_downs`` downsamplings take a 2^num_downs px input to a
    1x1 bottleneck (``depth`` overrides it)."""

    @GENERATORS.register(f"unet_{2**num_downs}")
    def build(cfg: GeneratorConfig, c_in: int, c_out: int | None) -> UNetGenerator:
        assert c_out is not None
        depth = cfg.depth or num_downs
        return UNetGenerator(
            c_in, c_out, depth, cfg.ngf, cfg.norm, cfg.dropout, cfg.skip, cfg.batch_stats
        )


_unet(7)  # unet_128
_unet(8)  # unet_256
