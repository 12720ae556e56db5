import copy
import math

import pytest
import torch
from torch import nn

from i2i.losses import GANLoss, critic_logits, gradient_penalty, reconstruction_loss
from i2i.nets.patchgan import PatchDiscriminator

zeros = torch.zeros(2, 1, 4, 4)


def test_vanilla_at_zero_logits_is_log2():
    gan = GANLoss("vanilla")
    assert gan.discriminator_loss(zeros, zeros).item() == pytest.approx(math.log(2))
    assert gan.generator_loss(zeros).item() == pytest.approx(math.log(2))
    confident = gan.discriminator_loss(zeros + 20, zeros - 20).item()
    assert confident < 1e-6


def test_lsgan_targets_one_and_zero():
    gan = GANLoss("lsgan")
    assert gan.discriminator_loss(zeros + 1, zeros).item() == 0
    assert gan.discriminator_loss(zeros, zeros + 1).item() == pytest.approx(1.0)
    assert gan.generator_loss(zeros).item() == pytest.approx(1.0)
    assert gan.generator_loss(zeros + 1).item() == 0


def test_hinge_has_a_margin():
    gan = GANLoss("hinge")
    assert gan.discriminator_loss(zeros + 2, zeros - 2).item() == 0
    assert gan.discriminator_loss(zeros, zeros).item() == pytest.approx(1.0)
    assert gan.generator_loss(zeros + 3).item() == pytest.approx(-3.0)


def test_wgan_is_the_score_gap():
    gan = GANLoss("wgan-gp")
    assert gan.discriminator_loss(zeros + 3, zeros + 1).item() == pytest.approx(0.5 * (-3 + 1))
    assert gan.generator_loss(zeros + 2).item() == pytest.approx(-2.0)


def test_unknown_gan_mode():
    with pytest.raises(ValueError, match="unknown GAN mode"):
        GANLoss("wgan")  # type: ignore[arg-type]


@pytest.mark.parametrize(("scale", "expected"), [(1.0, 0.0), (3.0, 4.0)])
def test_gradient_penalty_of_a_linear_critic(scale, expected):
    """A linear critic w.x has gradient w everywhere: the penalty is (||w|| - 1)^2."""
    critic = nn.Conv2d(2, 1, 4, bias=False)  # 4x4 input -> one output = w.x
    with torch.no_grad():
        critic.weight.copy_(torch.randn_like(critic.weight))
        critic.weight.mul_(scale / critic.weight.norm())
    real, fake = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(expected, abs=1e-5)


def test_reconstruction_losses_on_known_values():
    out, target = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 2.0)
    assert reconstruction_loss("l1", out, target).item() == pytest.approx(2.0)
    assert reconstruction_loss("l2", out, target).item() == pytest.approx(4.0)
    assert reconstruction_loss("l1+l2", out, target, mix=0.5).item() == pytest.approx(3.0)
    assert reconstruction_loss("l1+l2", out, target, mix=0.25).item() == pytest.approx(3.5)
    with pytest.raises(ValueError, match="unknown reconstruction loss"):
        reconstruction_loss("l3", out, target)  # type: ignore[arg-type]


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_critic_logits_equal_two_passes(norm):
    """One pass over real and fake stacked gives each its own logits and gradients; with batch
    norm (statistics over the batch) the critic runs twice, as before, running stats too."""
    torch.manual_seed(0)
    critic = PatchDiscriminator(3, ndf=8, n_layers=2, norm=norm)
    twin = copy.deepcopy(critic)
    real, fake = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    got = critic_logits(critic, real, fake)
    want = twin(real), twin(fake)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    loss_got = (got[0] - got[1]).square().mean()
    loss_want = (want[0] - want[1]).square().mean()
    grads = torch.autograd.grad(loss_got, list(critic.parameters()))
    grads_want = torch.autograd.grad(loss_want, list(twin.parameters()))
    for a, b in zip(grads, grads_want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    for a, b in zip(critic.buffers(), twin.buffers(), strict=True):  # batch norm's running stats
        torch.testing.assert_close(a, b)
