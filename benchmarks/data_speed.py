"""Data pipeline throughput: images/s from files on disk to a ready training batch.

    python benchmarks/data_speed.py [--data ../shared/data/maps] [--limit 400] [--json out.json]

Reads the paired training split as training does (DataLoader, EpochBatchSampler, batch 1,
256 px crops of 286 px resizes), twice: the first epoch decodes and resizes every image (and
fills the cache), the second reads the cache. "no cache" decodes every epoch, as the reference
implementation does; with 4 worker processes too, its default.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from common import machine, table, write_json
from torch.utils.data import DataLoader

from i2i.config import DataConfig
from i2i.data.paired import EpochBatchSampler, PairedDataset


def epoch_rates(cfg: DataConfig, limit: int, epochs: int = 2) -> list[float]:
    dataset = PairedDataset(cfg, "train", train=True)
    n = min(limit, len(dataset))  # the sampler draws from the first n pairs
    workers = cfg.num_workers or 0
    loader = DataLoader(
        dataset,
        batch_sampler=EpochBatchSampler(n, 1, 0, 0, n * epochs),
        num_workers=workers,
        persistent_workers=workers > 0,
        collate_fn=lambda items: torch.stack([i["A"] for i in items]),
    )
    rates, start = [], time.perf_counter()
    for count, _ in enumerate(loader, 1):
        if count % n == 0:
            rates.append(n / (time.perf_counter() - start))
            start = time.perf_counter()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/maps")
    parser.add_argument("--limit", type=int, default=400, help="training pairs to read")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if not Path(args.data).is_dir():
        raise SystemExit(f"{args.data}: no dataset there; pass --data DIR (paired images)")
    rows: list[dict[str, Any]] = []
    for label, cache, workers in [
        ("i2i: cache, in process", True, 0),
        ("no cache, in process", False, 0),
        ("no cache, 4 workers (reference default)", False, 4),
    ]:
        cfg = DataConfig(root=args.data, cache=cache, num_workers=workers)
        first, second = epoch_rates(cfg, args.limit)
        rows.append({"pipeline": label, "epoch 1 img/s": first, "epoch 2+ img/s": second})
        print(table(rows[-1:], list(rows[-1])), flush=True)
    print("\n" + table(rows, list(rows[0])))
    write_json(args.json, {"machine": machine(torch.device("cpu")), "rows": rows})


if __name__ == "__main__":
    main()
