"""Batch translation throughput with the inputs shared out over processes (``i2i translate
--devices N``), against one process, as whole commands.

    python benchmarks/translate_shards.py [--images 96] [--size 256] [--rounds 2] [--json out.json]

A folder of random ``--size`` px images goes through an untrained unet_256 (speed does not
depend on the weights) with each backend: PyTorch and ONNX Runtime (its export cached first),
in 1 process and in 2 (torchrun, gloo; each process takes its share of the CPU cores). Each
command runs as a user runs it, start-up, model loading and writing included, in turn for
``--rounds`` rounds; the table shows the median images/s and the ratio to 1 process. On a GPU
machine, ``--device cuda`` times 1 GPU with batches.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import table, write_json
from PIL import Image
from untrained import untrained_checkpoint


def run(args: list[str]) -> float:
    """Seconds one ``i2i translate`` command takes, as a whole process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "i2i", "translate", *args], capture_output=True,
                          text=True)  # fmt: skip
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="i2i-shards-"))
    ckpt = untrained_checkpoint(work / "ckpt")
    rng = np.random.default_rng(0)
    (work / "in").mkdir()
    for i in range(args.images):
        pixels = rng.integers(0, 255, (args.size, args.size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(work / "in" / f"{i:05d}.png")
    backends = ["torch"] if args.device != "cpu" else ["torch", "onnxruntime"]
    # the first ONNX Runtime run exports the checkpoint and caches the export: not timed
    run([str(ckpt), str(work / "in" / "00000.png"), "--out", str(work / "warm"),
         "--backend", "onnxruntime", "--no-progress"])  # fmt: skip
    rows: list[dict[str, Any]] = []
    times: dict[tuple[str, int], list[float]] = {}
    for r in range(args.rounds):
        for backend in backends:
            for processes in (1, 2):
                out = work / f"out-{backend}-{processes}-{r}"
                command = [str(ckpt), str(work / "in"), "--out", str(out), "--backend", backend,
                           "--device", args.device, "--no-progress"]  # fmt: skip
                if processes > 1:
                    command += ["--devices", str(processes)]
                times.setdefault((backend, processes), []).append(run(command))
    for (backend, processes), seconds in times.items():
        rate = args.images / statistics.median(seconds)
        rows.append({"backend": backend, "processes": processes, "images": args.images,
                     "size": args.size, "median s": statistics.median(seconds),
                     "images/s": rate})  # fmt: skip
    for row in rows:
        one = next(r for r in rows if r["backend"] == row["backend"] and r["processes"] == 1)
        row["vs 1 process"] = row["images/s"] / one["images/s"]
    print(table(rows, list(rows[0])))
    write_json(args.json, {"rows": rows})


if __name__ == "__main__":
    main()
