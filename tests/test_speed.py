"""The speed-ups change nothing that is learned: the image cache, channels_last, the matmul path
of small transposed convolutions, and data-parallel training over two processes."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from i2i.data.paired import PairedDataset
from i2i.nets.layers import ConvTranspose2d
from i2i.train import train
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


@pytest.mark.parametrize(
    "change", [{"data.cache": False}, {"train.channels_last": True}], ids=["no-cache", "nhwc"]
)
def test_speed_settings_keep_the_losses(synth_dir, tmp_path, change):
    base = tiny_config(synth_dir, tmp_path / "base", max_steps=6)
    other = tiny_config(synth_dir, tmp_path / "other", max_steps=6)
    for key, value in change.items():
        section, name = key.split(".")
        setattr(getattr(other, section), name, value)
    assert_same_losses(
        losses(train(base, progress=False).run_dir),
        losses(train(other, progress=False).run_dir),
        tol=1e-4,
    )


@pytest.mark.parametrize("size", [1, 2, 5, 8])
def test_small_transposed_convolutions_match_the_stock_ones(size):
    torch.manual_seed(0)
    layer = ConvTranspose2d(16, 8, 4, 2, 1)
    stock = torch.nn.ConvTranspose2d(16, 8, 4, 2, 1)
    stock.load_state_dict(layer.state_dict())
    x = torch.randn(2, 16, size, size, requires_grad=True)
    y, y_ref = layer(x), stock(x)
    assert y.shape == y_ref.shape == (2, 8, 2 * size, 2 * size)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x, layer.weight, layer.bias], g)
    grads_ref = torch.autograd.grad(y_ref, [x, stock.weight, stock.bias], g)
    for got, want in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


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
