"""Translate images with a trained generator: ``Translator.load(path)(image)``.

Inputs of any size work: the image is padded (reflection) up to the multiple the generator needs,
translated, and cropped back; ``resize`` translates it at the model's training scale instead
(``i2i.infer.resize``). The network runs in eval mode, so dropout is off and the result is
deterministic (batch norm applies its running statistics, or each image's own where the card
says so); ``dropout=True`` turns the paper's test-time dropout noise on.

A model argument may be a checkpoint or run folder, a URL, a published model's name
(``horse2zebra``) or a ``.pth`` file of the reference pix2pix/CycleGAN code (imported once).

torch is imported only where the PyTorch backend needs it: translating with an ONNX export (the
default on the CPU, cached per checkpoint) runs on numpy and ONNX Runtime alone, so a
``i2i translate`` command does not pay the 2-3 s of ``import torch``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import numpy as np
from PIL import Image

from i2i.data.images import (
    Picture,
    array_to_pil,
    float_to_uint16,
    match_channels,
    picture_size,
    pil_to_array,
    uint_array_to_float,
)
from i2i.errors import BadImageError, CheckpointError, ConfigError
from i2i.infer.onnx import Moments, OnnxGenerator, cached_export, export_bytes
from i2i.infer.resize import Resize, resize_array
from i2i.infer.tiles import TileStats, translate_tiled
from i2i.runs.card import ModelCard, ScaleInfo
from i2i.runs.checkpoint import load_network, read_card, resolve_checkpoint
from i2i.runs.pretrained import resolve_model
from i2i.version import __version__

if TYPE_CHECKING:
    import torch

    from i2i.nets import Generator

Half = Literal["left", "right"]
Backend = Literal["torch", "onnxruntime"]
BACKENDS = ("auto", "torch", "onnxruntime")
T = TypeVar("T")
# device files of the kernel drivers through which torch can see a GPU on Linux: NVIDIA, ROCm
# (which torch also calls "cuda") and WSL's GPU bridge
GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")


def onnx_metadata(card: ModelCard, direction: str) -> dict[str, Any]:
    """What an exported file (and a translator's ``description``) keeps of the card."""
    scale = card.training_scale()
    return {
        "model": card.model,
        "step": card.step,
        "direction": direction,
        "normalization": card.normalization,
        "i2i_version": card.i2i_version,
        "train_size": card.translate.train_size if card.translate else None,
        "scale": dataclasses.asdict(scale) if scale else None,
    }


def scale_of(description: dict[str, Any]) -> ScaleInfo | None:
    """The training scale an exported file's metadata records (files exported before it was
    recorded: a resize to their training size)."""
    scale, size = description.get("scale"), description.get("train_size")
    if isinstance(scale, dict):
        return ScaleInfo(scale["preprocess"], scale["load_size"], scale["crop_size"])
    return ScaleInfo("resize", size, size) if isinstance(size, int) else None


def fastest_backend(device: str) -> Backend:
    """PyTorch on CUDA, else ONNX Runtime when installed. On a Linux machine without a GPU
    driver this is decided without importing torch (2-3 s)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return "torch"
    if device == "cpu":
        return "onnxruntime"
    if device == "auto" and sys.platform == "linux":
        if not any(Path(f).exists() for f in GPU_DEVICE_FILES):
            return "onnxruntime"
    from i2i.device import pick_device  # imports torch: only when the files cannot tell

    return "torch" if pick_device(device).type != "cpu" else "onnxruntime"


def is_tensor(x: Any) -> bool:
    """Whether ``x`` is a torch tensor, without importing torch: if it is not imported, no
    tensor exists."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def padding(height: int, width: int, multiple: int) -> tuple[int, int, str]:
    """Rows and columns to add (bottom, right) to reach ``multiple``, and how: reflection needs
    the pad to be smaller than the side, so tiny images replicate their edge instead."""
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    return pad_h, pad_w, "reflect" if pad_h < height and pad_w < width else "replicate"


class Translator:
    """A trained generator ready to translate.

    Call it with a PIL image (returns a PIL image), a uint8/uint16 numpy array HxW or HxWxC
    (returns uint8 HxWxC), a float array in [0, 1], a tensor shaped CxHxW or NxCxHxW, float in
    [0, 1] or uint8 in 0..255 (returns float in [0, 1], same layout), or a list of any of these
    (translated in batches, returns a list). Floats outside [0, 1] are a BadImageError, never
    clipped silently. ``resize="train"`` (or ``"WxH"``, ``"auto"``) translates at the training
    scale and returns the input's size (``i2i.infer.resize``; not for NxCxHxW tensors).
    """

    def __init__(
        self,
        net: Generator | OnnxGenerator,
        device: torch.device | str = "cpu",
        input_channels: int = 3,
        description: dict[str, Any] | None = None,
    ) -> None:
        self.net: Generator | OnnxGenerator
        if isinstance(net, OnnxGenerator):
            self.backend: Backend = "onnxruntime"
            self.device: torch.device | str = "cpu"
            self.net = net
        else:
            import torch

            self.backend, self.device = "torch", torch.device(device)
            self.net = net.to(self.device).eval()
        self.input_channels = input_channels
        self.size_multiple = net.size_multiple
        self.description = description or {}
        self.scale = scale_of(self.description)

    @property
    def train_side(self) -> int | None:
        """The side (px) the model saw whole training images at (``--resize train`` scales an
        input's shorter side to it); None when it learned at its images' own scale."""
        return self.scale.side if self.scale else None

    @property
    def image_statistics(self) -> bool:
        """Whether the network normalizes each image by its own statistics (instance norm,
        per-image batch norm): tiles must then share the whole image's (``statistics``)."""
        if isinstance(self.net, OnnxGenerator):
            return self.net.image_statistics
        from i2i.nets.layers import image_statistics_layers

        return bool(image_statistics_layers(self.net))

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str = "auto",
        direction: str | None = None,
        backend: Backend | Literal["auto"] = "torch",
        threads: int | None = None,
        dropout: bool = False,
    ) -> Translator:
        """Load the network that translates ``direction`` (default: the training direction)
        from ``path``: a checkpoint or run folder, a URL, a published model's name or a
        reference ``.pth`` file (module docstring).
        ``backend="onnxruntime"`` exports it to ONNX (once per checkpoint: the export is cached,
        see ``cached_export``) and runs that on the CPU; a ``.onnx`` file made by ``i2i export``
        loads with that backend directly. ``"auto"`` picks the fastest available: PyTorch on
        CUDA, else ONNX Runtime when installed (the ``serve`` extra; 1.2-1.4x PyTorch's
        images/s on a 2-core CPU, ``benchmarks/infer_speed.py``). ``threads``: ONNX Runtime's
        CPU threads (None: all cores). ``dropout=True`` keeps the generator's dropout on (the
        pix2pix paper's test-time noise: each call differs); it runs on PyTorch. Raises
        CheckpointError for a missing, foreign or damaged checkpoint, ConfigError for an
        unknown backend or a network without dropout layers under ``dropout``."""
        if backend not in BACKENDS:
            raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if dropout and backend == "onnxruntime":
            raise ConfigError("--dropout runs on PyTorch: use --backend torch (or auto)")
        if backend == "auto":
            backend = "torch" if dropout else fastest_backend(device)
        if str(path).endswith(".onnx"):
            if dropout:
                raise ConfigError(
                    f"{path}: an ONNX export has no dropout; --dropout needs the checkpoint"
                )
            onnx_net = OnnxGenerator(path, threads)
            return cls(onnx_net, "cpu", onnx_net.in_channels, onnx_net.metadata)
        ckpt = resolve_checkpoint(resolve_model(path))
        card = read_card(ckpt)
        direction, net_name = card.translator(direction, str(ckpt))
        spec = card.nets[net_name]
        meta = onnx_metadata(card, direction)

        def generator() -> Generator:
            # imported here for start-up speed: a cached ONNX export never needs torch
            from i2i.nets import Generator

            net = load_network(ckpt, card, net_name)
            if not isinstance(net, Generator):
                raise CheckpointError(f"{ckpt}: {net_name} is not an image-to-image generator")
            return net

        if backend == "onnxruntime":
            model = cached_export(
                ckpt / "model.safetensors",
                # the card's description of the net is part of the key: an edited card never
                # reuses an export made from another
                {"net": net_name, "spec": spec.to_json(), "metadata": meta, "i2i": __version__},
                lambda: export_bytes(generator(), spec.in_channels, meta),
            )
            return cls(OnnxGenerator(model, threads), "cpu", spec.in_channels, meta)
        # imported here for start-up speed: the ONNX Runtime path above never imports torch
        from torch import nn

        from i2i.device import pick_device
        from i2i.kernels import cpu_kernels_enabled, use_cpu_kernels

        torch_device = pick_device(device)
        net = generator()
        if torch_device.type == "cpu" and cpu_kernels_enabled():
            use_cpu_kernels(net)
        translator = cls(net, torch_device, spec.in_channels, meta)  # in eval mode
        if dropout:
            layers = [m for m in net.modules() if isinstance(m, nn.Dropout)]
            if not layers:
                raise ConfigError(f"--dropout: {ckpt}'s generator has no dropout layers")
            for layer in layers:
                layer.train()  # noise at every call, as in training
        return translator

    @overload
    def translate_tiled(
        self, image: Image.Image, tile: int = ..., overlap: int = ..., stats: TileStats = ...
    ) -> Image.Image: ...
    @overload
    def translate_tiled(
        self, image: np.ndarray, tile: int = ..., overlap: int = ..., stats: TileStats = ...
    ) -> np.ndarray: ...
    def translate_tiled(
        self,
        image: Image.Image | np.ndarray,
        tile: int = 512,
        overlap: int = 64,
        stats: TileStats = "image",
    ) -> Image.Image | np.ndarray:
        """An image of any size -> its translation of the same kind, as calling the model
        gives: a PIL image for a PIL image, uint8 HxWxC for a uint8/uint16 array. Translated
        ``tile`` x ``tile`` px at a time with blended ``overlap`` px; float memory is bounded by
        one strip of tiles. Normalization layers that use each image's statistics get the whole
        image's, or with ``stats="tile"`` each tile's own, as a model trained on crops of that
        size saw them (``i2i.infer.tiles``). Raises ConfigError for a tile that does not fit the
        generator or an overlap over half the tile."""
        pixels = translate_tiled(self, image, tile, overlap, stats=stats)
        return array_to_pil(pixels) if isinstance(image, Image.Image) else pixels

    def translate_image(
        self,
        image: Picture,
        resize: Resize | str | None = None,
        tile: int | None = None,
        overlap: int = 64,
        batch_size: int = 4,
        tile_stats: TileStats = "image",
    ) -> tuple[np.ndarray, str]:
        """One image (PIL in any mode, or a decoded 16-bit array) -> (uint8 HxWxC at its own
        size, what was done in words), at the scale ``resize`` asks for (``i2i.infer.resize``),
        whole or in ``tile`` x ``tile`` tiles (normalized by ``tile_stats``: see
        :meth:`translate_tiled`)."""
        resize = Resize.parse(resize)
        size = picture_size(image)
        used = resize.target(*size, self.train_side)
        if used is None and tile:
            tiled = translate_tiled(self, image, tile, overlap, batch_size, stats=tile_stats)
            return tiled, resize.describe(size, None)
        array = pil_to_array(image, self.input_channels)
        if used is not None:
            array = resize_array(array, used)
        if tile:
            pixels = float_to_uint16(array)  # the resized image at full precision
            result = translate_tiled(self, pixels, tile, overlap, batch_size, stats=tile_stats)
        else:
            (out,) = self.translate_arrays([array], batch_size)
            result = (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)
        if used is not None:
            result = resize_array(result, size)
        return result, resize.describe(size, used)

    def export_onnx(self, out: str | Path) -> Path:
        """Write this translator's network as ONNX (dynamic batch, height and width)."""
        if isinstance(self.net, OnnxGenerator):
            raise ValueError("this translator already runs an ONNX model")
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(export_bytes(self.net, self.input_channels, self.description))
        return out

    # -- tensors and arrays --------------------------------------------------------------------
    def translate_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """NxCxHxW in [-1, 1] -> NxC'xHxW in [-1, 1], any H and W."""
        import torch
        import torch.nn.functional as F

        if isinstance(self.net, OnnxGenerator):
            y = self.translate_batch(x.detach().float().cpu().numpy())
            return torch.from_numpy(y).to(x.device)
        h, w = x.shape[-2:]
        pad_h, pad_w, mode = padding(h, w, self.size_multiple)
        with torch.inference_mode():
            x = x.to(self.device, torch.float32)
            if pad_h or pad_w:
                x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
            return self.net(x)[..., :h, :w]

    def translate_batch(self, x: np.ndarray, moments: list[Moments] | None = None) -> np.ndarray:
        """The same for a float32 numpy batch: NxCxHxW in [-1, 1] -> NxC'xHxW in [-1, 1].
        With ``moments`` (from :meth:`statistics`), the layers that normalize each image by its
        own statistics use those instead (tiles of one image share the whole image's)."""
        if isinstance(self.net, OnnxGenerator):
            h, w = x.shape[-2:]
            return self.net(self._pad(x), moments)[..., :h, :w]
        import torch

        from i2i.nets.layers import fixed_statistics

        if moments is None:
            return self.translate_tensor(torch.from_numpy(x)).cpu().numpy()
        fixed = [(torch.from_numpy(m).to(self.device), torch.from_numpy(v).to(self.device))
                 for m, v in moments]  # fmt: skip
        with fixed_statistics(self.net, fixed):
            return self.translate_tensor(torch.from_numpy(x)).cpu().numpy()

    def _pad(self, x: np.ndarray) -> np.ndarray:
        """``x`` padded (bottom, right) to the generator's multiple, as ``padding`` says."""
        h, w = x.shape[-2:]
        pad_h, pad_w, mode = padding(h, w, self.size_multiple)
        if not (pad_h or pad_w):
            return x
        edges = ((0, 0), (0, 0), (0, pad_h), (0, pad_w))
        return np.pad(x, edges, mode="reflect" if mode == "reflect" else "edge")

    def statistics(self, image: np.ndarray) -> list[Moments]:
        """The (mean, variance) over H and W that each layer normalizing by the image's own
        statistics uses when translating ``image`` (a float HxWxC array in [0, 1]) whole, padded
        as translation pads it: 1xCx1x1 float32 arrays, one pair per layer."""
        x = self._pad((image.transpose(2, 0, 1)[None] * 2 - 1).astype(np.float32))
        if isinstance(self.net, OnnxGenerator):
            return self.net.statistics(x)
        import torch

        from i2i.nets.layers import measure_statistics

        with torch.inference_mode():
            moments = measure_statistics(self.net, torch.from_numpy(x).to(self.device))
        return [(m.cpu().numpy(), v.cpu().numpy()) for m, v in moments]

    def translate_arrays(
        self,
        arrays: Sequence[np.ndarray],
        batch_size: int = 8,
        resize: Resize | str | None = None,
        moments: list[Moments] | None = None,
    ) -> list[np.ndarray]:
        """Float HxWxC arrays in [0, 1] -> translated float arrays, batching equal sizes; each
        at the scale ``resize`` asks for and back (``i2i.infer.resize``). ``moments``: see
        :meth:`translate_batch`."""
        resize = Resize.parse(resize)
        sizes = [(a.shape[1], a.shape[0]) for a in arrays]
        targets = [resize.target(w, h, self.train_side) for w, h in sizes]
        work = [
            a if t is None else resize_array(a, t) for a, t in zip(arrays, targets, strict=True)
        ]
        out: list[np.ndarray | None] = [None] * len(work)
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, a in enumerate(work):
            by_size.setdefault(a.shape, []).append(i)
        for indices in by_size.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                x = np.stack([work[i] for i in chunk]).transpose(0, 3, 1, 2) * 2 - 1
                y = (self.translate_batch(x.astype(np.float32, copy=False), moments) + 1) / 2
                for i, yi in zip(chunk, np.clip(y, 0, 1).transpose(0, 2, 3, 1), strict=True):
                    back = yi if targets[i] is None else resize_array(yi, sizes[i])
                    out[i] = np.clip(back, 0, 1)
        return [a for a in out if a is not None]

    # -- user-facing types ----------------------------------------------------------------------
    def __call__(self, image: Any, batch_size: int = 8, resize: Resize | str | None = None) -> Any:
        if isinstance(image, list | tuple):
            arrays = [self._to_array(im) for im in image]
            results = self.translate_arrays(arrays, batch_size, resize)
            return [self._from_array(r, im) for r, im in zip(results, image, strict=True)]
        if is_tensor(image) and image.ndim == 4:
            if Resize.parse(resize).mode != "none":
                raise ValueError("resize works on images, not NxCxHxW batches: pass a list")
            x = unit_tensor(image) * 2 - 1
            return ((self.translate_tensor(x) + 1) / 2).clamp(0, 1).to(image.device)
        (result,) = self.translate_arrays([self._to_array(image)], batch_size, resize)
        return self._from_array(result, image)

    def _to_array(self, image: Any) -> np.ndarray:
        if isinstance(image, Image.Image):
            return pil_to_array(image, self.input_channels)
        if isinstance(image, np.ndarray):
            if image.dtype.kind == "f":
                arr = image[..., None] if image.ndim == 2 else image
                return match_channels(unit_floats(arr.astype(np.float32)), self.input_channels)
            return uint_array_to_float(image, "array", self.input_channels)
        if is_tensor(image) and image.ndim == 3:
            pixels = unit_tensor(image).permute(1, 2, 0).cpu().numpy()
            return match_channels(pixels, self.input_channels)
        raise TypeError(
            f"cannot translate a {type(image).__name__}; pass a PIL image, a numpy array, "
            "a CxHxW / NxCxHxW tensor in [0, 1], or a list of these"
        )

    @staticmethod
    def _from_array(result: np.ndarray, like: Any) -> Any:
        if isinstance(like, Image.Image):
            return array_to_pil(result)
        if isinstance(like, np.ndarray):
            return (result * 255.0 + 0.5).astype(np.uint8)
        import torch

        return torch.from_numpy(np.ascontiguousarray(result)).permute(2, 0, 1)


