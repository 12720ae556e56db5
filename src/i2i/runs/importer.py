"""Importing generators saved by the reference pix2pix/CycleGAN code as i2i checkpoints.

The reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix) saves a generator as
``torch.save(net.state_dict(), "latest_net_G.pth")``: its published models, and most models
shared since, are such files. Its networks are laid out differently from i2i's:

- ``unet_128`` / ``unet_256`` nest recursive skip-connection blocks, so that encoder level i and
  decoder level i live under ``model.model.1`` + ``.model.3`` * (i - 1) (down conv ``.1``, down
  norm ``.2``, up conv ``.5``, up norm ``.6``; the innermost level's up conv ``.3`` and norm
  ``.4``; the outermost level's down conv ``model.model.0`` and up conv ``model.model.3``);
- ``resnet_6blocks`` / ``resnet_9blocks`` are one Sequential ``model``: the stem at 0-9 (as
  i2i's encoder), residual block b at ``10 + b`` (``conv_block`` as i2i's ``body``), the
  decoder after them (as i2i's decoder).

The importer infers the architecture from the names and shapes alone (kind, depth, ngf, input
and output channels, norm, and dropout where it shows), lets options override each field, and
checks the whole file against the layout the result implies, so an impossible combination is one
error naming the key that disagrees. Differences it bridges: the reference gives a conv no bias
when its norm is batch or none (i2i: only before batch norm, and never at the U-Net's outer
convs), and a missing bias is exactly a zero one; old files (PyTorch before 0.4) keep running
statistics for instance norms, which are dropped. A ``module.`` prefix from DataParallel is
stripped. A U-Net from L to ab (1 -> 2 channels) is the reference's colorization model: it
becomes colorization's RGB -> RGB colorizer around that generator (``nets.colorizer``, whose
scaling of L and ab is the reference's).

Files are read with ``torch.load(..., weights_only=True)`` only: anything but plain tensors is
refused, never unpickled. The result is an ordinary checkpoint (``model.safetensors`` + card),
whose card records the source (``source``) and the training scale (``scale``).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import warnings
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from i2i.config import (
    MAX_SIDE,
    MAX_WIDTH,
    BatchStats,
    ColorizerConfig,
    Direction,
    GeneratorConfig,
    GeneratorKind,
    Norm,
    Preprocess,
    Section,
    option,
)
from i2i.download import cache_root
from i2i.errors import CheckpointError, ConfigError
from i2i.runs.card import NORMALIZATION, ModelCard, NetSpec, ScaleInfo, TranslateInfo
from i2i.runs.checkpoint import check_finite, save_checkpoint
from i2i.runs.layout import CARD, LATEST

if TYPE_CHECKING:
    import torch

FORMAT = "pytorch-CycleGAN-and-pix2pix"
CHECKPOINT = "imported"  # the checkpoint's name inside an import's folder
# the reference's netG names -> (i2i kind, depth); other depths are written as depth overrides
REFERENCE_DEPTHS = {"unet_128": 7, "unet_256": 8, "resnet_6blocks": 6, "resnet_9blocks": 9}
Method = Literal["pix2pix", "cyclegan", "colorization"]


@dataclass
class ImportConfig(Section):
    """How to read a reference generator. Architecture fields left at None are inferred from
    the weights; the rest default to the reference code's own defaults."""

    SECTION: ClassVar[str] = "import"

    generator: GeneratorKind | None = option(None, "The reference's --netG (inferred).")
    depth: int | None = option(None, "U-Net downsamplings or ResNet blocks (inferred).",
                               min=1, max=16)  # fmt: skip
    ngf: int | None = option(None, "Width of the first layer (inferred).", min=1, max=MAX_WIDTH)
    norm: Norm | None = option(None, "Normalization: batch, instance, none (inferred).")
    input_nc: int | None = option(None, "Input channels (inferred).", min=1, max=100_000)
    output_nc: int | None = option(None, "Output channels (inferred).", min=1, max=100_000)
    dropout: bool | None = option(
        None, "Dropout layers (a ResNet's are inferred; a U-Net's leave no weights, and it has "
        "them unless told, as the reference's pix2pix does).",
    )  # fmt: skip
    batch_stats: BatchStats = option(
        "image", "Batch norm in translation: each image's own statistics (the reference test "
        "script's default and the paper's) or the running ones (its --eval).",
    )  # fmt: skip
    model: Method | None = option(
        None, "The method (1 -> 2 channels: colorization, else U-Net: pix2pix, ResNet: cyclegan)."
    )
    direction: Direction = option("AtoB", "Which side of its dataset the model takes as input.")
    preprocess: Preprocess = option("resize_and_crop", "How its training images were scaled.")
    load_size: int = option(286, "Load size of its training (px).", min=1, max=MAX_SIDE)
    crop_size: int = option(256, "Crop size of its training (px).", min=1, max=MAX_SIDE)

    def validate(self) -> None:
        if self.preprocess == "resize_and_crop" and self.crop_size > self.load_size:
            raise ConfigError(
                f"--crop-size {self.crop_size} is larger than --load-size {self.load_size}; a "
                "crop must fit inside the resized image"
            )

    def given(self) -> dict[str, Any]:
        """The architecture options set, as the command's flags name them."""
        names = {"generator": "netG", "input_nc": "input-nc", "output_nc": "output-nc"}
        fields = ("generator", "depth", "ngf", "norm", "input_nc", "output_nc", "dropout")
        return {names.get(k, k): v for k in fields if (v := getattr(self, k)) is not None}


