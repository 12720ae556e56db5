"""The datasets a training run reads, by the kind of data its method learns from."""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from i2i.config import DataConfig
from i2i.data.paired import PairedDataset, open_split
from i2i.data.transforms import PixelDataset, SizeRule
from i2i.data.unconditional import GrayPairs, ImageDataset, image_split
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
        reads = "pix2pix reads pairs" if kind == "paired" else "colorization and dcgan read images"
        raise ConfigError(
            "--domain-a/--domain-b name the two domains of unpaired data (cyclegan, cut, "
            f"fastcut); {reads} from --data DIR"
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
        train_images = ImageDataset(cfg, True, cfg.train_split, rule)
        if image_split(cfg.root, cfg.val_split) is not None:
            return train_images, ImageDataset(cfg, False, cfg.val_split)
        return train_images, ImageDataset(cfg, False, cfg.train_split, rule)
    raise ValueError(f"unknown data kind {kind!r}")


def scored_pairs(cfg: DataConfig, split: str, kind: str) -> PairedDataset | GrayPairs | None:
    """The (input, target) pairs a translation model is scored on in ``split``, prepared for
    evaluation, or None when the data has no such split: paired data's pairs, or, for a model
    that learns from images (colorization), each image of the split with its gray as input."""
    if kind == "images":
        has_split = image_split(cfg.root, split) is not None
        return GrayPairs(ImageDataset(cfg, False, split)) if has_split else None
    return open_split(cfg, split, False)
