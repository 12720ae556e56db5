"""pix2pix (Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", 2017).

G maps a source image x to a target y; a conditional PatchGAN D judges (x, y) pairs.
    L = L_cGAN(G, D) + lambda * L_recon(G)      (lambda = 100, L_recon = L1 in the paper)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from i2i.config import ConfigError, Pix2PixConfig, TrainConfig
from i2i.losses import GANLoss, gradient_penalty, reconstruction_loss
from i2i.nets import build_discriminator, build_generator, init_weights

RECON_NAMES = {"l1": "G_L1", "l2": "G_L2", "l1+l2": "G_L1L2"}


class Pix2Pix(nn.Module):
    kind = "pix2pix"

    def __init__(self, cfg: Pix2PixConfig, in_channels: int = 3, out_channels: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        self.in_channels, self.out_channels = in_channels, out_channels
        self.G = init_weights(
            build_generator(cfg.generator, in_channels, out_channels), cfg.init, cfg.init_gain
        )
        self.D = init_weights(
            build_discriminator(cfg.discriminator, in_channels + out_channels),
            cfg.init,
            cfg.init_gain,
        )
        self.gan = GANLoss(cfg.gan_mode)

    def make_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        betas = (train.beta1, train.beta2)
        return {
            "G": torch.optim.Adam(self.G.parameters(), lr=train.lr, betas=betas),
            "D": torch.optim.Adam(self.D.parameters(), lr=train.lr, betas=betas),
        }

    def training_step(
        self, batch: dict[str, Any], opt: dict[str, torch.optim.Optimizer]
    ) -> dict[str, torch.Tensor]:
        real_A, real_B = batch["A"], batch["B"]
        fake_B = self.G(real_A)

        # D: real pairs (x, y) are real, generated pairs (x, G(x)) are fake
        self.D.requires_grad_(True)
        real_AB = torch.cat([real_A, real_B], dim=1)
        fake_AB = torch.cat([real_A, fake_B.detach()], dim=1)
        loss_D = self.gan.discriminator_loss(self.D(real_AB), self.D(fake_AB))
        losses = {"D": loss_D}
        if self.cfg.gan_mode == "wgan-gp":
            losses["D_GP"] = gradient_penalty(self.D, real_AB, fake_AB)
            loss_D = loss_D + self.cfg.lambda_gp * losses["D_GP"]
        opt["D"].zero_grad(set_to_none=True)
        loss_D.backward()
        opt["D"].step()

        # G: fool D on (x, G(x)) and stay close to y
        self.D.requires_grad_(False)
        loss_G_GAN = self.gan.generator_loss(self.D(torch.cat([real_A, fake_B], dim=1)))
        loss_recon = reconstruction_loss(self.cfg.recon_loss, fake_B, real_B, self.cfg.recon_mix)
        loss_G = loss_G_GAN + self.cfg.lambda_recon * loss_recon
        opt["G"].zero_grad(set_to_none=True)
        loss_G.backward()
        opt["G"].step()

        losses.update({"G_GAN": loss_G_GAN, RECON_NAMES[self.cfg.recon_loss]: loss_recon})
        return {name: value.detach() for name, value in losses.items()}

    @torch.no_grad()
    def preview(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Named image columns for a sample grid: input | output | target."""
        return {"input": batch["A"], "output": self.G(batch["A"]), "target": batch["B"]}

    def check_image_size(self, height: int, width: int) -> None:
        """Fail early, with the fix, when training images do not fit the networks."""
        m = self.G.size_multiple
        if height % m or width % m:
            raise ConfigError(
                f"training images are {width}x{height}, but generator {self.cfg.generator.kind} "
                f"needs sides that are multiples of {m}; choose a crop size that is, "
                "or a shallower generator (unet_128, or --depth)"
            )
        if self.cfg.discriminator.kind == "patch":
            n = self.cfg.discriminator.n_layers
            if min(height, width) // 2**n < 3:
                raise ConfigError(
                    f"training images of {width}x{height} are too small for a PatchGAN with "
                    f"n_layers={n}; it needs sides of at least {3 * 2**n} px"
                )

    def describe_nets(self) -> dict[str, Any]:
        """What a checkpoint needs to rebuild each network without the training config."""
        return {
            "G": {
                "role": "generator",
                "config": dataclasses.asdict(self.cfg.generator),
                "in_channels": self.in_channels,
                "out_channels": self.out_channels,
            },
            "D": {
                "role": "discriminator",
                "config": dataclasses.asdict(self.cfg.discriminator),
                "in_channels": self.in_channels + self.out_channels,
            },
        }
