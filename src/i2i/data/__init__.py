"""Data: reading images (:mod:`.images`), datasets (:mod:`.paired`, :mod:`.unpaired`,
:mod:`.unconditional`), preprocessing (:mod:`.transforms`), the image cache, synthetic data and
preparation. Only the image readers are imported here: translating needs them, and the datasets
bring torchvision, whose import takes seconds."""

from i2i.data.images import BadImageError, DataError, read_image

__all__ = ["BadImageError", "DataError", "read_image"]
