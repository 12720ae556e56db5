"""A whole pix2pix training run on a paired dataset, timed, then scored on its val split.

    python benchmarks/train_schedule.py [--data ../shared/data/maps] [--epochs 100]
        [--epochs-decay 100] [--batch-size 16] [--lr-rule sqrt] [--precision bf16]
        [--channels-last] [--compile] [--workers N] [--json out.json]

The paper's maps schedule is 200 epochs of 1,096 pairs at 256 px, batch 1, lr 2e-4. This runs
any part of it with i2i's training loop as ``i2i train`` does (loader, image cache, logging,
checkpoints and all), and prints:

- the run's wall time and its first epoch's (which decodes every image into the cache, and
  compiles with ``--compile``);
- the steady rate, images/s from the second epoch on, and at that rate the minutes the whole
  paper schedule would take (first epoch included as measured);
- val-split scores of the final weights: L1, PSNR, and the maps literature's per-pixel accuracy
  and RMSE (``benchmarks/maps_eval.py``).

``--lr-rule`` scales lr 2e-4 with the batch: ``none``, ``sqrt`` (2e-4 x sqrt(batch), the rule
docs/performance.md suggests) or ``linear`` (2e-4 x batch).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from common import machine, table, write_json

import i2i
from i2i.config import DataConfig, Pix2PixConfig, RunConfig, TrainConfig
from i2i.data.paired import PairedDataset
from i2i.device import pick_device
from i2i.metrics.evaluate import evaluate_translator
from i2i.train.accel import loader_workers
from i2i.train.loop import train
from i2i.train.monitor import read_metrics

PAPER_IMAGES = 200 * 1096  # the pix2pix maps schedule: 200 epochs x 1,096 pairs
BASE_LR = 2e-4
LR_RULES = {"none": lambda bs: 1.0, "sqrt": math.sqrt, "linear": float}


def elapsed_at_logs(run_dir: Path, batch: int) -> list[tuple[int, float]]:
    """(images seen, seconds since the loop started) at each logged step, from the cumulative
    images/s that the loop logs."""
    rows = read_metrics(run_dir / "metrics.jsonl")
    return [(r["step"] * batch, r["step"] * batch / r["images_per_s"]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/maps")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--epochs-decay", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--lr-rule", choices=list(LR_RULES), default="sqrt")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--workers", type=int, default=None,
                        help="data-loading processes [i2i's default: GPU 4, CPU 0]")  # fmt: skip
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None, help="keep the run here (default: a temp folder)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    bs = args.batch_size
    lr = BASE_LR * LR_RULES[args.lr_rule](bs)
    workers = loader_workers(args.workers, pick_device(args.device))
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or str(Path(tmp, "run"))
        cfg = RunConfig(
            data=DataConfig(root=args.data, num_workers=workers),
            model=Pix2PixConfig(),
            train=TrainConfig(
                out=out,
                epochs=args.epochs,
                epochs_decay=args.epochs_decay,
                batch_size=bs,
                lr=lr,
                device=args.device,
                precision=args.precision,
                channels_last=args.channels_last,
                compile=args.compile,
                save_every=10**9,  # one checkpoint, at the end, as a run that is not stopped
                image_every=10**9,
                log_every=max(1, 64 // bs),
            ),
        )
        started = time.perf_counter()
        result = train(cfg, progress=False)
        wall = time.perf_counter() - started
        # the pairs per epoch, from a listing without the image cache the run already filled
        n_train = len(PairedDataset(replace(cfg.data, cache=False), "train", train=True))
        logs = elapsed_at_logs(result.run_dir, bs)
        # the first log at or after the end of epoch 1 splits the run in two (a run too
        # short for that counts from the start)
        first = next(((n, s) for n, s in logs[:-1] if n >= n_train), (0, 0.0))
        steady = (logs[-1][0] - first[0]) / (logs[-1][1] - first[1])
        model = i2i.load(result.checkpoint, device=args.device)
        val = PairedDataset(cfg.data, "val", train=False)
        scores = evaluate_translator(model, val, ["l1", "psnr", "pixel_acc", "rmse"], size=256)
    row: dict[str, Any] = {
        "batch": bs,
        "lr": lr,
        "precision": args.precision,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "workers": workers,
        "epochs": args.epochs + args.epochs_decay,
        "train pairs": n_train,
        "steps": result.step,
        "wall s": wall,
        "loop s": result.seconds,
        "epoch 1 s": first[1],
        "steady img/s": steady,
        "paper schedule min": (first[1] + (PAPER_IMAGES - first[0]) / steady) / 60,
        **{f"val {k}": v for k, v in scores.items()},
    }
    print(table([row], list(row)))
    write_json(args.json, {"machine": machine(pick_device(args.device)), "run": row})


if __name__ == "__main__":
    main()
