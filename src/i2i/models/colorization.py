"""Colorization: pix2pix in CIE Lab, as the reference pix2pix/CycleGAN repository's colorization
model (the pix2pix paper colorizes ImageNet photos this way, section 4.7).

Each colour image is split into its lightness L and chroma ab (``nets.colorizer``); the
generator maps L to ab and a conditional PatchGAN judges (L, ab) pairs, with pix2pix's losses:
    L = L_cGAN(G, D) + lambda * L_recon(G(L), ab)
The model card's G is that generator inside a :class:`~i2i.nets.colorizer.Colorizer`: RGB in,
the input's L with the predicted ab out, as RGB.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from i2i.config import ColorizationConfig, ColorizerConfig, DataConfig
from i2i.errors import ConfigError
from i2i.models.base import MODELS, DataKind, Update, check_translation_size
from i2i.models.pix2pix import Pix2Pix
from i2i.nets.colorizer import NORMALIZATION, Colorizer, rgb_to_l_ab, zero_chroma
from i2i.runs.card import NetSpec


@MODELS.register("colorization")
class Colorization(Pix2Pix):
    data: ClassVar[DataKind] = "images"  # any colour images; the gray input is made from each
    normalization: ClassVar[str] = NORMALIZATION

    def __init__(
        self, cfg: ColorizationConfig, in_channels: int = 3, out_channels: int = 3
    ) -> None:
        if (in_channels, out_channels) != (3, 3):
            raise ConfigError(
                "colorization reads colour images and makes the gray input from each: leave "
                f"--input-nc and --output-nc at 3 (got {in_channels} and {out_channels})"
            )
        super().__init__(cfg, in_channels, out_channels)

    @property
    def colorizer(self) -> Colorizer:
        """G, typed: the colorizer whose ``generator`` maps L to ab."""
        assert isinstance(self.G, Colorizer)
        return self.G

    def training_step(self, batch: dict[str, Any], update: Update) -> dict[str, torch.Tensor]:
        lightness, ab = rgb_to_l_ab(batch["image"])
        return self.conditional_step(self.colorizer.generator, lightness, ab, update)

    def check_image_size(self, height: int, width: int, data: DataConfig) -> None:
        # the generator inside the colorizer, whose depth the advice may change
        generator = self.colorizer.generator
        check_translation_size(
            generator, self.cfg.generator, self.cfg.discriminator, height, width, data
        )

    @torch.no_grad()
    def preview(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Named image columns for a sample grid: gray input | output | original."""
        image = batch["image"]
        return {"gray input": zero_chroma(image), "output": self.G(image), "original": image}

    def net_specs(self) -> dict[str, NetSpec]:
        """G as the card holds it, the RGB -> RGB colorizer around the L -> ab generator; D
        judges (L, ab) pairs."""
        return {
            "G": NetSpec("generator", ColorizerConfig(generator=self.cfg.generator), 3, 3),
            "D": NetSpec("discriminator", self.cfg.discriminator, 1 + 2),
        }
