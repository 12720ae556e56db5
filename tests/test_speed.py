"""The speed-ups change nothing that is learned: the image cache, 8-bit batches, loader workers,
channels_last, the matmul path of small transposed convolutions, Winograd 3x3 and 4x4
convolutions, the instance norm that torch.compile fuses, and data-parallel training over two
processes; and the allocator setting that keeps freed memory does keep it."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.utils.data import default_collate

from i2i.config import (
    CycleGANConfig,
    DiscriminatorConfig,
    GeneratorConfig,
    Pix2PixConfig,
    TrainConfig,
)
from i2i.data.build import Pixels
from i2i.data.paired import PairedDataset
from i2i.data.transforms import network_range
from i2i.models import CycleGAN, Pix2Pix
from i2i.nets import layers
from i2i.nets.layers import Conv2d, ConvTranspose2d, InstanceNorm2d, WinogradConv
from i2i.train.accel import keep_freed_memory
from i2i.train.loop import train
from i2i.train.monitor import read_metrics

from .conftest import tiny_config


def losses(run_dir: Path) -> list[dict[str, float]]:
    rows = read_metrics(run_dir / "metrics.jsonl")
    return [{k: v for k, v in r.items() if k not in ("step", "images_per_s", "lr")} for r in rows]


def assert_same_losses(a: list[dict[str, float]], b: list[dict[str, float]], tol: float) -> None:
    assert len(a) == len(b) > 0
    for row_a, row_b in zip(a, b, strict=True):
        assert row_a.keys() == row_b.keys()
        for k in row_a:
            assert row_a[k] == pytest.approx(row_b[k], rel=tol, abs=tol), (k, a, b)


def test_cached_samples_equal_decoded_ones(synth_dir):
    cfg = tiny_config(synth_dir, Path("unused")).data
    cached = PairedDataset(cfg, "train", train=True)
    plain = PairedDataset(replace(cfg, cache=False), "train", train=True)
    assert cached.cache is not None and plain.cache is None
    for epoch in range(2):  # the first epoch fills the cache, the second reads it
        for key in [(0, 11 + epoch), (5, 7), (31, 2**40)]:
            a, b = cached[key], plain[key]
            assert torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"])
    assert int(cached.cache.filled.sum()) == 3
    assert cached[(0, 1)]["A"].shape == (3, 32, 32)  # cropped from the cached 36 px


def test_pixel_batches_map_to_the_float_samples(synth_dir):
    """Training batches 8-bit pixels and maps them on its device: the same numbers as mapping
    each sample first."""
    dataset = PairedDataset(tiny_config(synth_dir, Path("unused")).data, "train", train=True)
    keys = [(0, 3), (5, 8), (9, 2**33)]
    pixels = default_collate([Pixels(dataset)[k] for k in keys])
    assert pixels["A"].dtype == torch.uint8 and pixels["name"] == [dataset[k]["name"] for k in keys]
    floats = default_collate([dataset[k] for k in keys])
    mapped = network_range(pixels)
    for key in "AB":
        assert mapped[key].dtype == torch.float32 and torch.equal(mapped[key], floats[key])
        assert -1 <= mapped[key].min() < mapped[key].max() <= 1


@pytest.mark.parametrize(
    ("change", "tol"),
    [({"data.cache": False}, 1e-6), ({"train.channels_last": True}, 1e-3),
     ({"data.num_workers": 2}, 1e-6)],
    ids=["no-cache", "nhwc", "workers"],  # workers: the GPU default, sharing the cache
)  # fmt: skip
def test_speed_settings_keep_the_losses(synth_dir, tmp_path, change, tol):
    """The data settings compute the same numbers. Memory formats sum in another order (the
    small convolutions' products follow the weight's layout), and training amplifies rounding:
    Adam turns a near-zero gradient's noise into lr-sized steps, and the losses move 1e-7 apart
    at the first steps and 1e-4 by the sixth (measured up to 3e-4), so 1e-3 there; a layout
    bug moves them by far more. Batch norm, not instance norm: a conv bias before an instance
    norm has no effect at all, so its gradient is pure noise."""
    base = tiny_config(synth_dir, tmp_path / "base", max_steps=6)
    other = tiny_config(synth_dir, tmp_path / "other", max_steps=6)
    for cfg in (base, other):
        cfg.model.generator.norm = cfg.model.discriminator.norm = "batch"
    for key, value in change.items():
        section, name = key.split(".")
        setattr(getattr(other, section), name, value)
    assert_same_losses(
        losses(train(base, progress=False).run_dir),
        losses(train(other, progress=False).run_dir),
        tol,
    )


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


LAYOUTS = [torch.contiguous_format, torch.channels_last]  # of the weights and the input


@pytest.mark.parametrize("layout", LAYOUTS, ids=["nchw", "nhwc"])
@pytest.mark.parametrize("size", [1, 2, 5, 8])
def test_small_transposed_convolutions_match_the_stock_ones(size, layout):
    torch.manual_seed(0)
    layer = ConvTranspose2d(16, 8, 4, 2, 1).to(memory_format=layout)
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
    layer = Conv2d(16, 8, kernel, stride, 1).to(memory_format=layout)
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
    layer = Conv2d(128, c_out, kernel, padding=padding).to(memory_format=layout)
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
def test_wide_convolutions_match_the_stock_ones(kernel, padding):
    torch.manual_seed(0)
    layer = Conv2d(128, 128, kernel, padding=padding)
    x = torch.randn(2, 128, 35, 31, requires_grad=True)  # mid-sized: not a multiple of a tile
    assert "WinogradConvBackward" in str(layer(x).grad_fn.next_functions)  # the fast path
    assert_same_layer(layer, torch.nn.Conv2d(128, 128, kernel, padding=padding), x)


def winograd_test_model(kind: str) -> CycleGAN | Pix2Pix:
    """Small models with Winograd layers on 32x32 maps: CycleGAN's 128-channel residual blocks
    (3x3), pix2pix's PatchGAN with a 128->256 stride-1 conv (4x4)."""
    if kind == "cyclegan":
        gen = GeneratorConfig(kind="resnet_6blocks", ngf=32, depth=1, norm="none")
        cfg = CycleGANConfig(generator=gen)
        cfg.discriminator.ndf, cfg.discriminator.n_layers = 8, 2
        return CycleGAN(cfg)
    gen = GeneratorConfig(kind="unet_128", ngf=8, depth=5, norm="none", dropout=0.0)
    disc = DiscriminatorConfig(ndf=64, n_layers=2, norm="none")
    return Pix2Pix(Pix2PixConfig(generator=gen, discriminator=disc))