def netg_name(kind: str, depth: int) -> str | None:
    """The reference's --netG for a U-Net/ResNet of ``depth``, if it has one."""
    return next((n for n, d in REFERENCE_DEPTHS.items() if n.startswith(kind) and d == depth), None)


@dataclass(frozen=True)
class Architecture:
    """A reference generator's architecture, as inferred or overridden: ``kind`` "unet" with
    ``depth`` downsamplings or "resnet" with ``depth`` residual blocks."""

    kind: Literal["unet", "resnet"]
    depth: int
    ngf: int
    norm: Norm
    input_nc: int
    output_nc: int
    dropout: bool

    def generator_config(self, batch_stats: BatchStats = "running") -> GeneratorConfig:
        """The i2i generator of the same architecture."""
        named = netg_name(self.kind, self.depth)
        return GeneratorConfig(
            kind=named or ("unet_256" if self.kind == "unet" else "resnet_9blocks"),  # type: ignore[arg-type]
            depth=None if named else self.depth,
            ngf=self.ngf,
            norm=self.norm,
            dropout=0.5 if self.dropout else 0.0,
            batch_stats=batch_stats if self.norm == "batch" else "running",
        )

    def describe(self) -> str:
        name = netg_name(self.kind, self.depth) or f"{self.kind} of depth {self.depth}"
        return (
            f"{name}, ngf {self.ngf}, {self.norm} norm, {self.input_nc} -> {self.output_nc} "
            f"channels, {'with' if self.dropout else 'no'} dropout"
        )


