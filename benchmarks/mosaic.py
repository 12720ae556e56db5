"""Translate a large mosaic tile by tile: time and peak memory against the image's size.

    python benchmarks/mosaic.py [--side 8192] [--tile 512] [--overlap 64] [--checkpoint RUN]

Makes a side x side RGB image (smooth noise, as PNG, or with --npy as a .npy array), then
runs the real command, `i2i translate --tile`, in a child process and reads its peak resident
memory (all of it, and the anonymous part: a memory-mapped file's pages count in the resident
size but the kernel can drop them). A PNG is decoded whole (8-bit input and output in
memory); a .npy is memory-mapped in and out, so memory stays bounded by one strip of tiles.
Without --checkpoint it uses an untrained unet_256 of width 32.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from untrained import untrained_checkpoint


def rss_anon_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=8192)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--npy", action="store_true", help="a memory-mapped .npy mosaic")
    parser.add_argument("--json", type=Path, default=Path("mosaic.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        ckpt = args.checkpoint or untrained_checkpoint(tmp / "ckpt", ngf=32)
        small = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
        big = Image.fromarray(small).resize((args.side, args.side), Image.Resampling.BICUBIC)
        Image.MAX_IMAGE_PIXELS = None
        source = tmp / ("mosaic.npy" if args.npy else "mosaic.png")
        if args.npy:
            np.save(source, np.asarray(big))
        else:
            big.save(source, compress_level=1)
        del big
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "i2i", "translate", str(ckpt), str(source),
             "--out", str(tmp / "out"), "--tile", str(args.tile), "--overlap", str(args.overlap),
             "--no-progress"],
        )  # fmt: skip
        peak_anon = 0
        while child.poll() is None:  # anonymous memory: what the page cache cannot reclaim
            peak_anon = max(peak_anon, rss_anon_kib(child.pid))
            time.sleep(0.1)
        assert child.returncode == 0
        seconds = time.perf_counter() - started
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if args.npy:
            assert np.load(tmp / "out" / "mosaic.npy", mmap_mode="r").shape[:2] == (args.side,) * 2
        else:
            assert Image.open(tmp / "out" / "mosaic.png").size == (args.side, args.side)
    image_mib = 3 * args.side**2 / 2**20
    stride = args.tile - args.overlap
    tiles = (-(-max(args.side - args.tile, 0) // stride) + 1) ** 2
    row = {
        "source": "npy (memory-mapped)" if args.npy else "png",
        "side": args.side,
        "tile": args.tile,
        "overlap": args.overlap,
        "tiles": tiles,
        "seconds": round(seconds, 1),
        "megapixels_per_s": args.side**2 / 1e6 / seconds,
        "peak_rss_mib": round(peak_mib),
        "peak_anonymous_rss_mib": round(peak_anon / 1024),
        "image_mib_8bit": round(image_mib),
        "float_image_mib": round(4 * image_mib),
    }
    print(json.dumps(row, indent=2))
    args.json.write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
