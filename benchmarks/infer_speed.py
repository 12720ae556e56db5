"""Inference throughput per backend, and translation of a folder end to end.

    python benchmarks/infer_speed.py [--device auto] [--data ../shared/data/maps] [--json out.json]

1. Generator forward passes (eval) at 256x256 in batches of 1 and 8 (``i2i translate``'s
   default) and at 1024x1024 in batches of 1, for PyTorch eager, ``torch.compile`` and ONNX
   Runtime (CPU): images/s and peak memory, each in its own process.
2. A folder of 256x256 photos (the maps val inputs, or random images without the dataset)
   translated end to end on the CPU, folder in, PNG files out, each command timed as a whole process
   (start-up and model loading included, as a user waits for it), in turn, median of the rounds:
   what the reference test script does (``reference_translate.py``: one image at a time, real
   and fake saved, an HTML page) on a generator in the reference's format against
   ``i2i translate`` of its ``i2i import`` (default backend, batches, decode and encode
   overlapped with compute), with an empty export cache and with a warm one.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import machine, peak_memory_mib, seconds, table, write_json
from PIL import Image
from reference_nets import define_g
from untrained import untrained_checkpoint

from i2i.config import GeneratorKind
from i2i.device import keep_freed_memory, pick_device
from i2i.infer.translator import Translator, fastest_backend

GENERATORS: list[GeneratorKind] = ["unet_256", "resnet_9blocks"]
SHAPES = [(256, 1), (256, 8), (1024, 1)]  # image side, batch


def forward_rate(
    ckpt: str, backend: str, size: int, batch: int, device_name: str
) -> dict[str, Any]:
    """Images/s of one backend at one size and batch, in its own process (for its peak
    memory)."""
    device = pick_device(device_name)
    if backend != "onnxruntime" and device.type == "cpu":
        keep_freed_memory()  # as `i2i translate` runs PyTorch on the CPU
    translator = Translator.load(
        ckpt, device_name, backend="onnxruntime" if backend == "onnxruntime" else "torch"
    )
    if backend == "torch.compile":
        translator.net.compile()  # type: ignore[union-attr]
    x = torch.rand(batch, 3, size, size) * 2 - 1
    start = time.perf_counter()
    translator.translate_tensor(x)  # first call: compilation, allocator, autotuning
    first = time.perf_counter() - start
    repeat = 10 if batch * size * size <= 256 * 256 or device.type == "cuda" else 3
    s = seconds(lambda: translator.translate_tensor(x), device, repeat)
    return {"img/s": batch / s, "first call s": first, "peak MiB": peak_memory_mib(device)}


def folder_inputs(data: str, out: Path, n: int) -> Path:
    """``n`` 256x256 photos: left halves of the maps val pairs, resized, or random images."""
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(Path(data, "val").glob("*.jpg"))[:n] if Path(data, "val").is_dir() else []
    for i in range(n):
        if files:
            pair = Image.open(files[i % len(files)])
            im = pair.crop((0, 0, pair.width // 2, pair.height))
            im = im.resize((256, 256), Image.Resampling.BICUBIC)
        else:
            im = Image.fromarray(np.random.default_rng(i).integers(0, 255, (256, 256, 3), np.uint8))
        im.save(out / f"{i:04d}.jpg", quality=95)
    return out


def command_seconds(command: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def reference_generator(folder: Path, netg: str, norm: str, ngf: int = 64) -> tuple[Path, Path]:
    """A generator in the reference code's layout with PyTorch's initial weights (speed does
    not depend on them), saved as that code saves one, and its ``i2i import``: (pth, run)."""
    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    pth = folder / "latest_net_G.pth"
    torch.save(define_g(netg, 3, 3, ngf, norm).state_dict(), pth)
    i2i = [sys.executable, "-m", "i2i", "import", str(pth), "--out", str(folder / "imported")]
    subprocess.run(i2i, check=True, capture_output=True)
    return pth, folder / "imported"


def folder_rows(
    pth: Path,
    reference_args: list[str],
    run: Path,
    inputs: Path,
    tmp: Path,
    rounds: int,
    backends: tuple[str, ...] = ("auto",),
) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """Whole-command seconds per image, median of ``rounds``, all run in turn each round: the
    reference-style script on ``pth`` against ``i2i translate`` of its import ``run`` with each
    backend, ONNX Runtime with an empty export cache (a new checkpoint) and with a warm one.
    Also where each pipeline wrote its images in the first round."""
    n = len(list(inputs.iterdir()))
    here = Path(__file__).parent
    times: dict[str, list[float]] = {}
    outputs: dict[str, Path] = {}

    def timed(name: str, command: list[str], out: Path, env: dict[str, str] | None = None) -> None:
        times.setdefault(name, []).append(command_seconds([*command, str(out)], env))
        outputs.setdefault(name, out)

    for r in range(rounds):
        reference = [sys.executable, str(here / "reference_translate.py"), str(pth), str(inputs),
                     *reference_args]  # fmt: skip
        timed("reference-style", reference, tmp / f"ref{r}")
        for backend in backends:
            i2i = [sys.executable, "-m", "i2i", "translate", str(run), str(inputs), "--device",
                   "cpu", "--no-progress", "--backend", backend, "--out"]  # fmt: skip
            label = {"auto": "i2i", "torch": "i2i, PyTorch", "onnxruntime": "i2i, ONNX Runtime"}
            if backend == "torch":
                timed(label[backend], i2i, tmp / f"{backend}{r}")
                continue
            cold = {**os.environ, "I2I_CACHE": str(tmp / f"cache-{backend}{r}")}
            timed(f"{label[backend]}, new checkpoint", i2i, tmp / f"{backend}-cold{r}", cold)
            warm = {**os.environ, "I2I_CACHE": str(tmp / f"cache-{backend}0")}
            timed(f"{label[backend]}, exported before", i2i, tmp / f"{backend}-warm{r}", warm)
    ref = statistics.median(times["reference-style"]) / n
    rows = []
    for name, values in times.items():
        s = statistics.median(values) / n
        rows.append({"pipeline": name, "images": n, "s/image": s, "speedup": ref / s})
    return rows, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data", default="../shared/data/maps")
    parser.add_argument("--images", type=int, default=50, help="images in the end-to-end folder")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each folder command")
    parser.add_argument("--folder-only", action="store_true", help="skip the forward passes")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    device = pick_device(args.device)
    backends = ["torch eager", "torch.compile"]
    if device.type == "cpu" and fastest_backend("cpu") == "onnxruntime":
        backends.append("onnxruntime")
    context = multiprocessing.get_context("spawn")
    result: dict[str, Any] = {"machine": machine(device), "forward": [], "folder": []}
    with tempfile.TemporaryDirectory() as tmp:
        for gen in [] if args.folder_only else GENERATORS:
            ckpt = str(untrained_checkpoint(Path(tmp, gen), gen))
            for size, batch in SHAPES:
                for backend in backends:
                    with context.Pool(1) as pool:
                        row = pool.apply(forward_rate, (ckpt, backend, size, batch, args.device))
                    row = {"generator": gen, "size": size, "batch": batch, "backend": backend,
                           **row}  # fmt: skip
                    result["forward"].append(row)
                    print(table([row], list(row)), flush=True)
        pth, run = reference_generator(Path(tmp, "folder"), "unet_256", "instance")
        inputs = folder_inputs(args.data, Path(tmp, "inputs"), args.images)
        reference_args = ["--netG", "unet_256", "--norm", "instance"]
        result["folder"], _ = folder_rows(pth, reference_args, run, inputs, Path(tmp), args.rounds)
    if result["forward"]:
        print("\n" + table(result["forward"], list(result["forward"][0])))
    print("\nunet_256, 256x256 photos, folder in, PNG files out, whole commands:")
    print(table(result["folder"], list(result["folder"][0])))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
