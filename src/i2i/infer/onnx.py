"""ONNX export and the ONNX Runtime backend.

``export_onnx`` writes a generator with dynamic batch, height and width (the network in eval
mode: dropout off, batch norm on its running statistics, or on each image's own where the card
says so). The graph is the network alone;
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
# (mean, variance) of one image-statistics layer's input, each NxCx1x1 float32
Moments = tuple[np.ndarray, np.ndarray]


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

    from i2i.nets.layers import image_statistics_layers

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
    meta = {**metadata, "size_multiple": m, "in_channels": in_channels,
            "image_statistics": bool(image_statistics_layers(net))}  # fmt: skip
    for key, value in meta.items():
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


NORM_OP = "InstanceNormalization"  # what instance norm and per-image batch norm export as


def statistics_models(model: Any) -> tuple[Any, Any]:
    """Two variants of an exported generator (an ``onnx.ModelProto``) for tiled translation:
    one that also outputs the (mean, variance) over H and W of each instance-normalization's
    input (``mean_K``, ``var_K``, in graph order), and one that normalizes with such moments
    given as inputs (``mean_K``, ``rstd_K``: NxCx1x1, rstd = 1 / sqrt(variance + eps)) instead of
    each input's own. Graph surgery with the onnx helpers, so that no torch is needed. In both,
    each instance normalization is written out as the ops it stands for (centre, scale by
    rstd, the affine scale and shift): a graph output that watched its input would keep every
    such activation alive to the end (3.4 GiB more for a 1 MP ResNet-9 pass)."""
    onnx = _require("onnx")
    from onnx import TensorProto, helper

    def variant(moments: Any) -> Any:
        out = onnx.ModelProto()
        out.CopyFrom(model)
        out.graph.ClearField("node")
        out.graph.initializer.append(
            helper.make_tensor("i2i_axes", TensorProto.INT64, [3], [0, 2, 3])
        )
        eps = norm_epsilons(model)
        k = 0
        for node in model.graph.node:
            if node.op_type != NORM_OP:
                out.graph.node.append(node)
                continue
            x, scale, shift = node.input
            t = f"i2i_norm{k}_"
            mean, rstd = moments(out.graph, x, k, t, eps[k])
            out.graph.node.extend([
                helper.make_node("Sub", [x, mean], [t + "centred"]),
                helper.make_node("Mul", [t + "centred", rstd], [t + "normed"]),
                helper.make_node("Unsqueeze", [scale, "i2i_axes"], [t + "scale"]),
                helper.make_node("Unsqueeze", [shift, "i2i_axes"], [t + "shift"]),
                helper.make_node("Mul", [t + "normed", t + "scale"], [t + "scaled"]),
                helper.make_node("Add", [t + "scaled", t + "shift"], list(node.output)),
            ])  # fmt: skip
            k += 1
        return out

    def measured(graph: Any, x: str, k: int, t: str, eps: float) -> tuple[str, str]:
        graph.initializer.append(helper.make_tensor(t + "eps", TensorProto.FLOAT, [], [eps]))
        graph.node.extend([
            helper.make_node("ReduceMean", [x], [f"mean_{k}"], axes=[2, 3], keepdims=1),
            helper.make_node("Sub", [x, f"mean_{k}"], [t + "c"]),
            helper.make_node("Mul", [t + "c", t + "c"], [t + "squared"]),
            helper.make_node("ReduceMean", [t + "squared"], [f"var_{k}"], axes=[2, 3], keepdims=1),
            helper.make_node("Add", [f"var_{k}", t + "eps"], [t + "var_eps"]),
            helper.make_node("Sqrt", [t + "var_eps"], [t + "std"]),
            helper.make_node("Reciprocal", [t + "std"], [t + "rstd"]),
        ])  # fmt: skip
        for name in (f"mean_{k}", f"var_{k}"):
            graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
        return f"mean_{k}", t + "rstd"

    def given(graph: Any, x: str, k: int, t: str, eps: float) -> tuple[str, str]:
        for name in (f"mean_{k}", f"rstd_{k}"):
            graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
        return f"mean_{k}", f"rstd_{k}"

    return variant(measured), variant(given)


def norm_epsilons(model: Any) -> list[float]:
    """Each instance-normalization's epsilon, in graph order (ONNX's default: 1e-5)."""
    eps = []
    for node in model.graph.node:
        if node.op_type == NORM_OP:
            given = [a.f for a in node.attribute if a.name == "epsilon"]
            eps.append(given[0] if given else 1e-5)
    return eps


class OnnxGenerator:
    """An ONNX Runtime session that stands in for a torch generator inside ``Translator``."""

    def __init__(self, model: bytes | str | Path, threads: int | None = None) -> None:
        ort = _require("onnxruntime")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.options, self.model = options, model
        self._tiling: tuple[Any, Any, list[float]] | None = None  # made when tiles need them
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
        # layers that normalize each image by its own statistics (tiles need the whole image's)
        self.image_statistics: bool = bool(self.metadata.get("image_statistics", False))

    def tiling_sessions(self) -> tuple[Any, Any, list[float]]:
        """The sessions of :func:`statistics_models`' two variants and the norms' epsilons,
        made on first use."""
        if self._tiling is None:
            onnx, ort = _require("onnx"), _require("onnxruntime")
            if isinstance(self.model, bytes):
                proto = onnx.load_from_string(self.model)
            else:
                proto = onnx.load(str(self.model))
            measure, fixed = statistics_models(proto)
            cpu = ["CPUExecutionProvider"]
            self._tiling = (
                ort.InferenceSession(measure.SerializeToString(), self.options, providers=cpu),
                ort.InferenceSession(fixed.SerializeToString(), self.options, providers=cpu),
                norm_epsilons(proto),
            )
        return self._tiling

    def statistics(self, x: np.ndarray) -> list[Moments]:
        """The (mean, variance) each instance-normalization uses on a pass of ``x``."""
        measure, _, _ = self.tiling_sessions()
        _, *moments = measure.run(None, {"image": np.ascontiguousarray(x, np.float32)})
        return [(moments[i], moments[i + 1]) for i in range(0, len(moments), 2)]

    def __call__(self, x: np.ndarray, moments: list[Moments] | None = None) -> np.ndarray:
        """NxCxHxW float32 -> the generator's output, as a torch generator maps tensors; with
        ``moments``, its instance normalizations use those rather than each input's own."""
        feed = {"image": np.ascontiguousarray(x, np.float32)}
        if moments is None:
            (out,) = self.session.run(None, feed)
            return out
        _, fixed, eps = self.tiling_sessions()
        for k, ((mean, var), e) in enumerate(zip(moments, eps, strict=True)):
            feed[f"mean_{k}"] = mean.astype(np.float32)
            feed[f"rstd_{k}"] = (1.0 / np.sqrt(var + e)).astype(np.float32)
        (out,) = fixed.run(None, feed)
        return out