# -- reading ---------------------------------------------------------------------------------
def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.pth`` state dict, read with ``torch.load(..., weights_only=True)``
    (never unpickling an object), ``module.`` prefixes stripped. CheckpointError for anything
    that is not a mapping of names to tensors."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: not found")
    refuse = (
        f"{path}: not a PyTorch state dict of plain tensors (%s); i2i reads .pth files only with "
        "torch.load(weights_only=True) and never unpickles objects: save the generator's "
        "weights with torch.save(net.state_dict(), path)"
    )
    try:
        with warnings.catch_warnings():  # its notes on pickle protocols: the error says it all
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        why = f"it holds a pickled {found.group(1)}" if found else "not a PyTorch weights file"
        raise CheckpointError(refuse % why) from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile, KeyError,
            IndexError, TypeError, AttributeError) as exc:  # fmt: skip
        # how torch's reader fails on a file that is not one of its own varies with the bytes
        foreign = isinstance(exc, (KeyError, IndexError, TypeError, AttributeError))
        why = "not a PyTorch file" if foreign or not str(exc) else str(exc).splitlines()[0]
        raise CheckpointError(refuse % f"unreadable: {why}") from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]  # a wrapped state dict, as some trainers save one
    if not isinstance(data, dict) or not data:
        raise CheckpointError(refuse % f"it holds a {type(data).__name__}")
    bad = [k for k, v in data.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(refuse % f"{bad[0]!r} is not a named tensor")
    if all(k.startswith("module.") for k in data):  # saved from inside DataParallel
        data = {k.removeprefix("module."): v for k, v in data.items()}
    return data


# -- the reference layout ---------------------------------------------------------------------
def _unet_prefix(level: int) -> str:
    """Where level ``level`` (1 ...) of the reference U-Net keeps its layers."""
    return "model.model.1.model." + "3.model." * (level - 1)


def reference_key(arch: Architecture, key: str) -> str:
    """The reference's name of i2i parameter ``key`` in a generator of ``arch``."""
    parts = key.split(".")
    if arch.kind == "resnet":
        n = arch.depth
        if parts[0] == "encoder":
            return "model." + ".".join(parts[1:])
        if parts[0] == "blocks":
            return f"model.{10 + int(parts[1])}.conv_block." + ".".join(parts[3:])
        return f"model.{10 + n + int(parts[1])}." + ".".join(parts[2:])
    side, level, index, leaf = parts[0], int(parts[1]), int(parts[2]), ".".join(parts[3:])
    if level == 0:  # the outermost block: down conv 0, up conv 3
        return f"model.model.{0 if side == 'down' else 3}.{leaf}"
    innermost = level == arch.depth - 1
    position = index if side == "down" else index + (2 if innermost else 4)
    return f"{_unet_prefix(level)}{position}.{leaf}"


def i2i_tensors(arch: Architecture) -> dict[str, tuple[tuple[int, ...], Any, bool]]:
    """Each tensor of the i2i generator of ``arch``: key -> (shape, dtype, whether the
    reference keeps it). The reference gives a conv a bias only with instance norm, except its
    last conv (ResNet) or last up conv (U-Net). Built on the meta device: nothing allocated."""
    import torch
    from torch import nn

    from i2i.nets import build_generator

    with torch.device("meta"):
        net = build_generator(arch.generator_config(), arch.input_nc, arch.output_nc)
    last = "decoder.7.bias" if arch.kind == "resnet" else "up.0.1.bias"
    convs = nn.Conv2d | nn.ConvTranspose2d
    dropped = {
        f"{name}.bias"
        for name, m in net.named_modules()
        if isinstance(m, convs) and arch.norm != "instance" and f"{name}.bias" != last
    }
    return {k: (tuple(t.shape), t.dtype, k not in dropped) for k, t in net.state_dict().items()}


def expected_layout(arch: Architecture) -> dict[str, tuple[int, ...]]:
    """Reference key -> shape of every tensor a reference generator of ``arch`` holds."""
    return {
        reference_key(arch, key): shape
        for key, (shape, _, kept) in i2i_tensors(arch).items()
        if kept
    }


# -- inference ---------------------------------------------------------------------------------
def infer_architecture(
    state: dict[str, torch.Tensor], where: str, cfg: ImportConfig | None = None
) -> Architecture:
    """The architecture of a reference generator's state dict, ``cfg``'s fields overriding
    what is inferred. CheckpointError when the file is no such generator or disagrees with an
    override (naming the key)."""
    cfg = cfg or ImportConfig()
    kind = _layout_kind(state, where)
    if cfg.generator is not None and not cfg.generator.startswith(kind):
        holds = "a U-Net (model.model.* keys)" if kind == "unet" else "a ResNet (conv_block keys)"
        raise CheckpointError(f"{where}: --netG {cfg.generator}, but the file holds {holds}")

    def shape(key: str) -> tuple[int, ...]:
        if key not in state:
            raise CheckpointError(f"{where}: {key} is missing; the file is not a whole generator")
        return tuple(state[key].shape)

    if kind == "unet":
        depth = 1
        while any(k.startswith(_unet_prefix(depth)) for k in state):
            depth += 1
        first, last = shape("model.model.0.weight"), shape("model.model.3.weight")
        ngf, input_nc, output_nc = first[0], first[1], last[1]
        norm_prefix, bias_key = _unet_prefix(1) + "2.", _unet_prefix(1) + "1.bias"
        dropout = True  # a U-Net's dropout leaves no trace in its weights (module docstring)
    else:
        blocks = {m.group(1) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
        depth = len(blocks)
        first = shape("model.1.weight")
        last = shape(f"model.{10 + depth + 7}.weight")
        ngf, input_nc, output_nc = first[0], first[1], last[0]
        norm_prefix, bias_key = "model.2.", "model.1.bias"
        dropout = "model.10.conv_block.6.weight" in state  # the second conv moves one on
    if f"{norm_prefix}weight" in state:
        norm: Norm = "batch"
    elif bias_key in state:
        norm = "instance"
    else:
        norm = "none"
    if cfg.generator is not None:
        depth = REFERENCE_DEPTHS[cfg.generator]
    fields = ("depth", "ngf", "norm", "input_nc", "output_nc", "dropout")
    overrides = {k: v for k in fields if (v := getattr(cfg, k)) is not None}
    arch = replace(Architecture(kind, depth, ngf, norm, input_nc, output_nc, dropout), **overrides)
    check_layout(state, arch, where, cfg.given())
    return arch


def _layout_kind(state: dict[str, torch.Tensor], where: str) -> Literal["unet", "resnet"]:
    if "model.model.0.weight" in state:
        return "unet"
    if "model.1.weight" in state and any(".conv_block." in k for k in state):
        return "resnet"
    keys = ", ".join(list(state)[:3])
    raise CheckpointError(
        f"{where}: not a generator of the reference pix2pix/CycleGAN code (a U-Net has "
        f"model.model.0.weight, a ResNet model.N.conv_block.* keys); its keys begin {keys}"
    )


def check_layout(
    state: dict[str, torch.Tensor], arch: Architecture, where: str, overrides: dict[str, Any]
) -> None:
    """Refuse ``state`` unless it is exactly a reference generator of ``arch`` (batch norms'
    ``num_batches_tracked`` may be missing, as in files saved before PyTorch 0.4.1, and so may
    old instance norms' running statistics be there). One CheckpointError naming the key."""
    told = ", ".join(
        (f"--{k}" if v else f"--no-{k}") if isinstance(v, bool) else f"--{k} {v}"
        for k, v in overrides.items()
    )
    because = f" with {told}" if told else ""
    expected = expected_layout(arch)
    for key, shape in expected.items():
        if key not in state:
            if key.endswith("num_batches_tracked"):
                continue
            raise CheckpointError(
                f"{where}: {key} is missing, which a {arch.describe()} generator has{because}; "
                "the file is not that generator (check the options, or the file)"
            )
        if tuple(state[key].shape) != shape:
            raise CheckpointError(
                f"{where}: {key} is {list(state[key].shape)}, but a {arch.describe()} generator"
                f"{because} has {list(shape)} there"
            )
    extra = [k for k in state if k not in expected and not _old_instance_stats(k, arch)]
    if extra:
        raise CheckpointError(
            f"{where}: {extra[0]} is not part of a {arch.describe()} generator{because} "
            f"({len(extra)} such keys); the file is another network or another architecture"
        )


def _old_instance_stats(key: str, arch: Architecture) -> bool:
    """Running statistics that PyTorch before 0.4 saved for instance norms (which use none)."""
    return arch.norm == "instance" and key.rsplit(".", 1)[-1] in (
        "running_mean", "running_var", "num_batches_tracked"
    )  # fmt: skip


def i2i_weights(state: dict[str, torch.Tensor], arch: Architecture) -> dict[str, torch.Tensor]:
    """``state`` (a reference generator of ``arch``, as :func:`check_layout` accepts it)
    under i2i's names, with the biases the reference leaves out as zeros and a missing
    ``num_batches_tracked`` as 0."""
    import torch

    weights = {}
    for key, (shape, dtype, kept) in i2i_tensors(arch).items():
        ref = reference_key(arch, key)
        if kept and ref in state:
            weights[key] = state[ref].detach().clone().contiguous()
        else:  # a bias the reference does without, or an old file's batch counter
            weights[key] = torch.zeros(shape, dtype=dtype)
    return weights


# -- writing a checkpoint ---------------------------------------------------------------------
def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def import_reference(
    path: str | Path,
    out: str | Path,
    cfg: ImportConfig | None = None,
    source: dict[str, Any] | None = None,
) -> Path:
    """Import the reference generator in ``path`` as an i2i checkpoint in folder ``out``
    (``out/imported`` + ``out/latest``, so ``out`` works wherever a run folder does); returns
    the checkpoint folder. ``source`` adds to the card's record of where the model came from.
    CheckpointError for a file that is not such a generator or disagrees with ``cfg``."""
    cfg = cfg or ImportConfig()
    path, out = Path(path), Path(out)
    kept = (CHECKPOINT, LATEST)  # an earlier import, replaced; hidden names: killed writes
    entries = list(out.iterdir()) if out.is_dir() else []
    other = sorted(p.name for p in entries if p.name not in kept and not p.name.startswith("."))
    if other:
        raise ConfigError(f"--out {out} holds other files ({other[0]} ...); choose a new folder")
    state = read_state_dict(path)
    arch = infer_architecture(state, str(path), cfg)
    check_finite(state, f"{path}: ", "a diverged run")
    weights = i2i_weights(state, arch)
    method = cfg.model or default_method(arch)
    gen = arch.generator_config(cfg.batch_stats)
    if method == "colorization":  # G: L -> ab inside the colorizer, which takes and gives RGB
        check_colorizer(arch, str(path))
        spec, prefix = NetSpec("generator", ColorizerConfig(generator=gen), 3, 3), "G.generator."
        normalization = ColorizerConfig.NORMALIZATION
    else:
        spec, prefix = NetSpec("generator", gen, arch.input_nc, arch.output_nc), "G."
        normalization = NORMALIZATION
    card = ModelCard(
        model=method,
        nets={"G": spec},
        translate=TranslateInfo({cfg.direction: "G"}, cfg.direction, cfg.crop_size),
        scale=ScaleInfo(cfg.preprocess, cfg.load_size, cfg.crop_size),
        source={
            "format": FORMAT,
            "file": path.name,
            "sha256": sha256_of(path),
            "architecture": asdict(arch),  # what was inferred, with the options given
            "options": cfg.given(),
            **(source or {}),
        },
        normalization=normalization,
    )
    return save_checkpoint(out, CHECKPOINT, {prefix + k: v for k, v in weights.items()}, card)


def default_method(arch: Architecture) -> Method:
    """The method a reference generator comes from: L -> ab (1 -> 2 channels) is the
    reference's colorization model; otherwise its U-Nets are pix2pix's, its ResNets CycleGAN's."""
    if (arch.input_nc, arch.output_nc) == (1, 2):
        return "colorization"
    return "pix2pix" if arch.kind == "unet" else "cyclegan"


def check_colorizer(arch: Architecture, where: str) -> None:
    """A colorization generator maps L (1 channel) to ab (2); CheckpointError otherwise."""
    if (arch.input_nc, arch.output_nc) != (1, 2):
        raise CheckpointError(
            f"{where}: --model colorization takes a generator from L (1 channel) to ab (2 "
            f"channels), but this one maps {arch.input_nc} to {arch.output_nc}; leave --model out"
        )


def cached_import(path: str | Path, cfg: ImportConfig | None = None) -> Path:
    """The checkpoint of ``path`` imported with ``cfg``, made once in the cache
    (``$I2I_CACHE/imported``, keyed by the file's contents and the options) and reused."""
    cfg = cfg or ImportConfig()
    key = json.dumps({"sha256": sha256_of(Path(path)), "options": asdict(cfg)}, sort_keys=True)
    folder = cache_root() / "imported" / hashlib.sha256(key.encode()).hexdigest()[:16]
    if (folder / LATEST).is_file() and (folder / CHECKPOINT / CARD).is_file():
        return folder / CHECKPOINT
    return import_reference(path, folder, cfg)


def is_reference_file(path: str | Path) -> bool:
    """Whether ``path`` names a ``.pth`` / ``.pt`` file (the reference code's weights files)."""
    return Path(path).suffix in (".pth", ".pt") and Path(path).is_file()
