"""The CPU kernels (i2i.kernels) compute what the stock layers compute: outputs and all
gradients, in both memory layouts, on the shapes where each path runs; models with them train
like models without; and use_cpu_kernels swaps them in and out without touching a weight."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import i2i
from i2i.config import (
    CycleGANConfig,
    DiscriminatorConfig,
    GeneratorConfig,
    Pix2PixConfig,
    TrainConfig,
)
from i2i.kernels import WinogradConv, conv, cpu_kernels_enabled, use_cpu_kernels
from i2i.models import CycleGAN, Pix2Pix
from i2i.train import loop
from i2i.train.step import Updater, make_optimizers

from .conftest import tiny_config
from .test_speed import assert_same_losses

LAYOUTS = [torch.contiguous_format, torch.channels_last]  # of the weights and the input


@pytest.fixture
def avx2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Winograd's path as on an AVX2 CPU, where it runs, whatever CPU the tests run on."""
    monkeypatch.setattr(conv, "WINOGRAD_HERE", True)


def cpu_conv2d(*args: object, **kwargs: object) -> torch.nn.Module:
    """A stock convolution turned into i2i's CPU kernel."""
    layer = torch.nn.Conv2d(*args, **kwargs)  # type: ignore[arg-type]
    use_cpu_kernels(layer)
    return layer


def cpu_conv_transpose2d(*args: object, **kwargs: object) -> torch.nn.Module:
    """A stock transposed convolution turned into i2i's CPU kernel."""
    layer = torch.nn.ConvTranspose2d(*args, **kwargs)  # type: ignore[arg-type]
    use_cpu_kernels(layer)
    return layer


def assert_same_layer(layer: torch.nn.Module, stock: torch.nn.Module, x: torch.Tensor) -> None:
    """``layer`` (i2i's kernel) and ``stock`` (PyTorch's, same weights) agree on ``x``: outputs
    and the gradients of input, weight and bias, to 5e-5 of each tensor's largest value (the
    rounding of sums in another order scales with the terms, not with each result)."""
    stock.load_state_dict(layer.state_dict())
    y, y_ref = layer(x), stock(x)
    g = torch.randn_like(y_ref)
    grads = torch.autograd.grad(y, [x, layer.weight, layer.bias], g)
    grads_ref = torch.autograd.grad(y_ref, [x, stock.weight, stock.bias], g)
    for got, want in zip([y, *grads], [y_ref, *grads_ref], strict=True):
        torch.testing.assert_close(got, want, atol=5e-5 * want.abs().max().item(), rtol=0)


@pytest.mark.parametrize("layout", LAYOUTS, ids=["nchw", "nhwc"])
@pytest.mark.parametrize("size", [1, 2, 5, 8])
def test_small_transposed_convolutions_match_the_stock_ones(size, layout):
    torch.manual_seed(0)
    layer = cpu_conv_transpose2d(16, 8, 4, 2, 1).to(memory_format=layout)
    x = torch.randn(2, 16, size, size).contiguous(memory_format=layout).requires_grad_(True)
    assert layer(x).shape == (2, 8, 2 * size, 2 * size)
    assert_same_layer(layer, torch.nn.ConvTranspose2d(16, 8, 4, 2, 1), x)


