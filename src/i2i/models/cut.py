"""CUT and FastCUT (Park et al., "Contrastive Learning for Unpaired Image-to-Image
Translation", 2020).

One generator G: A -> B and one discriminator D on domain B. Instead of a second generator and
a cycle, each patch of G(a) must stay recognisable as the patch of a at the same place: the
multilayer PatchNCE loss compares G's own encoder features of a and G(a) through a small
projection head H.
    L = lambda_gan * L_GAN(G, D) + lambda_nce * L_PatchNCE(G, H, A)  [+ the same on (b, G(b))]
CUT: lambda_nce = 1 with the identity term. FastCUT: lambda_nce = 10, no identity term, and
flip-equivariance (the input is randomly flipped and G must commute with the flip).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from i2i.config import CUTConfig, DataConfig, PatchMLPConfig
from i2i.errors import ConfigError
from i2i.losses import GANLoss, discriminator_loss, patch_nce_loss
from i2i.models.base import (
    MODELS,
    DataKind,
    Model,
    Update,
    check_translation_size,
    set_requires_grad,
)
from i2i.nets import build_discriminator, build_generator, build_net, init_weights
from i2i.runs.card import NetSpec


@MODELS.register("cut", "fastcut")
class CUT(Model):
    data: ClassVar[DataKind] = "unpaired"

    def __init__(self, cfg: CUTConfig, in_channels: int = 3, out_channels: int = 3) -> None:
        super().__init__()
        if in_channels != out_channels:
            raise ConfigError(
                "PatchNCE runs G's encoder on both A and G(A), so CUT needs the same number of "
                f"channels in both domains (got {in_channels} and {out_channels})"
            )
        self.cfg = cfg
        self.channels = in_channels
        self.G = init_weights(
            build_generator(cfg.generator, in_channels, out_channels), cfg.init, cfg.init_gain
        )
        self.D = init_weights(
            build_discriminator(cfg.discriminator, out_channels), cfg.init, cfg.init_gain
        )
        # H needs each chosen layer's width: read it off one small forward pass
        probe = torch.zeros(1, in_channels, self.G.size_multiple * 2, self.G.size_multiple * 2)
        with torch.no_grad():
            try:
                widths = [f.shape[1] for f in self.G.features(probe, cfg.nce_layers)]
            except ValueError as exc:
                raise ConfigError(f"model.nce_layers: {exc}") from None
        self.head = PatchMLPConfig(width=cfg.mlp_width, channels=widths)
        head = build_net("patch projection head", self.head, in_channels, None)
        self.H = init_weights(head, cfg.init, cfg.init_gain)
        self.gan = GANLoss(cfg.gan_mode)

    def param_groups(self) -> dict[str, list[nn.Module]]:
        return {"G": [self.G], "D": [self.D], "H": [self.H]}

    def patch_nce(self, source: torch.Tensor, output: torch.Tensor, flipped: bool) -> torch.Tensor:
        """Multilayer PatchNCE between an input and its translation, averaged over layers."""
        cfg = self.cfg
        feats_q = self.G.features(output, cfg.nce_layers)
        if flipped:  # output came from the flipped input: flip its features back into place
            feats_q = [f.flip(3) for f in feats_q]
        feats_k = self.G.features(source, cfg.nce_layers)
        keys, ids = self.H(feats_k, cfg.num_patches)
        queries, _ = self.H(feats_q, cfg.num_patches, ids)
        n = source.shape[0]
        per_layer = [
            patch_nce_loss(q, k, n, cfg.nce_temperature) for q, k in zip(queries, keys, strict=True)
        ]
        return torch.stack(per_layer).mean()

    def training_step(self, batch: dict[str, Any], update: Update) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        real_A, real_B = batch["A"], batch["B"]
        n = real_A.shape[0]
        real = torch.cat([real_A, real_B]) if cfg.nce_identity else real_A
        flipped = bool(cfg.flip_equivariance and torch.rand(()) < 0.5)
        if flipped:
            real = real.flip(3)
        fake = self.G(real)
        fake_B = fake[:n]

        # D: real B images against G(A)
        set_requires_grad([self.D], True)
        loss_D, terms = discriminator_loss(self.gan, self.D, real_B, fake_B, cfg.lambda_gp)
        update("D", loss_D)

        # G and H: fool D, and keep each patch of G(a) tied to the same patch of a
        set_requires_grad([self.D], False)
        losses = {"G_GAN": self.gan.generator_loss(self.D(fake_B))}
        losses["NCE"] = self.patch_nce(real_A, fake_B, flipped)
        loss_nce = losses["NCE"]
        if cfg.nce_identity:
            losses["NCE_Y"] = self.patch_nce(real_B, fake[n:], flipped)
            loss_nce = 0.5 * (losses["NCE"] + losses["NCE_Y"])
        assert cfg.lambda_nce is not None  # resolved from kind by the config
        update(("G", "H"), cfg.lambda_gan * losses["G_GAN"] + cfg.lambda_nce * loss_nce)

        losses.update({"D" + k: v for k, v in terms.items()})
        return {name: value.detach() for name, value in losses.items()}

    @torch.no_grad()
    def preview(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"A": batch["A"], "G(A)": self.G(batch["A"]), "B": batch["B"]}

    def check_image_size(self, height: int, width: int, data: DataConfig) -> None:
        check_translation_size(
            self.G, self.cfg.generator, self.cfg.discriminator, height, width, data
        )

    def net_specs(self) -> dict[str, NetSpec]:
        c = self.channels
        return {
            "G": NetSpec("generator", self.cfg.generator, c, c),
            "D": NetSpec("discriminator", self.cfg.discriminator, c),
            "H": NetSpec("patch projection head", self.head, c),
        }

    def translate_nets(self, direction: str) -> dict[str, str]:
        return {direction: "G"}
