"""CycleGAN (Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", 2017).

G: A -> B and F: B -> A, each with a discriminator on its output domain (D_B judges G's
images, D_A judges F's). Unpaired images are tied together by cycle consistency:
    L = L_GAN(G, D_B) + L_GAN(F, D_A) + lambda_A * |F(G(a)) - a| + lambda_B * |G(F(b)) - b|
        + lambda_identity * (lambda_B * |G(b) - b| + lambda_A * |F(a) - a|)
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from i2i.config import CycleGANConfig, DataConfig
from i2i.errors import ConfigError
from i2i.losses import GANLoss, discriminator_loss, reconstruction_loss
from i2i.models.base import (
    MODELS,
    DataKind,
    Model,
    Update,
    check_translation_size,
    reverse,
    set_requires_grad,
)
from i2i.models.pool import ImagePool
from i2i.nets import build_discriminator, build_generator, init_weights
from i2i.runs.card import NetSpec


@MODELS.register("cyclegan")
class CycleGAN(Model):
    data: ClassVar[DataKind] = "unpaired"

    def __init__(self, cfg: CycleGANConfig, in_channels: int = 3, out_channels: int = 3) -> None:
        super().__init__()
        if cfg.lambda_identity > 0 and in_channels != out_channels:
            raise ConfigError(
                f"the identity loss feeds B images ({out_channels} channels) to G, which takes "
                f"{in_channels}; set model.lambda_identity=0 for domains with different channels"
            )
        self.cfg = cfg
        self.in_channels, self.out_channels = in_channels, out_channels

        init, gain = cfg.init, cfg.init_gain
        self.G = init_weights(build_generator(cfg.generator, in_channels, out_channels), init, gain)
        self.F = init_weights(build_generator(cfg.generator, out_channels, in_channels), init, gain)
        self.D_A = init_weights(build_discriminator(cfg.discriminator, in_channels), init, gain)
        self.D_B = init_weights(build_discriminator(cfg.discriminator, out_channels), init, gain)
        self.gan = GANLoss(cfg.gan_mode)
        self.pool_A, self.pool_B = ImagePool(cfg.pool_size), ImagePool(cfg.pool_size)

    def param_groups(self) -> dict[str, list[nn.Module]]:
        return {"G": [self.G, self.F], "D": [self.D_A, self.D_B]}

    def cycle(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return reconstruction_loss(self.cfg.cycle_loss, output, target, self.cfg.cycle_mix)

    def identity_losses(
        self, real_A: torch.Tensor, real_B: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """A generator fed an image of its own output domain should leave it unchanged (L1)."""
        return {
            "idt_B": reconstruction_loss("l1", self.G(real_B), real_B),
            "idt_A": reconstruction_loss("l1", self.F(real_A), real_A),
        }

    def training_step(self, batch: dict[str, Any], update: Update) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        real_A, real_B = batch["A"], batch["B"]
        fake_B, fake_A = self.G(real_A), self.F(real_B)

        # G and F: fool the discriminators and close both cycles
        set_requires_grad([self.D_A, self.D_B], False)
        losses = {
            "G_GAN": self.gan.generator_loss(self.D_B(fake_B)),
            "F_GAN": self.gan.generator_loss(self.D_A(fake_A)),
            "cycle_A": self.cycle(self.F(fake_B), real_A),
            "cycle_B": self.cycle(self.G(fake_A), real_B),
        }
        loss_G = (
            losses["G_GAN"]
            + losses["F_GAN"]
            + cfg.lambda_A * losses["cycle_A"]
            + cfg.lambda_B * losses["cycle_B"]
        )
        if cfg.lambda_identity > 0:
            losses.update(self.identity_losses(real_A, real_B))
            loss_G = loss_G + cfg.lambda_identity * (
                cfg.lambda_B * losses["idt_B"] + cfg.lambda_A * losses["idt_A"]
            )
        update("G", loss_G)

        # D_A and D_B: real images against generated ones drawn from the history pools
        set_requires_grad([self.D_A, self.D_B], True)
        loss_D_B, terms_B = discriminator_loss(
            self.gan, self.D_B, real_B, self.pool_B.query(fake_B), cfg.lambda_gp
        )
        loss_D_A, terms_A = discriminator_loss(
            self.gan, self.D_A, real_A, self.pool_A.query(fake_A), cfg.lambda_gp
        )
        update("D", loss_D_A + loss_D_B)

        losses.update({"D_A" + k: v for k, v in terms_A.items()})
        losses.update({"D_B" + k: v for k, v in terms_B.items()})
        return {name: value.detach() for name, value in losses.items()}

    @torch.no_grad()
    def preview(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        fake_B = self.G(batch["A"])
        return {
            "A": batch["A"],
            "G(A)": fake_B,
            "F(G(A))": self.F(fake_B),
            "B": batch["B"],
            "F(B)": self.F(batch["B"]),
        }

    def check_image_size(self, height: int, width: int, data: DataConfig) -> None:
        check_translation_size(
            self.G, self.cfg.generator, self.cfg.discriminator, height, width, data
        )

    def net_specs(self) -> dict[str, NetSpec]:
        a, b = self.in_channels, self.out_channels
        return {
            "G": NetSpec("generator", self.cfg.generator, a, b),
            "F": NetSpec("generator", self.cfg.generator, b, a),
            "D_A": NetSpec("discriminator", self.cfg.discriminator, a),
            "D_B": NetSpec("discriminator", self.cfg.discriminator, b),
        }

    def translate_nets(self, direction: str) -> dict[str, str]:
        """Both directions: G translates the data's direction, F the reverse."""
        return {direction: "G", reverse(direction): "F"}

    def train_state(self) -> dict[str, torch.Tensor]:
        return {"pool_A": self.pool_A.state(), "pool_B": self.pool_B.state()}

    def load_train_state(self, state: dict[str, torch.Tensor]) -> None:
        device = next(self.parameters()).device
        self.pool_A.load_state(state["pool_A"], device)
        self.pool_B.load_state(state["pool_B"], device)
