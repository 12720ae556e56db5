"""i2i: image-to-image translation with GANs.

Python API::

    import i2i
    model = i2i.load("runs/demo")          # a run folder or a checkpoint folder
    out = model(pil_image)                 # also numpy arrays, tensors, and lists for batches
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from i2i.infer.translator import Translator


def load(path: str | Path, device: str = "auto", direction: str | None = None) -> Translator:
    """Load a trained model for translation; ``direction`` (AtoB/BtoA) picks one of a
    CycleGAN's two generators. Imports torch on first use, not on ``import i2i``."""
    from i2i.infer.translator import Translator

    return Translator.load(path, device=device, direction=direction)


__all__ = ["__version__", "load"]
