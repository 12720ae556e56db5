"""Data pipeline throughput: images/s from files on disk to a ready training batch.

    python benchmarks/data_speed.py [--data ../shared/data/maps] [--limit 400] [--batch-size 1]
        [--json out.json]

Reads the paired training split as training does (DataLoader, EpochBatchSampler, 256 px crops
of 286 px resizes), twice: the first epoch decodes and resizes every image (and fills the
cache), the second reads the cache. A batch is ready when its A and B tensors are in the
networks' [-1, 1], as float32.

- i2i: the cache, in the training process, batches of 8-bit pixels. On a GPU they are ready
  here: the device maps them to [-1, 1] after the copy. On the CPU the training process maps
  them too ("mapped in process");
- "float samples": the cache, each sample mapped before batching (i2i before 2026-11-23);
- "no cache" decodes every epoch, as the reference implementation does; with 4 worker
  processes too, its default.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from common import machine, table, write_json
from torch.utils.data import DataLoader, default_collate

from i2i.config import DataConfig
from i2i.data.build import Pixels
from i2i.data.paired import EpochBatchSampler, PairedDataset
from i2i.data.transforms import network_range


def epoch_rates(
    cfg: DataConfig, limit: int, batch: int, pixels: bool, mapped: bool, epochs: int = 2
) -> list[float]:
    dataset = PairedDataset(cfg, "train", train=True)
    n = min(limit, len(dataset)) // batch * batch  # the sampler draws from the first n pairs
    workers = cfg.num_workers or 0
    loader = DataLoader(
        Pixels(dataset) if pixels else dataset,
        batch_sampler=EpochBatchSampler(n, batch, 0, 0, n // batch * epochs),
        num_workers=workers,
        persistent_workers=workers > 0,
        collate_fn=lambda items: default_collate([{"A": i["A"], "B": i["B"]} for i in items]),
    )
    rates, start = [], time.perf_counter()
    for count, ready in enumerate(loader, 1):
        if mapped:
            network_range(ready)
        if count * batch % n == 0:
            rates.append(n / (time.perf_counter() - start))
            start = time.perf_counter()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/maps")
    parser.add_argument("--limit", type=int, default=400, help="training pairs to read")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if not Path(args.data).is_dir():
        raise SystemExit(f"{args.data}: no dataset there; pass --data DIR (paired images)")
    rows: list[dict[str, Any]] = []
    for label, cache, workers, pixels, mapped in [
        ("i2i: cache, in process, 8-bit batches (GPU)", True, 0, True, False),
        ("i2i: the same, mapped in process (CPU)", True, 0, True, True),
        ("cache, in process, float samples", True, 0, False, False),
        ("no cache, in process", False, 0, False, False),
        ("no cache, 4 workers (reference default)", False, 4, False, False),
    ]:
        cfg = DataConfig(root=args.data, cache=cache, num_workers=workers)
        first, second = epoch_rates(cfg, args.limit, args.batch_size, pixels, mapped)
        rows.append({"pipeline": label, "batch": args.batch_size, "epoch 1 img/s": first,
                     "epoch 2+ img/s": second})  # fmt: skip
        print(table(rows[-1:], list(rows[-1])), flush=True)
    print("\n" + table(rows, list(rows[0])))
    write_json(args.json, {"machine": machine(torch.device("cpu")), "rows": rows})


if __name__ == "__main__":
    main()
