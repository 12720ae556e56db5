"""Load test of `i2i serve` on loopback: N concurrent clients for T seconds, per backend.

    python benchmarks/serve_load.py [--checkpoint RUN] [--clients 8] [--seconds 20] [--size 256]

Starts the real command (`python -m i2i serve`) in a subprocess, waits for /healthz, then each
client posts the same PNG again and again. Prints throughput, p50/p95 latency and the error
count for each backend, and writes them as JSON (--json). Without --checkpoint it serves an
untrained paper-size pix2pix (unet_256, width 64): speed does not depend on the weights.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from untrained import untrained_checkpoint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_backend(checkpoint: Path, backend: str, clients: int, seconds: float, png: bytes) -> dict:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "i2i", "serve", "--model", f"bench={checkpoint}",
         "--port", str(port), "--backend", backend, "--queue", str(4 * clients)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.time() > deadline or server.poll() is not None:
                raise RuntimeError(f"server did not start: {server.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            time.sleep(0.2)
        latencies: list[float] = []
        errors = [0]
        stop = time.perf_counter() + seconds

        def client() -> None:
            with httpx.Client(base_url=base, timeout=120) as c:
                while time.perf_counter() < stop:
                    t0 = time.perf_counter()
                    r = c.post("/v1/models/bench/translate", files={"image": ("x.png", png)})
                    if r.status_code == 200:
                        latencies.append(time.perf_counter() - t0)
                    else:
                        errors[0] += 1

        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(30)
    q = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else [float("nan")] * 19
    return {
        "backend": backend,
        "clients": clients,
        "seconds": round(wall, 1),
        "requests": len(latencies),
        "errors": errors[0],
        "images_per_s": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p95_ms": q[18] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--size", type=int, default=256, help="side of the uploaded image")
    parser.add_argument("--backends", default="torch,onnxruntime")
    parser.add_argument("--json", type=Path, default=Path("serve_load.json"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (args.size, args.size, 3), np.uint8)).save(buf, "PNG")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoint or untrained_checkpoint(Path(tmp))
        rows = [
            run_backend(ckpt, b, args.clients, args.seconds, buf.getvalue())
            for b in args.backends.split(",")
        ]
    print(f"i2i serve on loopback, {args.clients} clients, {args.size}x{args.size} PNG uploads")
    print(
        f"{'backend':14s}{'img/s':>8s}{'p50 ms':>9s}{'p95 ms':>9s}{'requests':>10s}{'errors':>8s}"
    )
    for r in rows:
        print(f"{r['backend']:14s}{r['images_per_s']:8.2f}{r['p50_ms']:9.0f}{r['p95_ms']:9.0f}"
              f"{r['requests']:10d}{r['errors']:8d}")  # fmt: skip
    args.json.write_text(json.dumps(rows, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
