"""Which batch-norm statistics translate better for a pix2pix trained at batch size 1 (as the
published pix2pix models were: the reference's default): each image's own, or the running ones?

    nice -n 10 python benchmarks/batch_stats.py [--data DIR] [--size 64] [--steps 2000] \\
        [--json out.json]

Trains pix2pix with batch norm at batch size 1 (a unet of depth log2(size), ngf 32) on a paired
dataset (default: the built-in synthetic one, written to a temporary folder), then scores its val
split twice with ``i2i evaluate``'s paired metrics: the checkpoint as saved (running statistics,
the reference's ``--eval``) and the same weights with ``batch_stats: image`` in its card (the
reference test script's default, and the paper's). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
from pathlib import Path

from common import table, write_json

from i2i.config import DataConfig, GeneratorConfig, Pix2PixConfig, RunConfig, TrainConfig
from i2i.data.synth import write_synthetic
from i2i.metrics.evaluate import EvalConfig, evaluate_checkpoint
from i2i.runs.checkpoint import resolve_checkpoint
from i2i.train.loop import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="paired dataset [synthetic, 64 px]")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or str(write_synthetic(Path(tmp, "data"), 400, 50, args.size, seed=0))
        cfg = RunConfig(
            data=DataConfig(root=data, load_size=args.size + args.size // 8, crop_size=args.size),
            model=Pix2PixConfig(generator=GeneratorConfig(
                kind="unet_256", depth=int(math.log2(args.size)), ngf=32, norm="batch")),
            train=TrainConfig(out=str(Path(tmp, "run")), batch_size=1, max_steps=args.steps,
                              save_every=args.steps, image_every=10**9, log_every=100),
        )  # fmt: skip
        ckpt = resolve_checkpoint(train(cfg, progress=True).run_dir)
        image = Path(tmp, "image")
        shutil.copytree(ckpt, image)
        card = json.loads((image / "model.json").read_text())
        card["nets"]["G"]["config"]["batch_stats"] = "image"
        (image / "model.json").write_text(json.dumps(card))
        rows = []
        for name, path in (("running (--eval)", ckpt), ("each image's own", image)):
            report = evaluate_checkpoint(path, data, EvalConfig(metrics=["l1", "psnr", "ssim"],
                                         device="cpu"), progress=False)  # fmt: skip
            rows.append({"batch-norm statistics": name, **report.metrics, "images": report.count})
    print(f"pix2pix, batch norm, batch size 1, {args.steps} steps, {args.size} px:")
    print(table(rows, list(rows[0])))
    write_json(args.json, {"args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
