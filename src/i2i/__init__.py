"""i2i: image-to-image translation with GANs.

Python API::

    import i2i
    model = i2i.load("runs/demo")          # a run folder or a checkpoint folder
    out = model(pil_image)                 # also numpy arrays, tensors, and lists for batches
    big = model.translate_tiled(pil_mosaic, tile=512, overlap=64)   # any size, bounded memory
    fast = i2i.load("runs/demo", backend="onnxruntime")              # or a .onnx from i2i export
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from i2i.version import __version__

if TYPE_CHECKING:
    from i2i.infer.translator import Translator


def load(
    path: str | Path,
    device: str = "auto",
    direction: str | None = None,
    backend: Literal["auto", "torch", "onnxruntime"] = "torch",
) -> Translator:
    """Load a trained model for translation; ``direction`` (AtoB/BtoA) picks one of a
    CycleGAN's two generators; ``backend`` picks PyTorch or ONNX Runtime. Imports torch only
    when the PyTorch backend (or an ONNX export not yet cached) needs it. With PyTorch on the
    CPU, ``i2i.device.keep_freed_memory()`` makes batches and large images faster; it
    changes the whole process's allocator, so ``i2i translate`` calls it and this does not."""
    from i2i.infer.translator import Translator

    return Translator.load(path, device=device, direction=direction, backend=backend)


__all__ = ["__version__", "load"]
