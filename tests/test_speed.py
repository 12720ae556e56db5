"""The speed-ups change nothing that is learned: the image cache, 8-bit batches, loader workers,
channels_last, the instance norm that torch.compile fuses, and data-parallel training over two
processes; and the allocator setting that keeps freed memory does keep it. (The CPU kernels'
correctness: test_kernels.py.)"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import default_collate

from i2i.data.build import Pixels
from i2i.data.paired import PairedDataset
from i2i.data.transforms import network_range
from i2i.nets.layers import InstanceNorm2d
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
    [({"data.cache": False}, 1e-6), ({"train.channels_last": True}, 3e-3),
     ({"data.num_workers": 2}, 1e-6)],
    ids=["no-cache", "nhwc", "workers"],  # workers: the GPU default, sharing the cache
)  # fmt: skip
def test_speed_settings_keep_the_losses(synth_dir, tmp_path, change, tol):
    """The data settings compute the same numbers. Memory formats sum in another order (the
    small convolutions' products follow the weight's layout), and training amplifies rounding:
    Adam turns a near-zero gradient's noise into lr-sized steps, and the losses move 1e-7 apart
    at the first two steps and up to 1.1e-3 by the sixth (measured), so 3e-3 there. A layout
    bug in a forward or backward pass shows at the first two steps, which must agree to 1e-5
    in every case. Batch norm, not instance norm: a conv bias before an instance norm has no
    effect at all, so its gradient is pure noise."""
    base = tiny_config(synth_dir, tmp_path / "base", max_steps=6)
    other = tiny_config(synth_dir, tmp_path / "other", max_steps=6)
    for cfg in (base, other):
        cfg.model.generator.norm = cfg.model.discriminator.norm = "batch"
    for key, value in change.items():
        section, name = key.split(".")
        setattr(getattr(other, section), name, value)
    a, b = (losses(train(cfg, progress=False).run_dir) for cfg in (base, other))
    assert_same_losses(a[:2], b[:2], 1e-5)
    assert_same_losses(a, b, tol)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
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


FAULT_PROBE = """
import resource, torch
from i2i.device import keep_freed_memory

def page_faults_of_new_tensors():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(4):
        torch.ones(12 * 2**20)  # 48 MiB, written page by page
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

assert keep_freed_memory(False)
page_faults_of_new_tensors()
by_default = page_faults_of_new_tensors()
assert keep_freed_memory(True)
for _ in range(3):  # the heap grows (over two rounds, here) and then holds still
    page_faults_of_new_tensors()
print(by_default, page_faults_of_new_tensors())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="sets glibc's allocator")
def test_kept_memory_is_not_faulted_in_again():
    """With glibc's thresholds, each 48 MiB tensor is mapped afresh and faulted in page by page;
    with freed memory kept, the next one reuses the last one's pages. Measured in a fresh
    process, whose heap the tests before it have not shaped."""
    probe = subprocess.run([sys.executable, "-c", FAULT_PROBE], capture_output=True, text=True,
                           check=True, timeout=120)  # fmt: skip
    faults_by_default, faults_kept = map(int, probe.stdout.split())
    assert faults_by_default > 0
    assert faults_kept * 10 < faults_by_default, (faults_kept, faults_by_default)


def test_crops_at_the_images_own_scale_are_cached_when_sizes_agree(synth_dir):
    """--preprocess crop keeps each image's own size; one size for all is cached as it is."""
    cfg = replace(tiny_config(synth_dir, Path("unused")).data, preprocess="crop", crop_size=24)
    cached = PairedDataset(cfg, "train", train=True)
    plain = PairedDataset(replace(cfg, cache=False), "train", train=True)
    assert cached.cache is not None and cached.cache.images.shape[1:] == (6, 32, 32)
    for key in [(0, 5), (3, 9), (0, 5)]:
        a, b = cached[key], plain[key]
        assert a["A"].shape == (3, 24, 24)
        assert torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"])
