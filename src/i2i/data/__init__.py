"""Data: reading images and paired datasets, preprocessing, synthetic data, preparation."""

from i2i.data.images import BadImageError, DataError, read_image
from i2i.data.paired import EpochBatchSampler, PairedDataset, locate, open_split

__all__ = [
    "BadImageError",
    "DataError",
    "EpochBatchSampler",
    "PairedDataset",
    "locate",
    "open_split",
    "read_image",
]
