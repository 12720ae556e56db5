"""DCGAN (Radford et al., "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", 2016): G turns a latent vector z ~ N(0, I) into an image,
D tells real images from G's.
    min_G max_D  E[log D(x)] + E[log(1 - D(G(z)))]   (G trained with the non-saturating loss)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from i2i.config import ConfigError, DCGANConfig, TrainConfig
from i2i.losses import GANLoss, discriminator_loss
from i2i.models.base import NoExtraState, adam, net_spec, set_requires_grad
from i2i.nets import init_weights
from i2i.nets.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_plan


class DCGAN(NoExtraState, nn.Module):
    kind = "dcgan"

    def __init__(self, cfg: DCGANConfig, channels: int = 1, size: int = 28) -> None:
        super().__init__()
        dcgan_plan(size)  # a clear error for sizes the architecture cannot make
        self.cfg, self.channels, self.size = cfg, channels, size
        self.G = init_weights(DCGANGenerator(cfg.latent_dim, channels, size, cfg.ngf), cfg.init)
        self.D = init_weights(DCGANDiscriminator(channels, size, cfg.ndf), cfg.init)
        self.gan = GANLoss(cfg.gan_mode)
        # the same latent vectors for every preview, so grids show progress, not new draws
        noise = torch.randn(64, cfg.latent_dim, generator=torch.Generator().manual_seed(0))
        self.register_buffer("preview_noise", noise, persistent=False)

    def make_optimizers(self, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        return {"G": adam(self.G.parameters(), train), "D": adam(self.D.parameters(), train)}

    def training_step(
        self, batch: dict[str, Any], opt: dict[str, torch.optim.Optimizer]
    ) -> dict[str, torch.Tensor]:
        real = batch["image"]
        z = torch.randn(real.shape[0], self.cfg.latent_dim, device=real.device)
        fake = self.G(z)

        set_requires_grad([self.D], True)
        loss_D, terms = discriminator_loss(self.gan, self.D, real, fake, self.cfg.lambda_gp)
        opt["D"].zero_grad(set_to_none=True)
        loss_D.backward()
        opt["D"].step()

        set_requires_grad([self.D], False)
        loss_G = self.gan.generator_loss(self.D(fake))
        opt["G"].zero_grad(set_to_none=True)
        loss_G.backward()
        opt["G"].step()

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
        return {str(i): images[i * 8 : (i + 1) * 8] for i in range(8)}

    def check_image_size(self, height: int, width: int) -> None:
        if (height, width) != (self.size, self.size):
            raise ConfigError(
                f"dcgan images must be {self.size}x{self.size} (data.crop_size), "
                f"got {width}x{height}"
            )

    def describe_nets(self) -> dict[str, Any]:
        cfg = self.cfg
        gen = {"latent_dim": cfg.latent_dim, "ngf": cfg.ngf, "size": self.size}
        return {
            "G": net_spec("generator", gen, cfg.latent_dim, self.channels),
            "D": net_spec("discriminator", {"ndf": cfg.ndf, "size": self.size}, self.channels),
        }

    def translate_nets(self, direction: str) -> dict[str, str]:
        return {}  # unconditional: DCGAN generates, it does not translate
