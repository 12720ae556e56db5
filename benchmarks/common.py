"""Shared by the benchmarks: the paper-sized models, the machine's measured peak, timing, memory
and result files."""

from __future__ import annotations

import json
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import i2i.losses
from i2i.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from i2i.device import keep_freed_memory
from i2i.kernels import use_cpu_kernels
from i2i.models import build_model
from i2i.train.accel import accelerate

SIZE = 256  # image side of the training benchmarks, as in the papers


def build(model: ModelConfig, device: torch.device, train: TrainConfig) -> Any:
    """The model of ``model`` for 256 px images, seeded, on ``device``, as ``i2i train`` runs
    it: the CPU kernels on the CPU, ``train``'s layout and compilation applied."""
    torch.manual_seed(0)
    cfg = RunConfig(data=DataConfig(crop_size=SIZE), model=model, train=train)
    net = build_model(cfg).to(device)
    if device.type == "cpu":
        use_cpu_kernels(net)
    accelerate(net, train)
    return net


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds(fn: Callable[[], object], device: torch.device, repeat: int, warmup: int = 1) -> float:
    """Median wall time of ``fn`` over ``repeat`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine_peak(device: torch.device) -> dict[str, float]:
    """Measured GFLOP/s of a square matmul (2048 on the CPU, 8192 on CUDA, where a smaller one
    does not fill the GPU), a conv forward and a conv forward+backward, in fp32: the ceilings
    that model FLOP utilization is a share of. On CUDA also the matmul in TF32 (what fp32
    training runs in, ``configure_backends``) and in bf16."""
    n, reps = (8192, 20) if device.type == "cuda" else (2048, 5)
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    peak = {"matmul_fp32": 2 * n**3 / seconds(lambda: a @ b, device, reps) / 1e9}
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        peak["matmul_tf32"] = 2 * n**3 / seconds(lambda: a @ b, device, reps) / 1e9
        torch.backends.cuda.matmul.allow_tf32 = False
        a16, b16 = a.bfloat16(), b.bfloat16()
        peak["matmul_bf16"] = 2 * n**3 / seconds(lambda: a16 @ b16, device, reps) / 1e9
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).to(device)
    x = torch.randn(8, 256, 64, 64, device=device, requires_grad=True)
    flops = 2 * 256 * 256 * 9 * 64 * 64 * 8
    peak["conv_fwd_fp32"] = flops / seconds(lambda: conv(x), device, reps) / 1e9
    fwd_bwd = seconds(lambda: conv(x).sum().backward(), device, reps)
    peak["conv_fwd_bwd_fp32"] = 3 * flops / fwd_bwd / 1e9
    return peak


def mfu_peak(peak: dict[str, float], variant: str) -> float:
    """The matmul peak that a training variant's FLOP utilization is a share of: bf16 for the
    bf16 variants, TF32 for fp32 ones on CUDA, fp32 on the CPU."""
    if "bf16" in variant:
        return peak["matmul_bf16"]
    return peak.get("matmul_tf32", peak["matmul_fp32"])


def critic_twice(
    critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's discriminator step: one pass over the real batch, another over fake."""
    return critic(real), critic(fake)


STACKED_CRITIC = i2i.losses.critic_logits


def reference_style_steps(model: torch.nn.Module, on: bool) -> None:
    """Make ``model``'s training steps run as the reference's do (stock convolution kernels, a
    critic pass each for real and fake, glibc's allocator thresholds), or as i2i's again."""
    stock_convolutions(model, on)
    keep_freed_memory(not on)
    i2i.losses.critic_logits = critic_twice if on else STACKED_CRITIC


def stock_convolutions(model: torch.nn.Module, stock: bool) -> None:
    """Switch ``model``'s convolutions to the stock kernels, or back to i2i's (matmul for tiny
    maps, product and fold for few output channels, Winograd for wide 3x3 and 4x4 ones)."""
    use_cpu_kernels(model, on=not stock)


def peak_memory_mib(device: torch.device) -> float:
    """CUDA's max allocated, or this process's peak resident size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine(device: torch.device) -> dict[str, Any]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {
        "device": str(device),
        "name": name or platform.machine(),
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
    }


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A Markdown table of ``rows`` (floats to 3 significant figures)."""

    def cell(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_json(path: str | None, result: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(result, indent=2))
        print(f"\nwrote {path}")
