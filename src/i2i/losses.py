"""GAN objectives and reconstruction losses.

Each GAN objective is written as the two halves a training step needs:
``discriminator_loss(real_logits, fake_logits)`` and ``generator_loss(fake_logits)``. Written out
rather than as a "target is real" flag because hinge and WGAN are not classification losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from i2i.config import GanMode, ReconLoss


class GANLoss:
    """``vanilla`` (BCE with logits, the original GAN), ``lsgan`` (least squares),
    ``hinge`` (geometric GAN), ``wgan-gp`` (Wasserstein; pair with :func:`gradient_penalty`).

    The discriminator loss averages its real and fake terms, as pix2pix does, so its scale does
    not change with the objective's formulation.
    """

    def __init__(self, mode: GanMode) -> None:
        if mode not in ("vanilla", "lsgan", "hinge", "wgan-gp"):
            raise ValueError(f"unknown GAN mode {mode!r}; use vanilla, lsgan, hinge or wgan-gp")
        self.mode = mode

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if self.mode == "vanilla":
            real_term = F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            fake_term = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        elif self.mode == "lsgan":
            real_term = F.mse_loss(real, torch.ones_like(real))
            fake_term = F.mse_loss(fake, torch.zeros_like(fake))
        elif self.mode == "hinge":
            real_term = F.relu(1.0 - real).mean()
            fake_term = F.relu(1.0 + fake).mean()
        else:  # wgan-gp: the critic maximises real - fake
            real_term, fake_term = -real.mean(), fake.mean()
        return 0.5 * (real_term + fake_term)

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        if self.mode == "vanilla":
            return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        if self.mode == "lsgan":
            return F.mse_loss(fake, torch.ones_like(fake))
        return -fake.mean()  # hinge and wgan-gp


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad critic(x_hat)||_2 - 1)^2] on random
    interpolates x_hat of real and fake inputs (each the critic's full input)."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = critic(mixed)
    (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()


def reconstruction_loss(
    kind: ReconLoss, output: torch.Tensor, target: torch.Tensor, mix: float = 0.5
) -> torch.Tensor:
    """``l1`` (mean absolute error), ``l2`` (mean squared error) or the convex mix
    ``l1+l2`` = mix * L1 + (1 - mix) * L2."""
    if kind == "l1":
        return F.l1_loss(output, target)
    if kind == "l2":
        return F.mse_loss(output, target)
    if kind == "l1+l2":
        return mix * F.l1_loss(output, target) + (1.0 - mix) * F.mse_loss(output, target)
    raise ValueError(f"unknown reconstruction loss {kind!r}; use l1, l2 or l1+l2")


BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def critic_logits(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The critic's outputs on real and on fake inputs, from one pass over both batches
    stacked where that computes the same thing: equal shapes, and no batch norm in training
    mode, whose statistics would mix real with fake. Half the layer calls, over twice the
    images each: 4-5% of a pix2pix CPU step (``benchmarks/train_speed.py``)."""
    if real.shape != fake.shape or any(
        isinstance(m, BATCH_NORMS) and m.training for m in critic.modules()
    ):
        return critic(real), critic(fake)
    real_logits, fake_logits = critic(torch.cat([real, fake])).chunk(2)
    return real_logits, fake_logits


def discriminator_loss(
    gan: GANLoss, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, lambda_gp: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One discriminator's loss on real and (detached) fake inputs, plus the gradient penalty
    under wgan-gp. Returns the total to backpropagate and the named terms to log."""
    fake = fake.detach()
    loss = gan.discriminator_loss(*critic_logits(critic, real, fake))
    terms = {"": loss}
    if gan.mode == "wgan-gp":
        terms["_GP"] = gradient_penalty(critic, real, fake)
        loss = loss + lambda_gp * terms["_GP"]
    return loss, terms


def patch_nce_loss(
    query: torch.Tensor, key: torch.Tensor, batch_size: int, temperature: float = 0.07
) -> torch.Tensor:
    """PatchNCE (Park et al. 2020, eq. 2): each query patch must pick the key patch at the same
    location (its positive) among all key patches of the same image (the negatives).

    ``query`` and ``key`` are L2-normalized (batch_size * P, D) embeddings, patch i of one image
    matching patch i of the other; the keys are a fixed target (no gradient)."""
    q = query.view(batch_size, -1, query.shape[-1])
    k = key.detach().view(batch_size, -1, key.shape[-1])
    logits = torch.bmm(q, k.transpose(1, 2)) / temperature  # B, P, P: diagonal = positives
    target = torch.arange(q.shape[1], device=q.device).repeat(batch_size)
    return F.cross_entropy(logits.flatten(0, 1), target)
