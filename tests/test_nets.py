import pytest
import torch
from torch import nn

from i2i.config import DiscriminatorConfig, GeneratorConfig
from i2i.nets import (
    PatchDiscriminator,
    UNetGenerator,
    build_discriminator,
    build_generator,
    init_weights,
)


@pytest.mark.parametrize(("kind", "size"), [("unet_128", 128), ("unet_256", 256)])
def test_unet_presets_map_their_size_to_a_1x1_bottleneck(kind, size):
    net = build_generator(GeneratorConfig(kind=kind, ngf=4), 3, 2)
    x = torch.randn(1, 3, size, size)
    assert net(x).shape == (1, 2, size, size)
    assert net.encode(x)[-1].shape[-2:] == (1, 1)
    assert net.size_multiple == size


@pytest.mark.parametrize(("kind", "blocks"), [("resnet_6blocks", 6), ("resnet_9blocks", 9)])
def test_resnet_generators(kind, blocks):
    net = build_generator(GeneratorConfig(kind=kind, ngf=4), 1, 3)
    assert len(net.blocks) == blocks
    assert net(torch.randn(2, 1, 36, 44)).shape == (2, 3, 36, 44)
    assert any(isinstance(m, nn.ReflectionPad2d) for m in net.modules())


def test_depth_overrides_the_preset():
    net = build_generator(GeneratorConfig(kind="unet_256", depth=5, ngf=4), 3, 3)
    assert net.size_multiple == 32
    assert net(torch.randn(1, 3, 64, 32)).shape == (1, 3, 64, 32)


def test_no_skip_is_a_plain_encoder_decoder():
    with_skip = UNetGenerator(3, 3, num_downs=5, ngf=4, skip=True)
    without = UNetGenerator(3, 3, num_downs=5, ngf=4, skip=False)
    # the outermost decoder conv sees concatenated features only with skips
    assert with_skip.up[0][1].in_channels == 2 * without.up[0][1].in_channels
    assert without(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="U-Net option"):
        build_generator(GeneratorConfig(kind="resnet_6blocks", skip=False), 3, 3)


def test_dropout_sits_in_the_inner_decoder_levels():
    def count(net):
        return sum(isinstance(m, nn.Dropout) for m in net.modules())

    assert count(build_generator(GeneratorConfig(kind="unet_256", ngf=4), 3, 3)) == 3
    assert count(build_generator(GeneratorConfig(kind="unet_128", ngf=4), 3, 3)) == 2
    assert count(build_generator(GeneratorConfig(kind="unet_256", ngf=4, dropout=0), 3, 3)) == 0


@pytest.mark.parametrize(("n_layers", "field"), [(1, 16), (2, 34), (3, 70), (5, 286)])
def test_patchgan_reports_its_receptive_field(n_layers, field):
    d = build_discriminator(DiscriminatorConfig(n_layers=n_layers, ndf=4), 6)
    assert d.receptive_field == field
    assert f"receptive_field={field}px" in repr(d)


@pytest.mark.parametrize("n_layers", [1, 3])
def test_receptive_field_matches_the_gradient_footprint(n_layers):
    """The input pixels that one output logit depends on span exactly the reported field."""
    torch.manual_seed(0)
    d = PatchDiscriminator(1, ndf=4, n_layers=n_layers, norm="none")
    x = torch.randn(1, 1, 192, 192, requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    cols = (x.grad[0, 0].abs().sum(0) > 0).nonzero().flatten()
    assert int(cols.max() - cols.min() + 1) == d.receptive_field


def test_pixel_discriminator_sees_one_pixel():
    d = build_discriminator(DiscriminatorConfig(kind="pixel", ndf=4), 6)
    assert d.receptive_field == 1
    assert d(torch.randn(2, 6, 16, 16)).shape == (2, 1, 16, 16)


def test_discriminator_output_is_a_grid_of_patch_logits():
    d = build_discriminator(DiscriminatorConfig(n_layers=3, ndf=4), 6)
    assert d(torch.randn(1, 6, 256, 256)).shape == (1, 1, 30, 30)  # the paper's 30x30 patches


@pytest.mark.parametrize(
    ("norm", "cls"), [("instance", nn.InstanceNorm2d), ("batch", nn.BatchNorm2d)]
)
def test_norms(norm, cls):
    net = build_generator(GeneratorConfig(kind="unet_256", depth=5, ngf=4, norm=norm), 3, 3)
    assert any(isinstance(m, cls) for m in net.modules())
    plain = build_generator(GeneratorConfig(kind="unet_256", depth=5, ngf=4, norm="none"), 3, 3)
    assert not any(isinstance(m, nn.InstanceNorm2d | nn.BatchNorm2d) for m in plain.modules())


def test_normal_init_has_the_papers_spread():
    torch.manual_seed(0)
    net = init_weights(build_generator(GeneratorConfig(kind="unet_256", ngf=16), 3, 3), "normal")
    w = torch.cat([m.weight.flatten() for m in net.modules() if isinstance(m, nn.Conv2d)])
    assert abs(w.std().item() - 0.02) < 0.001
    assert abs(w.mean().item()) < 0.001


def test_orthogonal_init_gives_orthogonal_rows():
    torch.manual_seed(0)
    conv = init_weights(nn.Sequential(nn.Conv2d(8, 4, 3)), "orthogonal", gain=1.0)[0]
    w = conv.weight.flatten(1)
    assert torch.allclose(w @ w.T, torch.eye(4), atol=1e-5)


@pytest.mark.parametrize("kind", ["xavier", "kaiming"])
def test_other_inits_replace_the_default_weights(kind):
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(8, 8, 3))
    before = conv[0].weight.detach().clone()
    init_weights(conv, kind)
    assert not torch.equal(before, conv[0].weight)
    assert conv[0].bias.abs().sum() == 0
