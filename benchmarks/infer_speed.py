"""Inference throughput per backend, and translation of a folder end to end.

    python benchmarks/infer_speed.py [--device auto] [--data ../shared/data/maps] [--json out.json]

1. Generator forward passes (eval) at 256x256 in batches of 1 and 8 (``i2i translate``'s
   default) and at 1024x1024 in batches of 1, for PyTorch eager, ``torch.compile`` and ONNX
   Runtime (CPU): images/s and peak memory, each in its own process.
2. A folder of 256x256 photos (the maps val inputs, or random images without the dataset)
   translated end to end on the CPU, folder in, PNG files out, each command timed as a whole process
   (start-up and model loading included, as a user waits for it), in turn, median of the rounds:
   what the reference test script does (``reference_translate.py``: one image at a time, real
   and fake saved, an HTML page) against ``i2i translate`` (default backend, batches, decode and
   encode overlapped with compute), with an empty export cache and with a warm one.
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
from safetensors.torch import load_file
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


def folder_rows(ckpt: Path, inputs: Path, tmp: Path, rounds: int) -> list[dict[str, Any]]:
    """Whole-command seconds per image: the reference-style script against ``i2i translate``
    with an empty export cache (a new checkpoint) and a warm one, run in turn each round."""
    pth = tmp / "G.pth"
    weights = load_file(ckpt / "model.safetensors")
    torch.save({k[2:]: v for k, v in weights.items() if k.startswith("G.")}, pth)
    n = len(list(inputs.iterdir()))
    here = Path(__file__).parent
    i2i = [sys.executable, "-m", "i2i", "translate", str(ckpt), str(inputs), "--device", "cpu",
           "--no-progress"]  # fmt: skip
    times: dict[str, list[float]] = {"reference-style": [], "i2i, new checkpoint": [],
                                     "i2i, exported before": []}  # fmt: skip
    for r in range(rounds):
        reference = [sys.executable, str(here / "reference_translate.py"), str(pth), str(inputs)]
        times["reference-style"].append(command_seconds([*reference, str(tmp / f"ref{r}")]))
        cold = {**os.environ, "I2I_CACHE": str(tmp / f"cache{r}")}
        out = ["--out", str(tmp / f"cold{r}")]
        times["i2i, new checkpoint"].append(command_seconds(i2i + out, cold))
        warm = {**os.environ, "I2I_CACHE": str(tmp / "cache0")}
        out = ["--out", str(tmp / f"warm{r}")]
        times["i2i, exported before"].append(command_seconds(i2i + out, warm))
    ref = statistics.median(times["reference-style"]) / n
    rows = []
    for name, values in times.items():
        s = statistics.median(values) / n
        rows.append({"pipeline": name, "images": n, "s/image": s, "speedup": ref / s})
    return rows


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
        folder_ckpt = untrained_checkpoint(Path(tmp, "folder"), "unet_256")
        inputs = folder_inputs(args.data, Path(tmp, "inputs"), args.images)
        result["folder"] = folder_rows(folder_ckpt, inputs, Path(tmp), args.rounds)
    if result["forward"]:
        print("\n" + table(result["forward"], list(result["forward"][0])))
    print("\nunet_256, 256x256 photos, folder in, PNG files out, whole commands:")
    print(table(result["folder"], list(result["folder"][0])))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
