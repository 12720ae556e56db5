"""DCGAN (Radford et al., "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", 2016): G turns a latent vector z ~ N(0, I) into an image,
D tells real images from G's.
    min_G max_D  E[log D(x)] + E[log(1 - D(G(z)))]   (G trained with the non-saturating loss)
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from i2i.config import (
    DataConfig,
    DCGANConfig,
    DCGANDiscriminatorConfig,
    DCGANGeneratorConfig,
    RunConfig,
)
from i2i.errors import ConfigError
from i2i.losses import GANLoss, discriminator_loss
from i2i.models.base import MODELS, DataKind, Model, Update, set_requires_grad
from i2i.nets import init_weights
from i2i.nets.dcgan import dcgan_plan
from i2i.runs.card import NetSpec


@MODELS.register("dcgan")
class DCGAN(Model):
    data: ClassVar[DataKind] = "images"
    conditional: ClassVar[bool] = False  # from noise alone

    def __init__(self, cfg: DCGANConfig, channels: int = 1, size: int = 28) -> None:
        super().__init__()
        dcgan_plan(size)  # a clear error for sizes the architecture cannot make
        self.cfg, self.channels, self.size = cfg, channels, size
        self.specs = {
            "G": NetSpec(
                "generator",
                DCGANGeneratorConfig(latent_dim=cfg.latent_dim, ngf=cfg.ngf, size=size),
                cfg.latent_dim,
                channels,
            ),
            "D": NetSpec(
                "discriminator", DCGANDiscriminatorConfig(ndf=cfg.ndf, size=size), channels
            ),
        }
        self.G = init_weights(self.specs["G"].build(), cfg.init)
        self.D = init_weights(self.specs["D"].build(), cfg.init)
        self.gan = GANLoss(cfg.gan_mode)
        # the same latent vectors for every preview, so grids show progress, not new draws
        noise = torch.randn(64, cfg.latent_dim, generator=torch.Generator().manual_seed(0))
        self.register_buffer("preview_noise", noise, persistent=False)

    @classmethod
    def for_run(cls, cfg: RunConfig) -> DCGAN:
        assert isinstance(cfg.model, DCGANConfig)
        return cls(cfg.model, cfg.data.output_nc, cfg.data.crop_size)

    def param_groups(self) -> dict[str, list[nn.Module]]:
        return {"G": [self.G], "D": [self.D]}

    def training_step(self, batch: dict[str, Any], update: Update) -> dict[str, torch.Tensor]:
        real = batch["image"]
        z = torch.randn(real.shape[0], self.cfg.latent_dim, device=real.device)
        fake = self.G(z)

        set_requires_grad([self.D], True)
        loss_D, terms = discriminator_loss(self.gan, self.D, real, fake, self.cfg.lambda_gp)
        update("D", loss_D)

        set_requires_grad([self.D], False)
        loss_G = self.gan.generator_loss(self.D(fake))
        update("G", loss_G)

        losses = {"D" + k: v for k, v in terms.items()}
        losses["G"] = loss_G
        return {name: value.detach() for name, value in losses.items()}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = next(self.G.parameters()).device
        z = torch.randn(n, self.cfg.latent_dim, generator=generator).to(device)
        return self.G(z)

    @torch.no_grad()
    def preview(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """An 8x8 grid of samples from fixed latent vectors (columns of 8)."""
        images = self.G(self.preview_noise)
        return {f"z {8 * i + 1}-{8 * i + 8}": images[i * 8 : (i + 1) * 8] for i in range(8)}

    def check_image_size(self, height: int, width: int, data: DataConfig) -> None:
        if (height, width) != (self.size, self.size):
            fix = (
                "use --preprocess resize (images are resized to --crop-size)"
                if data.preprocess == "none"
                else f"use --crop-size {width}"
            )
            raise ConfigError(
                f"this DCGAN makes {self.size}x{self.size} images (--crop-size {self.size}), "
                f"but the training images are {width}x{height}; {fix}"
            )

    def net_specs(self) -> dict[str, NetSpec]:
        return self.specs

    def translate_nets(self, direction: str) -> dict[str, str]:
        return {}  # unconditional: DCGAN generates, it does not translate
