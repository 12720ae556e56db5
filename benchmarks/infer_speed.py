"""Inference throughput per backend, and translation of a folder end to end.

    python benchmarks/infer_speed.py [--device auto] [--data ../shared/data/maps] [--json out.json]

1. Generator forward passes (eval, batch 1) at 256x256 and 1024x1024 for PyTorch eager,
   ``torch.compile`` and ONNX Runtime (CPU): images/s and peak memory, each in its own process.
2. A folder of 256x256 photos (the maps val inputs, or random images without the dataset)
   translated end to end, files in and PNG files out: reference-style (one image at a time:
   decode, forward, encode, in turn, as the reference test script) against
   ``i2i translate`` (default backend, batches, decode and encode overlapped with compute).
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import machine, peak_memory_mib, seconds, table, write_json
from PIL import Image
from untrained import untrained_checkpoint

from i2i.infer.translator import Translator, fastest_backend, translate_files
from i2i.train.accel import pick_device

GENERATORS = ["unet_256", "resnet_9blocks"]
SIZES = [256, 1024]


def forward_rate(ckpt: str, backend: str, size: int, device_name: str) -> dict[str, Any]:
    """Images/s of one backend at one size, in its own process (for its peak memory)."""
    device = pick_device(device_name)
    translator = Translator.load(
        ckpt, device_name, backend="onnxruntime" if backend == "onnxruntime" else "torch"
    )
    if backend == "torch.compile":
        translator.net.compile()  # type: ignore[union-attr]
    x = torch.rand(1, 3, size, size) * 2 - 1
    start = time.perf_counter()
    translator.translate_tensor(x)  # first call: compilation, allocator, autotuning
    first = time.perf_counter() - start
    repeat = 10 if size <= 256 or device.type == "cuda" else 2
    s = seconds(lambda: translator.translate_tensor(x), device, repeat)
    return {"img/s": 1 / s, "first call s": first, "peak MiB": peak_memory_mib(device)}


def folder_inputs(data: str, out: Path, n: int) -> Path:
    """``n`` 256x256 photos: left halves of the maps val pairs, resized, or random images."""
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(Path(data, "val").glob("*.jpg"))[:n] if Path(data, "val").is_dir() else []
    for i in range(n):
        if files:
            im = Image.open(files[i % len(files)])
            im = im.crop((0, 0, im.width // 2, im.height)).resize((256, 256), Image.BICUBIC)
        else:
            im = Image.fromarray(np.random.default_rng(i).integers(0, 255, (256, 256, 3), np.uint8))
        im.save(out / f"{i:04d}.jpg", quality=95)
    return out


def reference_style(ckpt: str, inputs: Path, out: Path, device_name: str) -> None:
    translator = Translator.load(ckpt, device_name, backend="torch")
    out.mkdir(parents=True, exist_ok=True)
    for f in sorted(inputs.iterdir()):
        translator(Image.open(f).convert("RGB")).save(out / f"{f.stem}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data", default="../shared/data/maps")
    parser.add_argument("--images", type=int, default=48, help="images in the end-to-end folder")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    device = pick_device(args.device)
    backends = ["torch eager", "torch.compile"]
    if device.type == "cpu" and fastest_backend(device) == "onnxruntime":
        backends.append("onnxruntime")
    context = multiprocessing.get_context("spawn")
    result: dict[str, Any] = {"machine": machine(device), "forward": [], "folder": []}
    with tempfile.TemporaryDirectory() as tmp:
        for gen in GENERATORS:
            ckpt = str(untrained_checkpoint(Path(tmp, gen), gen))
            for size in SIZES:
                for backend in backends:
                    with context.Pool(1) as pool:
                        row = pool.apply(forward_rate, (ckpt, backend, size, args.device))
                    row = {"generator": gen, "size": size, "backend": backend, **row}
                    result["forward"].append(row)
                    print(table([row], list(row)), flush=True)
        ckpt = str(untrained_checkpoint(Path(tmp, "folder"), "unet_256"))
        inputs = folder_inputs(args.data, Path(tmp, "inputs"), args.images)
        start = time.perf_counter()
        reference_style(ckpt, inputs, Path(tmp, "ref"), args.device)
        ref = (time.perf_counter() - start) / args.images
        start = time.perf_counter()
        backend = fastest_backend(device)
        translator = Translator.load(ckpt, args.device, backend=backend)
        translate_files(translator, [inputs], Path(tmp, "i2i"), progress=False)
        ours = (time.perf_counter() - start) / args.images
        result["folder"] = [
            {"pipeline": "reference-style (batch 1, in turn)", "s/image": ref, "speedup": 1.0},
            {"pipeline": f"i2i translate ({backend}, incl. load)", "s/image": ours,
             "speedup": ref / ours},
        ]  # fmt: skip
    print("\n" + table(result["forward"], list(result["forward"][0])))
    print("\nunet_256, 256x256 photos, folder in, PNG files out:")
    print(table(result["folder"], ["pipeline", "s/image", "speedup"]))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
