"""pix2pix (Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", 2017).

G maps a source image x to a target y; a conditional PatchGAN D judges (x, y) pairs.
    L = L_cGAN(G, D) + lambda * L_recon(G)      (lambda = 100, L_recon = L1 in the paper)
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from i2i.config import DataConfig, Pix2PixConfig
from i2i.losses import GANLoss, discriminator_loss, reconstruction_loss
from i2i.models.base import (
    MODELS,
    DataKind,
    Model,
    Update,
    check_translation_size,
    set_requires_grad,
)
from i2i.nets import Generator, init_weights
from i2i.runs.card import NetSpec

RECON_NAMES = {"l1": "G_L1", "l2": "G_L2", "l1+l2": "G_L1L2"}


@MODELS.register("pix2pix")
class Pix2Pix(Model):
    data: ClassVar[DataKind] = "paired"

    def __init__(self, cfg: Pix2PixConfig, in_channels: int = 3, out_channels: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        self.in_channels, self.out_channels = in_channels, out_channels
        specs = self.net_specs()  # the card's networks, built as a checkpoint rebuilds them
        G = specs["G"].build()
        assert isinstance(G, Generator)
        self.G: Generator = init_weights(G, cfg.init, cfg.init_gain)
        self.D = init_weights(specs["D"].build(), cfg.init, cfg.init_gain)
        self.gan = GANLoss(cfg.gan_mode)

    def param_groups(self) -> dict[str, list[nn.Module]]:
        return {"G": [self.G], "D": [self.D]}

    def training_step(self, batch: dict[str, Any], update: Update) -> dict[str, torch.Tensor]:
        return self.conditional_step(self.G, batch["A"], batch["B"], update)

    def conditional_step(
        self, G: nn.Module, real_A: torch.Tensor, real_B: torch.Tensor, update: Update
    ) -> dict[str, torch.Tensor]:
        """One step of the paper's losses for generator ``G``: real_A -> real_B (NCHW)."""
        fake_B = G(real_A)

        # D: real pairs (x, y) are real, generated pairs (x, G(x)) are fake
        set_requires_grad([self.D], True)
        loss_D, terms = discriminator_loss(
            self.gan,
            self.D,
            torch.cat([real_A, real_B], dim=1),
            torch.cat([real_A, fake_B], dim=1),
            self.cfg.lambda_gp,
        )
        update("D", loss_D)

        # G: fool D on (x, G(x)) and stay close to y
        set_requires_grad([self.D], False)
        loss_G_GAN = self.gan.generator_loss(self.D(torch.cat([real_A, fake_B], dim=1)))
        loss_recon = reconstruction_loss(self.cfg.recon_loss, fake_B, real_B, self.cfg.recon_mix)
        update("G", loss_G_GAN + self.cfg.lambda_recon * loss_recon)

        losses = {"D" + suffix: value for suffix, value in terms.items()}
        losses.update({"G_GAN": loss_G_GAN, RECON_NAMES[self.cfg.recon_loss]: loss_recon})
        return {name: value.detach() for name, value in losses.items()}

    @torch.no_grad()
    def preview(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Named image columns for a sample grid: input | output | target."""
        return {"input": batch["A"], "output": self.G(batch["A"]), "target": batch["B"]}

    def check_image_size(self, height: int, width: int, data: DataConfig) -> None:
        check_translation_size(
            self.G, self.cfg.generator, self.cfg.discriminator, height, width, data
        )

    def net_specs(self) -> dict[str, NetSpec]:
        """What a checkpoint needs to rebuild each network without the training config."""
        c_in, c_out = self.in_channels, self.out_channels
        return {
            "G": NetSpec("generator", self.cfg.generator, c_in, c_out),
            "D": NetSpec("discriminator", self.cfg.discriminator, c_in + c_out),
        }

    def translate_nets(self, direction: str) -> dict[str, str]:
        """pix2pix learns the one direction its data was given in."""
        return {direction: "G"}
