"""The datasets a training run reads, by the kind of data its method learns from."""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from i2i.config import DataConfig
from i2i.data.paired import PairedDataset, open_split
from i2i.data.transforms import PixelDataset, SizeRule
from i2i.data.unconditional import ImageDataset
from i2i.data.unpaired import UnpairedDataset, open_unpaired
from i2i.errors import ConfigError

AnyDataset = PairedDataset | UnpairedDataset | ImageDataset


class Pixels(Dataset[dict[str, Any]]):
    """``dataset``'s samples as 8-bit pixels: what the training loader batches, pins and copies
    to the device, where ``network_range`` maps them to the networks' range."""

    def __init__(self, dataset: PixelDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        return self.dataset.pixels(key)


def open_datasets(
    cfg: DataConfig, kind: str, rule: SizeRule | None = None
) -> tuple[AnyDataset, AnyDataset]:
    """(training set, preview set). The preview set supplies the fixed examples of sample
    grids: the val split (unpaired: val, else test) in eval mode, else the training split in
    eval mode. ``rule`` checks every training image's size from its header before training
    (``transforms.size_rule``); a misfit is a bad file, refused or skipped by name.
    ``data.domain_a``/``domain_b`` name unpaired data only (ConfigError otherwise)."""
    if cfg.domain_a is not None and kind != "unpaired":
        raise ConfigError(
            "--domain-a/--domain-b name the two domains of unpaired data (cyclegan, cut, "
            f"fastcut); {'pix2pix reads pairs' if kind == 'paired' else 'dcgan reads images'} "
            "from --data DIR"
        )
    if kind == "paired":
        train = PairedDataset(cfg, cfg.train_split, train=True, rule=rule)
        preview = open_split(cfg, cfg.val_split, False)
        return train, preview or PairedDataset(cfg, cfg.train_split, train=False, rule=rule)
    if kind == "unpaired":
        unpaired = UnpairedDataset(cfg, cfg.train_split, train=True, rule=rule)
        for split in (cfg.val_split, "test"):
            found = open_unpaired(cfg, split, False)
            if found is not None:
                return unpaired, found
        return unpaired, UnpairedDataset(cfg, cfg.train_split, train=False, rule=rule)
    if kind == "images":
        return ImageDataset(cfg, True, rule), ImageDataset(cfg, False, rule)
    raise ValueError(f"unknown data kind {kind!r}")
