"""Where one training step's time goes, for one configuration: images/s, then the device's time
by kernel family and the kernels that take the most.

    python benchmarks/step_profile.py --model cyclegan --batch-size 16 --precision bf16 \\
        --channels-last --compile [--device auto|cpu|cuda] [--json out.json]

Random 256x256 batches, the model's full training step (its optimizers included). After a
warm-up of 3 steps (cuDNN autotuning, compiling), 3 rounds of ``--steps`` steps are timed and
the best round is kept; 3 more steps run under ``torch.profiler``. The families: convolutions
and matrix products, cuDNN's NCHW<->NHWC conversions, other copies (of which layout changes
between ops), fused Triton kernels, norms, reflection padding, and the rest. This is what showed
that CycleGAN with channels_last spent most of its GPU time copying activations between layouts
(docs/performance.md, "CycleGAN on the H100").
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from common import SIZE, build, machine, peak_memory_mib, sync, table, write_json
from torch.profiler import ProfilerActivity, profile

from i2i.config import TrainConfig, model_config
from i2i.device import configure_backends, pick_device
from i2i.train.accel import autocast
from i2i.train.step import Updater, make_optimizers

FAMILIES = [  # first match wins (fused Triton kernels are named after the ops they fuse)
    ("cuDNN layout conversion", ("nchwToNhwc", "nhwcToNchw")),
    ("Triton fused", ("triton",)),
    (
        "convolution/matmul",
        (
            "xmma",
            "cutlass",
            "cudnn",
            "gemm",
            "conv",
            "mkldnn",
            "aten::mm",
            "aten::bmm",
            "im2col",
            "col2im",
        ),
    ),
    ("copy", ("copy", "clone", "contiguous")),
    ("reflection pad", ("reflection",)),
    ("norm", ("norm", "welford")),
]


def family(name: str) -> str:
    lowered = name.lower()
    for label, patterns in FAMILIES:
        if any(p.lower() in lowered for p in patterns):
            return label
    return "other"


def device_times(prof: profile, device: torch.device, steps: int) -> dict[str, float]:
    """Milliseconds per step of each kernel (CUDA) or op (CPU, summed over its threads), by its
    own time."""
    times: dict[str, float] = {}
    for event in prof.key_averages():
        if device.type == "cuda":
            own = event.self_device_time_total if event.device_type.name == "CUDA" else 0.0
        else:
            own = event.self_cpu_time_total
        if own > 0:
            times[event.key] = times.get(event.key, 0.0) + own / 1e3 / steps
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="cyclegan", help="pix2pix, cyclegan, cut, fastcut")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--top", type=int, default=12, help="kernels listed")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    device = pick_device(args.device)
    configure_backends(device, deterministic=False)
    train = TrainConfig(
        precision=args.precision, channels_last=args.channels_last, compile=args.compile
    )
    model = build(model_config(args.model), device, train)
    opt = Updater(make_optimizers(model, train), train, device)
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    batch = {
        k: (torch.rand(args.batch_size, 3, SIZE, SIZE, device=device) * 2 - 1).contiguous(
            memory_format=layout
        )
        for k in "AB"
    }

    def steps(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            with autocast(train, device):
                model.training_step(batch, opt)
        sync(device)
        return time.perf_counter() - start

    warmup_s = steps(3)
    step_s = min(steps(args.steps) for _ in range(3)) / args.steps
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        steps(3)
    kernels = device_times(prof, device, 3)
    busy = sum(kernels.values())
    by_family: dict[str, float] = {}
    for name, ms in kernels.items():
        label = family(name)
        by_family[label] = by_family.get(label, 0.0) + ms

    setting = (
        f"{args.model}, batch {args.batch_size}, {args.precision}"
        f"{', channels_last' if args.channels_last else ''}{', compiled' if args.compile else ''}"
    )
    peak_mib = peak_memory_mib(device)
    print(
        f"{setting}: {step_s * 1e3:.1f} ms/step, {args.batch_size / step_s:.1f} img/s, "
        f"warm-up {warmup_s:.0f} s, peak {peak_mib:.0f} MiB; "
        f"{'GPU busy' if device.type == 'cuda' else 'op time, all threads,'} {busy:.1f} ms/step"
    )
    families = [
        {"family": f, "ms/step": ms, "share": ms / busy}
        for f, ms in sorted(by_family.items(), key=lambda item: -item[1])
    ]
    print(table(families, ["family", "ms/step", "share"]))
    top = sorted(kernels.items(), key=lambda item: -item[1])[: args.top]
    print(table([{"kernel": k[:100], "ms/step": ms} for k, ms in top], ["kernel", "ms/step"]))
    result: dict[str, Any] = {
        "machine": machine(device),
        "setting": vars(args),
        "ms/step": step_s * 1e3,
        "img/s": args.batch_size / step_s,
        "warm-up s": warmup_s,
        "peak MiB": peak_mib,
        "families": families,
        "top": [{"kernel": k, "ms/step": ms} for k, ms in top],
    }
    write_json(args.json, result)


if __name__ == "__main__":
    main()
