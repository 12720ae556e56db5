"""An imported reference generator through ``i2i translate`` against the reference-style test
script, on the CPU, whole commands, in one run.

    nice -n 10 python benchmarks/imported_translate.py [--netG resnet_9blocks] [--norm instance]
        [--images 20] [--rounds 2] [--data ../shared/data/maps] [--json out.json]

A generator in the reference pix2pix/CycleGAN code's format (``latest_net_G.pth``; by default the
published CycleGAN models' architecture, resnet_9blocks with instance norm and ngf 64, with
PyTorch's initial weights: speed does not depend on them) is imported with ``i2i import``. Each
round then runs, in turn, on the same folder of 256x256 photos (the maps val inputs, or random
images without the dataset): the reference-style script (``reference_translate.py``: batch 1,
real and fake PNG, an HTML page), ``i2i translate --backend torch``, and ``i2i translate
--backend onnxruntime`` with an empty export cache and with a warm one. Every command is timed
as a whole process, start-up and model loading included. The table gives seconds per image
(median of the rounds), the speedup over the reference-style script and the largest difference
between each pipeline's PNGs and the reference script's (8-bit levels).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import table, write_json
from infer_speed import folder_inputs, folder_rows, reference_generator
from PIL import Image


def largest_difference(reference: Path, ours: Path) -> int:
    """Max |difference| (levels) between the reference script's fakes and our outputs."""
    worst = 0
    for fake in sorted((reference / "images").glob("*_fake.png")):
        mine = (
            ours / "images" / fake.name
            if ours == reference
            else ours / fake.name.replace("_fake", "")
        )
        a, b = (np.asarray(Image.open(f)).astype(int) for f in (fake, mine))
        worst = max(worst, int(np.abs(a - b).max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netG", default="resnet_9blocks")
    parser.add_argument("--norm", default="instance")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--data", default="../shared/data/maps")
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        pth, run = reference_generator(Path(tmp, "model"), args.netG, args.norm, args.ngf)
        imported_s = time.perf_counter() - start
        inputs = folder_inputs(args.data, Path(tmp, "inputs"), args.images)
        reference_args = ["--netG", args.netG, "--norm", args.norm, "--ngf", str(args.ngf)]
        rows, outputs = folder_rows(pth, reference_args, run, inputs, Path(tmp), args.rounds,
                                    ("torch", "onnxruntime"))  # fmt: skip
        for row in rows:
            row["max diff"] = largest_difference(
                outputs["reference-style"], outputs[row["pipeline"]]
            )
    result: dict[str, Any] = {"generator": vars(args), "import s": imported_s, "folder": rows}
    print(f"{args.netG}, {args.norm} norm, ngf {args.ngf}: saved in the reference format and "
          f"imported (with writing the file) in {imported_s:.1f} s")  # fmt: skip
    print(f"{rows[0]['images']} photos of 256x256, folder in, PNG files out, whole commands, "
          f"median of {args.rounds} rounds:")  # fmt: skip
    print(table(rows, list(rows[0])))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
