"""Score a photo -> map run on the maps val split, next to the constant-colour floor.

    python benchmarks/maps_eval.py RUN_DIR [--data ../shared/data/maps] [--json out.json]
        [--grid OUT.png] [--tile 256 --tile-stats tile]

The protocol of ``../shared/data/README.md`` (GcGAN): output and target at 256x256, per-pixel
accuracy (largest channel difference below 5 levels) and RMSE, plus per-class IoU of the map
palette (``experiments/palettes/maps.yaml``: land, water, park, road, highway; every pixel to
the nearest colour, intersection and union summed over the 100 images). The model translates
each val photo as its run prepared evaluation images (resized to the training crop, or, with
``--preprocess crop``, at the photo's own scale: whole, or with ``--tile N --tile-stats tile``
in tiles of the training crop, each normalized by its own statistics as in training). The
floor is a constant image of the median map colour (232, 228, 223); report figures next to it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from i2i.infer.tiles import Tiling
from i2i.metrics.evaluate import EvalConfig, evaluate_checkpoint
from i2i.metrics.paired import pixel_accuracy, rmse, to_uint8
from i2i.metrics.palette import Palette, PaletteIoU
from i2i.runs.checkpoint import read_card, resolve_checkpoint

PALETTE = Path(__file__).parent.parent / "experiments" / "palettes" / "maps.yaml"
FLOOR = (232, 228, 223)


def floor_scores(data: Path, palette: Palette, size: int = 256) -> dict[str, float]:
    """The constant-colour image's scores against the val targets."""
    files = sorted((data / "val").iterdir(), key=lambda p: int(p.stem) if p.stem.isdigit() else 0)
    ious, accs, errors = PaletteIoU(palette), [], []
    for path in files:
        pair = Image.open(path).convert("RGB")
        w, h = pair.size
        target = to_uint8_image(pair.crop((w // 2, 0, w, h)), size)[None]
        floor = torch.tensor(FLOOR, dtype=torch.uint8).view(1, 3, 1, 1).expand_as(target)
        accs.append(pixel_accuracy(floor, target))
        errors.append(rmse(floor, target))
        ious.add(floor.contiguous(), target)
    return {"pixel_acc": float(torch.cat(accs).mean()), "rmse": float(torch.cat(errors).mean()),
            **ious.compute()}  # fmt: skip


def to_uint8_image(image: Image.Image, size: int) -> torch.Tensor:
    return torch.from_numpy(to_uint8(np.asarray(image, np.float32) / 255, size)).permute(2, 0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder or checkpoint folder")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/maps"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--grid", type=Path, default=None, help="write the val gallery here")
    parser.add_argument("--tile", type=int, default=None, help="translate in tiles of N px")
    parser.add_argument("--overlap", type=int, default=64, help="tile overlap, px")
    parser.add_argument("--tile-stats", choices=["image", "tile"], default="image")
    args = parser.parse_args()
    palette = Palette.read(PALETTE)
    card = read_card(resolve_checkpoint(args.run))
    tiling = Tiling(args.tile, args.overlap, args.tile_stats) if args.tile else None
    cfg = EvalConfig(
        metrics=["pixel_acc", "rmse", "miou"], size=256, palette=str(PALETTE), tiling=tiling
    )
    started = time.perf_counter()
    report = evaluate_checkpoint(args.run, args.data, cfg, progress=False)
    seconds = time.perf_counter() - started
    floor = floor_scores(args.data, palette)
    names = ["pixel_acc", "rmse", "miou", *(f"iou_{n}" for n in palette.names)]
    how = f", {args.tile} px tiles on {args.tile_stats} statistics" if tiling else ", whole"
    print(
        f"maps val, {report.count} images, model {args.run} ({card.model}, step {card.step}{how})"
    )
    print("| | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for label, scores in (("model", report.metrics), ("constant-colour floor", floor)):
        print(f"| {label} | " + " | ".join(f"{scores[n]:.3f}" for n in names) + " |")
    print(f"evaluation took {seconds:.1f} s")
    if args.grid:
        report.gallery.save(args.grid)
        print(f"gallery (input | output | target): {args.grid}")
    if args.json:
        result = {"run": str(args.run), "tiling": vars(tiling) if tiling else None,
                  "model": report.metrics, "floor": floor, "seconds": seconds}  # fmt: skip
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
