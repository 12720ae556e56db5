"""i2i: image-to-image translation with GANs.

Python API::

    import i2i
    model = i2i.load("runs/demo")          # a run folder or a checkpoint folder
    out = model(pil_image)                 # also numpy arrays, tensors, and lists for batches
    big = model.translate_tiled(pil_mosaic, tile=512, overlap=64)   # any size, bounded memory
    fast = i2i.load("runs/demo", backend="onnxruntime")              # or a .onnx from i2i export
    zebra = i2i.load("horse2zebra")(photo, resize="train")   # a published model, training scale
    ckpt = i2i.import_model("latest_net_G.pth", "imported/")        # the reference code's files
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from i2i.version import __version__

if TYPE_CHECKING:
    from i2i.infer.translator import Translator


def load(
    path: str | Path,
    device: str = "auto",
    direction: str | None = None,
    backend: Literal["auto", "torch", "onnxruntime"] = "torch",
    dropout: bool = False,
) -> Translator:
    """Load a model for translation: a run or checkpoint folder, a URL, a published model's
    name (``horse2zebra``, downloaded and imported once) or a ``.pth`` file of the reference
    pix2pix/CycleGAN code (imported once, into the cache). ``direction`` (AtoB/BtoA) picks one
    of a CycleGAN's two generators; ``backend`` picks PyTorch or ONNX Runtime; ``dropout``
    keeps dropout on (the pix2pix paper's test-time noise). Imports torch only when the PyTorch
    backend (or an ONNX export not yet cached) needs it. With PyTorch on the CPU,
    ``i2i.device.keep_freed_memory()`` makes batches and large images faster; it changes the
    whole process's allocator, so ``i2i translate`` calls it and this does not."""
    from i2i.infer.translator import Translator

    return Translator.load(path, device, direction, backend, dropout=dropout)


def import_model(pth: str | Path, out: str | Path | None = None, **options: Any) -> Path:
    """Import a generator saved by the reference pix2pix/CycleGAN code (``latest_net_G.pth``)
    as an i2i checkpoint in folder ``out`` (default: the cache, reused while the file and
    options are the same); returns the checkpoint folder, for :func:`load`. ``options`` are
    ``i2i.runs.importer.ImportConfig``'s fields (``batch_stats="running"``, ``norm=``,
    ``generator=`` ...): the architecture is otherwise inferred from the weights.
    CheckpointError for a file that is no such generator (or disagrees with an option)."""
    from i2i.config import from_dict
    from i2i.runs.importer import ImportConfig, cached_import, import_reference

    cfg = from_dict(ImportConfig, options, "import")
    return cached_import(pth, cfg) if out is None else import_reference(pth, out, cfg)


__all__ = ["__version__", "import_model", "load"]