@pytest.mark.parametrize("kind", ["cyclegan", "pix2pix"])
def test_winograd_keeps_the_losses(monkeypatch, kind):
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
        opt = model.make_optimizers(TrainConfig())
        batch = {k: torch.rand(1, 3, 128, 128) * 2 - 1 for k in "AB"}
        return [{k: v.item() for k, v in model.training_step(batch, opt).items()} for _ in range(3)]

    monkeypatch.setattr(layers.WinogradConv, "apply", counted)
    fast = run()
    assert calls > 0
    monkeypatch.setattr(layers.WinogradConv, "apply", lambda x, w: F.conv2d(x, w))
    assert_same_losses(fast, run(), tol=1e-4)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_compiled_instance_norm_matches_the_stock_one(monkeypatch, layout, dtype, tol):
    """What InstanceNorm2d computes under torch.compile (moments over H and W) gives the stock
    op's output and input gradient, in both layouts and in bfloat16, and keeps the layout."""
    torch.manual_seed(0)
    x = (torch.randn(2, 8, 12, 12) * 3 + 1).to(dtype).contiguous(memory_format=layout)
    upstream = torch.randn(2, 8, 12, 12, dtype=dtype)
    norm = InstanceNorm2d(8)

    def forward_backward(compiling: bool) -> tuple[torch.Tensor, torch.Tensor]:
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: compiling)
        leaf = x.detach().requires_grad_()
        out = norm(leaf)
        out.backward(upstream)
        assert leaf.grad is not None
        return out, leaf.grad

    out, grad = forward_backward(True)
    assert out.dtype == dtype and out.is_contiguous(memory_format=layout)
    stock_out, stock_grad = forward_backward(False)
    torch.testing.assert_close(out, stock_out, rtol=tol, atol=tol)
    torch.testing.assert_close(grad, stock_grad, rtol=tol, atol=tol)


def test_two_processes_train_like_one_with_the_whole_batch(synth_dir, tmp_path):
    """`i2i train --devices 2` (torchrun, gloo on the CPU), each process with half of every
    batch of 4, ends with the weights of one process with batches of 4. Dropout is off: the
    processes draw their own masks."""
    flags = [
        "--data", str(synth_dir), "--load-size", "36", "--crop-size", "32",
        "--generator", "unet_256", "--depth", "5", "--ngf", "8", "--ndf", "8",
        "--disc-layers", "2", "--dropout", "0", "--batch-size", "4", "--max-steps", "4",
        "--log-every", "1", "--device", "cpu", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = {}
    # "half": one process with half the batch, to show that the comparison can tell runs apart
    for name, extra in (("one", []), ("two", ["--devices", "2"]), ("half", ["--batch-size", "2"])):
        runs[name] = tmp_path / name
        command = [sys.executable, "-m", "i2i", "train", *flags, "--out", str(runs[name]), *extra]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.count("trained 4 steps") == 1  # process 0 alone reports
    assert_same_losses(losses(runs["one"]), losses(runs["two"]), tol=1e-5)
    one, two, half = (
        load_file(runs[name] / "checkpoints" / "step_00000004" / "model.safetensors")
        for name in ("one", "two", "half")
    )
    assert one.keys() == two.keys()
    # Biases are left out: nearly all of them feed an instance norm, which cancels them, so
    # their gradient is rounding noise that Adam scales up to lr-sized steps.
    weights = [key for key in one if key.endswith(".weight")]
    assert len(weights) >= 10
    for key in weights:
        torch.testing.assert_close(one[key], two[key], atol=1e-4, rtol=1e-5)
    assert max((half[k] - two[k]).abs().max().item() for k in weights) > 1e-3


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="sets glibc's allocator")
def test_kept_memory_is_not_faulted_in_again():
    """With glibc's thresholds, each 48 MiB tensor is mapped afresh and faulted in page by page;
    with freed memory kept, the next one reuses the last one's pages."""

    def page_faults_of_new_tensors() -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(4):
            torch.ones(12 * 2**20)  # 48 MiB, written page by page
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    try:
        assert keep_freed_memory(False)
        page_faults_of_new_tensors()
        faults_by_default = page_faults_of_new_tensors()
        assert keep_freed_memory(True)
        page_faults_of_new_tensors()  # the heap grows once
        faults_kept = page_faults_of_new_tensors()
    finally:
        keep_freed_memory(True)  # as training sets it
    assert faults_by_default > 0
    assert faults_kept * 10 < faults_by_default, (faults_kept, faults_by_default)
