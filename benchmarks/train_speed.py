"""Training-step throughput and model FLOP utilization (MFU) of the paper configurations.

    python benchmarks/train_speed.py [--device auto|cpu|cuda] [--only pix2pix] [--json out.json]

For each configuration: the FLOPs of one training step (``torch.utils.flop_counter``), the
median step time, images/s, achieved GFLOP/s and their share of the machine's fp32 peak measured
in the same run (a 2048 matmul; a conv forward and forward+backward are shown too), and peak
memory (process RSS on the CPU, CUDA max allocated on a GPU). Each configuration runs in its own
process, so its peak memory is its own.

CPU: "reference-style" steps (a per-tensor Adam loop, stock convolution kernels, the
discriminator run separately on the real and the fake batch, and glibc's allocator thresholds,
as the reference implementation runs) alternate with i2i's steps on the same model, so machine
noise hits both alike; "speedup" is their ratio. CUDA: i2i's fp32 (TF32) steps, then bf16 +
channels_last, then, at the largest batch only (compiling takes minutes), those plus
torch.compile; each variant's MFU is a share of the matmul peak in its own arithmetic. The
peak is measured at the start and at the end of the run, and the better figure kept.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
from common import (
    SIZE,
    build,
    machine,
    machine_peak,
    mfu_peak,
    peak_memory_mib,
    reference_style_steps,
    stock_convolutions,
    sync,
    table,
    write_json,
)
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from i2i.config import (
    CUTConfig,
    CycleGANConfig,
    DataConfig,
    Pix2PixConfig,
    TrainConfig,
)
from i2i.data.build import Pixels
from i2i.data.paired import EpochBatchSampler, PairedDataset
from i2i.data.transforms import network_range
from i2i.device import configure_backends, pick_device
from i2i.train.accel import autocast, to_device
from i2i.train.step import Updater, make_optimizers

# name: (model config factory, batch sizes on the CPU, batch sizes on CUDA, CPU rounds)
CONFIGS: dict[str, tuple[Any, list[int], list[int], int]] = {
    "pix2pix unet_256 + PatchGAN 70": (Pix2PixConfig, [1, 4], [1, 16, 64], 6),
    "cyclegan resnet_9blocks": (CycleGANConfig, [1], [1, 16], 2),
    "cut resnet_9blocks": (lambda: CUTConfig(kind="cut"), [1], [1, 16], 2),
    "fastcut resnet_9blocks": (lambda: CUTConfig(kind="fastcut"), [1], [1, 16], 2),
}


def reference_style(model: Any, train: TrainConfig, device: torch.device) -> Updater:
    """Per-tensor Adam loops, stock convolutions and two critic passes, on ``model``'s
    networks."""
    reference_style_steps(model, True)
    optimizers = {
        name: torch.optim.Adam(
            opt.param_groups[0]["params"], lr=train.lr, betas=(0.5, 0.999), foreach=False
        )
        for name, opt in make_optimizers(model, train).items()
    }
    return Updater(dict(optimizers), train, device)


def measure(name: str, bs: int, device_name: str, rounds: int, compiled: bool) -> dict[str, Any]:
    """One configuration, in its own process; ``compiled`` adds the torch.compile variant on
    CUDA."""
    device = pick_device(device_name)
    configure_backends(device, deterministic=False)
    factory = CONFIGS[name][0]
    batch = {k: torch.rand(bs, 3, SIZE, SIZE) * 2 - 1 for k in "AB"}
    row: dict[str, Any] = {"config": name, "batch": bs}
    variants: dict[str, TrainConfig] = {"i2i": TrainConfig()}
    if device.type == "cuda":
        variants["bf16+nhwc"] = TrainConfig(precision="bf16", channels_last=True)
        if compiled:
            variants["bf16+nhwc+compile"] = TrainConfig(
                precision="bf16", channels_last=True, compile=True
            )
    for label, train in variants.items():
        model = build(factory(), device, train)
        opt = Updater(make_optimizers(model, train), train, device)
        data = to_device(batch, device, train.channels_last)

        def step(m: Any = model, o: Any = opt, d: Any = data, t: TrainConfig = train) -> None:
            with autocast(t, device):
                m.training_step(d, o)

        if "GFLOP/step" not in row:
            # the model's FLOPs, as direct convolutions: Winograd does fewer multiplications
            stock_convolutions(model, True)
            with FlopCounterMode(display=False) as counter:
                step()
            stock_convolutions(model, False)
            row["GFLOP/step"] = counter.get_total_flops() / 1e9
        compile_start = time.perf_counter()
        step()
        step()  # warm-up: allocator, cuDNN autotuning, compilation
        sync(device)
        if train.compile:
            row["compile s"] = time.perf_counter() - compile_start
        if label == "i2i":  # before the reference-style optimizers add their state
            row["peak MiB"] = peak_memory_mib(device)
        times: dict[str, list[float]] = {label: []}
        ref_opt = reference_style(model, train, device) if device.type == "cpu" else None
        if ref_opt is not None:
            times["reference-style"] = []
            step(o=ref_opt)  # warm-up of the stock kernels
        for _ in range(rounds):
            for kind in times:
                reference_style_steps(model, kind == "reference-style")
                start = time.perf_counter()
                step(o=ref_opt if kind == "reference-style" else opt)
                sync(device)
                times[kind].append(time.perf_counter() - start)
        for kind, values in times.items():
            row[f"{kind} s/step"] = statistics.median(values)
        del model, opt
    return row


def measure_with_data(data: str, rounds: int, block: int = 10) -> dict[str, Any]:
    """pix2pix at batch 1 fed from the maps training split: whole training iterations, loader
    included. Reference-style: 4 worker processes decode and resize every image every epoch, as
    the reference's default loader does, feeding the reference-style step. i2i: the image cache
    (warm) read in the training process, feeding i2i's step. Blocks of ``block`` iterations
    alternate; a block is longer than the workers' prefetch, so the reference pays its decoding
    while it steps, as it does in a real run (its workers stay ahead of the CPU step)."""
    device = torch.device("cpu")
    train = TrainConfig()
    model = build(Pix2PixConfig(), device, train)
    opt = Updater(make_optimizers(model, train), train, device)
    ref_opt = reference_style(model, train, device)
    batches: dict[str, Iterator[dict[str, Any]]] = {}
    # 4 workers on fewer cores is the reference's default, kept on purpose
    warnings.filterwarnings("ignore", message="This DataLoader will create")
    n = 64  # pairs per epoch: i2i's cache warms in one epoch
    for kind, cache, workers in (("reference-style", False, 4), ("i2i", True, 0)):
        dataset = PairedDataset(DataConfig(root=data, cache=cache), "train", train=True)
        loader = DataLoader(
            Pixels(dataset) if kind == "i2i" else dataset,  # as each trains
            batch_sampler=EpochBatchSampler(min(n, len(dataset)), 1, 0, 0, 1_000_000),
            num_workers=workers,
            persistent_workers=workers > 0,
        )
        batches[kind] = iter(loader)
    for _ in range(n):
        next(batches["i2i"])  # the first epoch fills the cache
    stock_convolutions(model, True)
    with FlopCounterMode(display=False) as counter:
        batch = network_range(next(batches["i2i"]))
        model.training_step({"A": batch["A"], "B": batch["B"]}, opt)
    gflop = counter.get_total_flops() / 1e9
    times: dict[str, list[float]] = {kind: [] for kind in batches}
    for _ in range(rounds):
        for kind, source in batches.items():
            reference_style_steps(model, kind == "reference-style")
            optimizers = ref_opt if kind == "reference-style" else opt
            start = time.perf_counter()
            for _ in range(block):
                batch = network_range(next(source))
                model.training_step({"A": batch["A"], "B": batch["B"]}, optimizers)
            times[kind].append((time.perf_counter() - start) / block)
    row: dict[str, Any] = {"config": "pix2pix, maps loader included", "batch": 1,
                           "GFLOP/step": gflop}  # fmt: skip
    return row | {f"{kind} s/step": statistics.median(v) for kind, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--only", default=None, help="substring of the configurations to run")
    parser.add_argument("--rounds", type=int, default=None, help="timed steps per variant")
    parser.add_argument("--data", default="../shared/data/maps",
                        help="paired data for the loader-included pix2pix row (CPU; skipped "
                             "when absent)")  # fmt: skip
    parser.add_argument("--no-compile", action="store_true", help="CUDA: skip torch.compile")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    device = pick_device(args.device)
    info = machine(device)
    peak = machine_peak(device)
    print(f"{info}\nmeasured peak GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in peak.items()))
    rows = []
    context = multiprocessing.get_context("spawn")
    for name, (_, cpu_batches, cuda_batches, cpu_rounds) in CONFIGS.items():
        if args.only and args.only not in name:
            continue
        batches = cuda_batches if device.type == "cuda" else cpu_batches
        rounds = args.rounds or (20 if device.type == "cuda" else cpu_rounds)
        jobs: list[tuple[Any, tuple[Any, ...]]] = [
            (measure, (name, bs, args.device, rounds, bs == max(batches) and not args.no_compile))
            for bs in batches
        ]
        if name.startswith("pix2pix") and device.type == "cpu" and Path(args.data).is_dir():
            jobs.append((measure_with_data, (args.data, args.rounds or 3)))
        for job, job_args in jobs:
            # one process per job, not daemonic: the loader row starts worker processes
            with ProcessPoolExecutor(1, mp_context=context) as pool:
                row = pool.submit(job, *job_args).result()
            bs = row["batch"]
            for key in [k for k in row if k.endswith(" s/step")]:
                kind = key.removesuffix(" s/step")
                row[f"{kind} img/s"] = bs / row[key]
                row[f"{kind} GFLOP/s"] = row["GFLOP/step"] / row[key]
            if "reference-style s/step" in row:
                row["speedup"] = row["reference-style s/step"] / row["i2i s/step"]
            rows.append(row)
            print(table([row], list(row)), flush=True)
    # a shared machine: measure the peak again and keep the better figure, so that a busy
    # moment during one measurement cannot inflate every utilization
    again = machine_peak(device)
    peak = {k: max(v, again[k]) for k, v in peak.items()}
    print("peak GFLOP/s, best of two: " + ", ".join(f"{k} {v:.0f}" for k, v in peak.items()))
    for row in rows:
        for key in [k for k in row if k.endswith(" GFLOP/s")]:
            kind = key.removesuffix(" GFLOP/s")
            row[f"{kind} MFU"] = row[key] / mfu_peak(peak, kind)
    columns = ["config", "batch", "GFLOP/step"]
    columns += sorted({k for r in rows for k in r if k.endswith((" s/step", " MFU"))})
    columns += [c for c in ("speedup", "compile s", "peak MiB") if any(c in r for r in rows)]
    print("\n" + table(rows, columns))
    write_json(args.json, {"machine": info, "peak_gflops": peak, "rows": rows})


if __name__ == "__main__":
    main()