def graph_ops(y: torch.Tensor) -> set[str]:
    """The names of the autograd nodes that computed ``y``."""
    names, seen, todo = set(), set(), [y.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and id(node) not in seen:
            seen.add(id(node))
            names.add(type(node).__name__)
            todo.extend(next_node for next_node, _ in node.next_functions)
    return names


@pytest.mark.parametrize(
    ("kernel", "stride", "size", "matmul"),
    [(4, 2, (2, 2), True), (4, 2, (5, 7), True), (4, 2, (16, 16), True), (3, 1, (7, 9), True),
     (4, 2, (18, 18), False)],  # 2 x 9 x 9 output pixels: over MATMUL_MAX_ROWS
)  # fmt: skip
@pytest.mark.parametrize("layout", LAYOUTS, ids=["nchw", "nhwc"])
def test_small_convolutions_match_the_stock_ones(kernel, stride, size, matmul, layout):
    torch.manual_seed(0)
    layer = cpu_conv2d(16, 8, kernel, stride, 1).to(memory_format=layout)
    x = torch.randn(2, 16, *size).contiguous(memory_format=layout).requires_grad_(True)
    assert ("AddmmBackward0" in graph_ops(layer(x))) == matmul
    assert_same_layer(layer, torch.nn.Conv2d(16, 8, kernel, stride, 1), x)


@pytest.mark.parametrize(
    ("c_out", "kernel", "padding", "fold"),
    [(1, 4, 1, True), (3, 7, 3, True), (3, 4, 0, True), (1, 3, 1, False), (8, 4, 1, False)],
)  # the PatchGAN's last layer; a 7x7 RGB head; 3x3 kernels and 8 outputs keep the stock kernel
@pytest.mark.parametrize("layout", LAYOUTS, ids=["nchw", "nhwc"])
def test_few_output_channels_match_the_stock_convolution(c_out, kernel, padding, fold, layout):
    torch.manual_seed(0)
    layer = cpu_conv2d(128, c_out, kernel, padding=padding).to(memory_format=layout)
    x = torch.randn(2, 128, 13, 11).contiguous(memory_format=layout).requires_grad_(True)
    y = layer(x)
    assert ("Col2ImBackward0" in graph_ops(y)) == fold
    assert y.is_contiguous(memory_format=layout)
    assert_same_layer(layer, torch.nn.Conv2d(128, c_out, kernel, padding=padding), x)


@pytest.mark.parametrize("kernel", [3, 4])
@pytest.mark.parametrize("size", [(4, 4), (7, 6), (13, 10)])
@pytest.mark.parametrize("wanted", ["both", "input", "weight"])
def test_winograd_backward_matches_finite_differences(kernel, size, wanted):
    """Output sides 1 to 11, most not a multiple of the tile (4x4 for 3x3 kernels, 3x3 for
    4x4 ones): the edge tiles are cropped. ``wanted``: the gradients asked for, as by a
    critic judging the generator's output (input only) or a first layer (weight only)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, *size, dtype=torch.float64, requires_grad=wanted != "weight")
    w = torch.randn(4, 3, kernel, kernel, dtype=torch.float64, requires_grad=wanted != "input")
    torch.testing.assert_close(WinogradConv.apply(x, w), F.conv2d(x, w))
    assert torch.autograd.gradcheck(WinogradConv.apply, (x, w))


@pytest.mark.parametrize(("kernel", "padding"), [(3, 0), (4, 1)])  # ResNet block, PatchGAN
def test_wide_convolutions_match_the_stock_ones(kernel, padding, avx2):
    torch.manual_seed(0)
    layer = cpu_conv2d(128, 128, kernel, padding=padding)
    x = torch.randn(2, 128, 35, 31, requires_grad=True)  # mid-sized: not a multiple of a tile
    assert "WinogradConvBackward" in str(layer(x).grad_fn.next_functions)  # the fast path
    assert_same_layer(layer, torch.nn.Conv2d(128, 128, kernel, padding=padding), x)


def winograd_test_model(kind: str) -> CycleGAN | Pix2Pix:
    """Small models with Winograd layers on 32x32 maps: CycleGAN's 128-channel residual blocks
    (3x3), pix2pix's PatchGAN with a 128->256 stride-1 conv (4x4); CPU kernels on."""
    model: CycleGAN | Pix2Pix
    if kind == "cyclegan":
        gen = GeneratorConfig(kind="resnet_6blocks", ngf=32, depth=1, norm="none")
        cfg = CycleGANConfig(generator=gen)
        cfg.discriminator.ndf, cfg.discriminator.n_layers = 8, 2
        model = CycleGAN(cfg)
    else:
        gen = GeneratorConfig(kind="unet_128", ngf=8, depth=5, norm="none", dropout=0.0)
        disc = DiscriminatorConfig(ndf=64, n_layers=2, norm="none")
        model = Pix2Pix(Pix2PixConfig(generator=gen, discriminator=disc))
    use_cpu_kernels(model)
    return model


@pytest.mark.parametrize("kind", ["cyclegan", "pix2pix"])
def test_winograd_keeps_the_losses(monkeypatch, kind, avx2):
    """Models whose wide convolutions take the Winograd path train as with the direct
    convolution: the same losses over 3 steps. Their networks have no norm layers: an instance
    norm after a conv cancels the conv's bias, whose gradient is then rounding noise that Adam
    scales to lr-sized steps, so any change of rounding (another CPU's kernels too) would move
    the losses by about 1e-3 within a few steps."""
    calls = 0
    winograd = WinogradConv.apply

    def counted(x, w):
        nonlocal calls
        calls += 1
        return winograd(x, w)

    def run() -> list[dict[str, float]]:
        torch.manual_seed(0)
        model = winograd_test_model(kind)
        train = TrainConfig()
        update = Updater(make_optimizers(model, train), train, torch.device("cpu"))
        batch = {k: torch.rand(1, 3, 128, 128) * 2 - 1 for k in "AB"}
        steps = [model.training_step(batch, update) for _ in range(3)]
        return [{k: v.item() for k, v in losses.items()} for losses in steps]

    monkeypatch.setattr(WinogradConv, "apply", counted)
    fast = run()
    assert calls > 0
    monkeypatch.setattr(WinogradConv, "apply", lambda x, w: F.conv2d(x, w))
    assert_same_losses(fast, run(), tol=1e-4)


def test_use_cpu_kernels_swaps_layers_in_and_out_without_touching_weights():
    torch.manual_seed(0)
    model = Pix2Pix(Pix2PixConfig(generator=GeneratorConfig(kind="unet_128", ngf=4, depth=5)))
    params = dict(model.named_parameters())
    keys = list(model.state_dict())
    stock = sum(type(m) in (torch.nn.Conv2d, torch.nn.ConvTranspose2d) for m in model.modules())
    assert use_cpu_kernels(model) == stock > 0
    assert not any(type(m) in (torch.nn.Conv2d, torch.nn.ConvTranspose2d) for m in model.modules())
    assert list(model.state_dict()) == keys  # checkpoints cannot tell
    assert all(p is params[n] for n, p in model.named_parameters())  # optimizers keep theirs
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        fast = model.G(x)
        assert use_cpu_kernels(model, on=False) == stock
        assert type(model.G.down[1][1]) is torch.nn.Conv2d
        torch.testing.assert_close(model.G(x), fast, atol=1e-5, rtol=1e-5)


def test_cpu_kernels_can_be_switched_off(synth_dir, tmp_path, monkeypatch):
    """By the config field (training) and by I2I_CPU_KERNELS=0 (training and translation)."""
    assert cpu_kernels_enabled() and not cpu_kernels_enabled(False)
    swapped: list[int] = []
    monkeypatch.setattr(loop, "use_cpu_kernels", lambda m: swapped.append(1))
    for on in (True, False):
        cfg = tiny_config(synth_dir, tmp_path / f"run-{on}", max_steps=1, cpu_kernels=on)
        loop.train(cfg, progress=False)
    assert swapped == [1]  # the run with cpu_kernels off kept the stock layers
    first_conv = lambda t: type(t.net.down[0][0])  # noqa: E731
    assert first_conv(i2i.load(tmp_path / "run-True", device="cpu")).__name__ == "CPUConv2d"
    monkeypatch.setenv("I2I_CPU_KERNELS", "0")
    assert not cpu_kernels_enabled()
    assert first_conv(i2i.load(tmp_path / "run-True", device="cpu")) is torch.nn.Conv2d


def test_larger_batches_take_the_stock_kernels_where_those_share_their_work(avx2):
    """The transposed-convolution product and Winograd pay for one image (or D's real and fake
    pair); at batch 4 the stock kernels' per-call weight work is shared and they are faster
    (benchmarks/train_speed.py), so the batch decides too."""
    torch.manual_seed(0)
    up = cpu_conv_transpose2d(16, 8, 4, 2, 1)
    for n, product in ((1, True), (4, False)):
        ops = graph_ops(up(torch.randn(n, 16, 8, 8, requires_grad=True)))
        assert ("Col2ImBackward0" in ops) == product, (n, ops)
    wide = cpu_conv2d(128, 128, 3, 1, 1)
    for n, winograd in ((1, True), (2, True), (4, False)):
        ops = graph_ops(wide(torch.randn(n, 128, 32, 32, requires_grad=True)))
        assert any("Winograd" in op for op in ops) == winograd, (n, ops)


def test_winograd_runs_only_where_onednn_runs_avx2_code(monkeypatch):
    """On AVX-512 CPUs oneDNN's own kernels beat Winograd (i2i.kernels.conv.CPUConv2d): the
    wide convolution takes the stock path there; ONEDNN_MAX_CPU_ISA=AVX2 brings it back."""
    wide, x = cpu_conv2d(128, 128, 3, 1, 1), torch.randn(1, 128, 32, 32, requires_grad=True)
    for here, winograd in ((True, True), (False, False)):
        monkeypatch.setattr(conv, "WINOGRAD_HERE", here)
        assert any("Winograd" in op for op in graph_ops(wide(x))) == winograd
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert conv.vector_isa() == "AVX512" and "AVX512" not in conv.WINOGRAD_ISAS
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert conv.vector_isa() == "AVX2" and "AVX2" in conv.WINOGRAD_ISAS