def unit_floats(values: np.ndarray, source: str = "array") -> np.ndarray:
    """Float pixels, which must lie in [0, 1]: an array in 0..255 (or any other range) is an
    error saying what to pass, never clipped silently."""
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if not (low >= -1e-6 and high <= 1 + 1e-6):
        raise BadImageError(
            source,
            f"float pixels must lie in [0, 1], and these run from {low:g} to {high:g}; pass "
            "uint8 (0..255) or uint16 pixels as they are, or scale floats to [0, 1]",
        )
    return np.clip(values, 0.0, 1.0)


def unit_tensor(image: torch.Tensor) -> torch.Tensor:
    """A CxHxW or NxCxHxW tensor as float32 in [0, 1]: uint8 is scaled from 0..255, float
    must already lie in [0, 1] (see :func:`unit_floats`)."""
    import torch

    if image.dtype == torch.uint8:
        return image.detach().float() / 255
    if not image.is_floating_point():
        raise BadImageError("tensor", f"pixels of {image.dtype}: pass uint8 or float in [0, 1]")
    low, high = float(image.min()), float(image.max())
    if not (low >= -1e-6 and high <= 1 + 1e-6):
        raise BadImageError(
            "tensor",
            f"float pixels must lie in [0, 1], and these run from {low:g} to {high:g}; pass a "
            "uint8 tensor for 0..255, or scale to [0, 1]",
        )
    return image.detach().float().clamp(0, 1)
