"""ONNX export and the ONNX Runtime backend.

``export_onnx`` writes a generator with dynamic batch, height and width (the network in eval
mode: dropout off, batch norm on its running statistics). The graph is the network alone;
``Translator`` pads inputs to the generator's multiple, for both backends. What a user needs to
run the file without i2i is stored in its metadata: size_multiple, channels, normalization.

``cached_export`` keeps each export in the cache (``$I2I_CACHE/onnx``), so the few seconds an
export takes are paid once per checkpoint rather than at every ``Translator.load``. An export is
as large as its weights (218 MB for unet_256), so only the most recently used ones are kept.

We use PyTorch's TorchScript-based exporter: it handles these plain conv nets with dynamic shapes
and needs no extra packages (the torch.export-based one needs onnxscript). Only the export
imports torch: running a cached or ``.onnx`` export needs numpy and ONNX Runtime alone, which
spares a translation run the 2-3 s of ``import torch``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from i2i.errors import CheckpointError, ConfigError
from i2i.runs.storage import cache_root

if TYPE_CHECKING:
    from i2i.nets import Generator

OPSET = 17
CACHE_KEEP = 8  # exports kept in the cache: the most recently used


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"ONNX needs the serve extra ({module}): pip install 'i2i[serve]'"
        ) from None


def export_bytes(net: Generator, in_channels: int, metadata: dict[str, Any]) -> bytes:
    """The generator as an ONNX model (bytes), metadata attached."""
    import torch

    onnx = _require("onnx")

    net = net.eval()
    m = net.size_multiple
    example = torch.zeros(1, in_channels, 2 * m, 2 * m, device=next(net.parameters()).device)
    axes = {0: "batch", 2: "height", 3: "width"}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and instance-norm notes
        torch.onnx.export(
            net,
            (example,),
            f"{tmp}/model.onnx",
            input_names=["image"],
            output_names=["translated"],
            dynamic_axes={"image": axes, "translated": axes},
            opset_version=OPSET,
            dynamo=False,
        )
        exported = Path(tmp, "model.onnx").read_bytes()
    # An ONNX file is one protobuf message, and protobuf parses two concatenated messages as
    # their merge (repeated fields appended). So the metadata goes in as a second ModelProto
    # after the exported one, rather than by parsing and re-serializing the whole model (for
    # unet_256's 218 MB, exports took 2.0-2.3 s this way against 2.4-3.5 s).
    extra = onnx.ModelProto()
    for key, value in {**metadata, "size_multiple": m, "in_channels": in_channels}.items():
        entry = extra.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    return exported + extra.SerializeToString()


def cached_export(weights: Path, key: dict[str, Any], export: Callable[[], bytes]) -> Path | bytes:
    """``export()``, or the file an earlier call saved for the same ``weights`` file contents and
    ``key`` (which net, metadata, versions). A cache that cannot be written costs only the
    saving: the export is returned all the same."""
    torch_version = importlib.metadata.version("torch")  # without importing it
    digest = hashlib.sha256(json.dumps({**key, "opset": OPSET, "torch": torch_version},
                                       sort_keys=True).encode())  # fmt: skip
    with open(weights, "rb") as f:
        digest.update(hashlib.file_digest(f, "sha256").digest())
    path = cache_root() / "onnx" / f"{digest.hexdigest()[:32]}.onnx"
    if path.is_file():
        with contextlib.suppress(OSError):
            os.utime(path)  # used now: pruning keeps the most recently used
        return path
    model = export()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(model)
        partial.replace(path)  # atomic: a concurrent load sees the whole file or none
        prune(path.parent, CACHE_KEEP)
    except OSError:
        pass
    return model


def prune(folder: Path, keep: int) -> None:
    """Delete all but the ``keep`` most recently used exports in ``folder``."""
    used = []
    for f in folder.glob("*.onnx"):
        with contextlib.suppress(OSError):  # another process may prune at the same time
            used.append((f.stat().st_mtime, f))
    for _, f in sorted(used, reverse=True)[keep:]:
        f.unlink(missing_ok=True)


class OnnxGenerator:
    """An ONNX Runtime session that stands in for a torch generator inside ``Translator``."""

    def __init__(self, model: bytes | str | Path, threads: int | None = None) -> None:
        ort = _require("onnxruntime")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        source = model if isinstance(model, bytes) else str(model)
        name = "model" if isinstance(model, bytes) else str(model)
        try:
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
            meta = self.session.get_modelmeta().custom_metadata_map
            self.metadata = {k: json.loads(v) for k, v in meta.items()}
        except Exception as exc:  # ONNX Runtime raises its own types for every bad file
            if isinstance(exc, FileNotFoundError) or "NO_SUCHFILE" in str(exc):
                raise CheckpointError(f"{name}: not found") from None
            raise CheckpointError(
                f"{name}: not a readable ONNX model ({type(exc).__name__})"
            ) from None
        if "size_multiple" not in self.metadata or "in_channels" not in self.metadata:
            raise CheckpointError(f"{name}: not an i2i ONNX export (use `i2i export`)")
        self.size_multiple: int = self.metadata["size_multiple"]
        self.in_channels: int = self.metadata["in_channels"]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """NxCxHxW float32 -> the generator's output, as a torch generator maps tensors."""
        (out,) = self.session.run(None, {"image": np.ascontiguousarray(x, np.float32)})
        return out
