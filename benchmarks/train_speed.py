"""Training throughput of pix2pix configurations: images per second and peak memory.

    python benchmarks/train_speed.py [--device auto|cpu|cuda] [--steps 10]

Times full training steps (D and G updates) on random data after warm-up steps. Peak memory is
the CUDA allocator's peak on a GPU, and the process's peak resident size on a CPU.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from i2i.config import DiscriminatorConfig, GeneratorConfig, Pix2PixConfig, TrainConfig
from i2i.models import Pix2Pix
from i2i.train.loop import configure_determinism, pick_device

CONFIGS = {
    # name: (generator, ngf, ndf, image size, batch size)
    "paper unet_256 @256 bs1": ("unet_256", 64, 64, 256, 1),
    "paper unet_256 @256 bs8": ("unet_256", 64, 64, 256, 8),
    "unet_128 w32 @128 bs4": ("unet_128", 32, 32, 128, 4),
    "resnet_9blocks @256 bs1": ("resnet_9blocks", 64, 64, 256, 1),
}


def measure(
    device: torch.device, gen: str, ngf: int, ndf: int, size: int, bs: int, steps: int
) -> tuple[float, float]:
    torch.manual_seed(0)
    cfg = Pix2PixConfig(
        generator=GeneratorConfig(kind=gen, ngf=ngf),  # type: ignore[arg-type]
        discriminator=DiscriminatorConfig(ndf=ndf),
    )
    model = Pix2Pix(cfg).to(device)
    opt = model.make_optimizers(TrainConfig())
    batch = {k: torch.rand(bs, 3, size, size, device=device) * 2 - 1 for k in "AB"}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(2):  # warm-up: allocator, cuDNN autotuning
        model.training_step(batch, opt)
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        model.training_step(batch, opt)
    sync(device)
    rate = steps * bs / (time.perf_counter() - start)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return rate, peak


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--only", default=None, help="substring of the configs to run")
    args = parser.parse_args()
    device = pick_device(args.device)
    configure_determinism(device, deterministic=False)  # as training does: autotuned cuDNN
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {name}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(f"{'config':28s}{'images/s':>10s}{'peak MiB':>10s}")
    for label, (gen, ngf, ndf, size, bs) in CONFIGS.items():
        if args.only and args.only not in label:
            continue
        rate, peak = measure(device, gen, ngf, ndf, size, bs, args.steps)
        print(f"{label:28s}{rate:10.1f}{peak:10.0f}")


if __name__ == "__main__":
    main()
