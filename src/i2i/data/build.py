"""The datasets a training run reads, by the kind of data its method learns from."""

from __future__ import annotations

from i2i.config import DataConfig
from i2i.data.paired import PairedDataset, open_split
from i2i.data.unconditional import ImageDataset
from i2i.data.unpaired import UnpairedDataset, open_unpaired

AnyDataset = PairedDataset | UnpairedDataset | ImageDataset


def open_datasets(cfg: DataConfig, kind: str) -> tuple[AnyDataset, AnyDataset]:
    """(training set, preview set). The preview set supplies the fixed examples of sample
    grids: the val split (unpaired: val, else test) in eval mode, else the training split in
    eval mode."""
    if kind == "paired":
        train = PairedDataset(cfg, cfg.train_split, train=True)
        preview = open_split(cfg, cfg.val_split, False)
        return train, preview or PairedDataset(cfg, cfg.train_split, train=False)
    if kind == "unpaired":
        unpaired = UnpairedDataset(cfg, cfg.train_split, train=True)
        for split in (cfg.val_split, "test"):
            found = open_unpaired(cfg, split, False)
            if found is not None:
                return unpaired, found
        return unpaired, UnpairedDataset(cfg, cfg.train_split, train=False)
    if kind == "images":
        return ImageDataset(cfg, train=True), ImageDataset(cfg, train=False)
    raise ValueError(f"unknown data kind {kind!r}")
