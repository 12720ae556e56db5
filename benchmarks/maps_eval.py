"""Evaluate a photo -> map run on the maps val split with the literature's protocol.

    python benchmarks/maps_eval.py RUN_DIR [--data ../shared/data/maps] [--grid OUT.png]

Prints per-pixel accuracy and RMSE (GcGAN protocol: output and target resized to 256x256;
a pixel is correct when max(|dR|, |dG|, |dB|) < 5), next to the floor that a constant image of
the median map colour (232, 228, 223) scores, and writes a grid of val translations.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import save_image

import i2i
from i2i.data.paired import PairedDataset
from i2i.infer.grid import sample_grid
from i2i.metrics.evaluate import evaluate_translator
from i2i.metrics.paired import pixel_accuracy, rmse, to_uint8
from i2i.runs.checkpoint import read_card, resolve_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder or checkpoint folder")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/maps"))
    parser.add_argument("--grid", type=Path, default=None, help="write a val grid PNG here")
    args = parser.parse_args()  # --data: paired (val/) or unpaired (valA/ + valB/) maps

    cfg = read_card(resolve_checkpoint(args.run)).run_config().data  # a run or one checkpoint
    cfg.root = str(args.data)
    val = PairedDataset(cfg, "val", train=False)
    model = i2i.load(args.run)
    started = time.perf_counter()
    scores = evaluate_translator(model, val, ["pixel_acc", "rmse"], size=256)
    seconds = time.perf_counter() - started

    floor = np.empty((256, 256, 3), np.uint8)
    floor[:] = (232, 228, 223)
    targets = torch.stack(
        [torch.from_numpy(to_uint8(val.raw_target(i), 256)) for i in range(len(val))]
    ).permute(0, 3, 1, 2)
    floors = torch.from_numpy(floor).permute(2, 0, 1).expand_as(targets)
    floor_acc = float(pixel_accuracy(floors, targets).mean())
    floor_rmse = float(rmse(floors, targets).mean())

    print(f"maps val, {len(val)} images, direction {cfg.direction}, model {args.run}")
    print(f"{'':24s}{'pixel acc':>10s}{'RMSE':>8s}")
    print(f"{'model':24s}{scores['pixel_acc']:10.3f}{scores['rmse']:8.2f}")
    print(f"{'constant-colour floor':24s}{floor_acc:10.3f}{floor_rmse:8.2f}")
    print(f"evaluation took {seconds:.1f} s on {model.device}")

    if args.grid:
        items = [val[i] for i in range(6)]
        inputs = torch.stack([it["A"] for it in items])
        with torch.no_grad():
            outputs = model.translate_tensor(inputs).cpu()
        grid = sample_grid([inputs, outputs, torch.stack([it["B"] for it in items])])
        save_image(grid, args.grid)
        print(f"grid (input | output | target): {args.grid}")


if __name__ == "__main__":
    main()
