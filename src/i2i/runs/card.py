"""The model card: what a checkpoint's ``model.json`` says about the model, typed.

A card names the method (``model``), describes each network well enough to rebuild it without
the run's config (``nets``: role, architecture config, channels), and says how to use the model:
``translate`` (which network translates which direction, at which training size) or ``sample``
(an unconditional generator). ``scale`` says how training images were brought to the network
(preprocess, load and crop size), for translating at the training scale. It also keeps the
training step, the run's whole config, the pixel normalization, the i2i version and, for
imported models, where they came from (``source``).

On disk the card is JSON, format ``i2i-checkpoint`` version 1; every checkpoint written since
version 1 reads back into the same card. Reading checks every field, so a damaged or edited
``model.json`` is one ``CheckpointError`` naming the file, never a traceback. This module
imports no torch: only :meth:`NetSpec.build` does.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args, get_type_hints

from i2i.config import (
    MAX_SIDE,
    NET_CONFIGS,
    DataConfig,
    NetConfig,
    Preprocess,
    RunConfig,
    from_dict,
)
from i2i.errors import CheckpointError, ConfigError, UserError
from i2i.version import __version__

if TYPE_CHECKING:
    from torch import nn

FORMAT = "i2i-checkpoint"
VERSION = 1
NORMALIZATION = "network pixels = 2x - 1 for image pixels x in [0, 1]; back: (y + 1) / 2"
DIRECTIONS = ("AtoB", "BtoA")
MAX_CARD_BYTES = 16 * 2**20  # a card is a few KiB; a huge model.json is not one


def _kind_literals(cls: type) -> tuple[str, ...]:
    return get_args(get_type_hints(cls)["kind"])


@dataclass(frozen=True)
class NetSpec:
    """One network of a model: its ``role`` (``generator``, ``discriminator``, ``patch
    projection head``), its architecture ``config`` (``config.NetConfig``, ``kind`` naming the
    builder in that role's registry) and its channels (a DCGAN generator's ``in_channels`` is
    its latent length; a critic has no ``out_channels``)."""

    role: str
    config: NetConfig
    in_channels: int
    out_channels: int | None = None

    def build(self) -> nn.Module:
        """The network, freshly built (weights not loaded), through the role's registry."""
        # imported here for start-up speed: reading a card must not import torch (2-3 s), which
        # translating with a cached ONNX export never needs
        from i2i.nets import build_net

        return build_net(self.role, self.config, self.in_channels, self.out_channels)

    def to_json(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "role": self.role,
            "in_channels": self.in_channels,
            "config": dataclasses.asdict(self.config),
        }
        if self.out_channels is not None:
            spec["out_channels"] = self.out_channels
        return spec

    @classmethod
    def from_json(cls, data: Any, where: str) -> NetSpec:
        """Parse one ``nets`` entry; ConfigError (naming ``where``) for anything off."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping")
        role = data.get("role")
        if role not in NET_CONFIGS:
            raise ConfigError(f"{where}.role: {role!r} is not one of {', '.join(NET_CONFIGS)}")
        config = data.get("config")
        if not isinstance(config, dict):
            raise ConfigError(f"{where}.config: expected a mapping")
        kind = config.get("kind") or _version1_kind(role, config)
        classes = [c for c in NET_CONFIGS[role] if kind in _kind_literals(c)]
        if not classes:
            raise ConfigError(f"{where}.config.kind: {kind!r} is not a known {role}")
        net_config = from_dict(classes[0], {**config, "kind": kind}, f"{where}.config")
        out_channels = data.get("out_channels")
        return cls(
            role,
            net_config,
            _channels(data.get("in_channels"), f"{where}.in_channels"),
            None if out_channels is None else _channels(out_channels, f"{where}.out_channels"),
        )


def _channels(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
        raise ConfigError(f"{where}: expected a channel count, got {value!r}")
    return value


def _version1_kind(role: str, config: dict[str, Any]) -> str:
    """The network kind of a card written before net configs named their kind: a DCGAN's nets
    and CUT's projection head (the image-to-image nets always named theirs)."""
    if role == "patch projection head":
        return "patch_mlp"
    if "latent_dim" in config or (role == "discriminator" and "size" in config):
        return "dcgan"
    return ""


@dataclass(frozen=True)
class TranslateInfo:
    """How a translation model is used: ``nets`` maps each direction it translates (AtoB, BtoA)
    to the network that does it; ``default`` is the training direction; ``train_size`` the
    side (px) of its training crops."""

    nets: dict[str, str]
    default: str
    train_size: int


@dataclass(frozen=True)
class ScaleInfo:
    """The pixel scale a translation model learned at: how its training images were brought to
    the network (``preprocess``, as ``data.preprocess``: resize_and_crop, crop, resize, none)
    with ``load_size`` and ``crop_size`` (px)."""

    preprocess: Preprocess
    load_size: int
    crop_size: int

    @property
    def side(self) -> int | None:
        """The side (px) the network saw a whole training image at: the load size for
        resize_and_crop (resized, then cropped), the crop size for resize; None when the images
        kept their own scale (crop, none), so that translating needs no resizing."""
        if self.preprocess == "resize_and_crop":
            return self.load_size
        if self.preprocess == "resize":
            return self.crop_size
        return None


@dataclass(frozen=True)
class SampleInfo:
    """How an unconditional model is used: network ``net`` makes ``size`` x ``size`` images of
    ``channels`` channels from latent vectors."""

    net: str
    size: int
    channels: int


@dataclass
class ModelCard:
    """A checkpoint's ``model.json``, typed (see the module docstring)."""

    model: str  # the method: pix2pix, cyclegan, cut, fastcut, dcgan ...
    nets: dict[str, NetSpec]
    step: int = 0
    translate: TranslateInfo | None = None
    sample: SampleInfo | None = None
    config: dict[str, Any] | None = None  # the run's config.yaml, when trained by i2i
    i2i_version: str = __version__
    normalization: str = NORMALIZATION
    source: dict[str, Any] | None = field(default=None)  # where an imported model came from
    scale: ScaleInfo | None = None  # the training scale (cards before it: see training_scale)

    def training_scale(self) -> ScaleInfo | None:
        """How the model's training images were scaled: the card's ``scale``; for a card
        written before it, the run config's data section, or else a resize to the training
        size. None for a model that does not translate."""
        if self.translate is None:
            return None
        if self.scale is not None:
            return self.scale
        data = self.config.get("data") if self.config is not None else None
        if isinstance(data, dict) and "crop_size" in data:
            default = DataConfig()
            return ScaleInfo(
                data.get("preprocess", default.preprocess),
                data.get("load_size", default.load_size),
                data["crop_size"],
            )
        size = self.translate.train_size
        return ScaleInfo("resize", size, size)

    def data_config(self, where: str = "model.json") -> DataConfig:
        """The data settings of a translation model: its run's, or (an imported model) those
        the card implies: direction, channels, preprocess, load and crop size."""
        if self.config is not None:
            return self.run_config(where).data
        direction, net = self.translator(None, where)
        scale, spec = self.training_scale(), self.nets[net]
        assert scale is not None and spec.out_channels is not None
        try:
            return DataConfig(
                direction=direction,  # type: ignore[arg-type]
                preprocess=scale.preprocess,
                load_size=scale.load_size,
                crop_size=scale.crop_size,
                input_nc=spec.in_channels,
                output_nc=spec.out_channels,
            )
        except ConfigError as exc:
            raise CheckpointError(f"{where}: {exc}") from None

    def run_config(self, where: str = "model.json") -> RunConfig:
        """The training run's config, typed; CheckpointError when the card has none."""
        if self.config is None:
            raise CheckpointError(f"{where}: this model was not trained by i2i (no run config)")
        try:
            return from_dict(RunConfig, self.config, "config")
        except UserError as exc:
            raise CheckpointError(f"{where}: {exc}") from None

    def translator(self, direction: str | None, where: str = "model.json") -> tuple[str, str]:
        """(direction, net name) of the network that translates ``direction`` (None: the
        training direction). CheckpointError when the model does not translate that way."""
        if self.translate is None:
            raise CheckpointError(
                f"{where}: a {self.model} model generates images rather than translating "
                "them; use `i2i sample`"
            )
        direction = direction or self.translate.default
        if direction not in self.translate.nets:
            raise CheckpointError(
                f"{where}: this {self.model} model translates "
                f"{' and '.join(self.translate.nets)}, not {direction}"
            )
        return direction, self.translate.nets[direction]

    def to_json(self) -> dict[str, Any]:
        """The on-disk form (format version 1)."""
        out: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "i2i_version": self.i2i_version,
            "model": self.model,
            "step": self.step,
            "nets": {name: spec.to_json() for name, spec in self.nets.items()},
            "normalization": self.normalization,
        }
        if self.config is not None:
            out["config"] = self.config
        if self.translate is not None:
            out["translate"] = dataclasses.asdict(self.translate)
        if self.sample is not None:
            out["sample"] = dataclasses.asdict(self.sample)
        if self.source is not None:
            out["source"] = self.source
        if self.scale is not None:
            out["scale"] = dataclasses.asdict(self.scale)
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)

    @classmethod
    def from_json(cls, data: Any, where: str = "model.json") -> ModelCard:
        """Parse and check a card; one CheckpointError naming ``where`` for anything off."""
        try:
            return cls._parse(data, where)
        except ConfigError as exc:
            raise CheckpointError(f"{where}: {exc}; the file is damaged or not i2i's") from None

    @classmethod
    def _parse(cls, data: Any, where: str) -> ModelCard:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CheckpointError(f"{where}: not an i2i checkpoint description")
        version = data.get("version", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise ConfigError(f"version: expected a whole number, got {version!r}")
        if version > VERSION:
            raise CheckpointError(
                f"{where}: written by a newer i2i (format version {version}); upgrade i2i"
            )
        model, step = data.get("model"), data.get("step", 0)
        if not isinstance(model, str) or not model:
            raise ConfigError(f"model: expected the method's name, got {model!r}")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ConfigError(f"step: expected a whole number of steps, got {step!r}")
        nets_data = data.get("nets")
        if not isinstance(nets_data, dict) or not nets_data:
            raise ConfigError("nets: expected a mapping of network names to descriptions")
        nets = {str(k): NetSpec.from_json(v, f"nets.{k}") for k, v in nets_data.items()}
        translate = sample = None
        if data.get("translate") is not None:
            translate = from_dict(TranslateInfo, data["translate"], "translate")
            for direction, name in translate.nets.items():
                if direction not in DIRECTIONS:
                    raise ConfigError(f"translate.nets: {direction!r} is not AtoB or BtoA")
                if name not in nets or nets[name].role != "generator":
                    raise ConfigError(f"translate.nets.{direction}: no generator {name!r}")
            if translate.default not in translate.nets or translate.train_size < 1:
                raise ConfigError("translate: default direction or train_size out of range")
        if data.get("sample") is not None:
            sample = from_dict(SampleInfo, data["sample"], "sample")
            if sample.net not in nets or nets[sample.net].role != "generator":
                raise ConfigError(f"sample.net: no generator {sample.net!r}")
        if translate is None and sample is None:
            raise ConfigError("neither 'translate' nor 'sample' says how to use the model")
        scale = None
        if data.get("scale") is not None:
            scale = from_dict(ScaleInfo, data["scale"], "scale")
            for name in ("load_size", "crop_size"):
                if not 1 <= getattr(scale, name) <= MAX_SIDE:
                    raise ConfigError(f"scale.{name}: {getattr(scale, name)} px is out of range")
        config, source = data.get("config"), data.get("source")
        if config is not None and not isinstance(config, dict):
            raise ConfigError("config: expected a mapping")
        if source is not None and not isinstance(source, dict):
            raise ConfigError("source: expected a mapping")
        return cls(
            model=model,
            nets=nets,
            step=step,
            translate=translate,
            sample=sample,
            config=config,
            i2i_version=str(data.get("i2i_version", "")),
            normalization=str(data.get("normalization", NORMALIZATION)),
            source=source,
            scale=scale,
        )

    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        """The card in file ``path`` (a checkpoint's ``model.json``)."""
        path = Path(path)
        try:
            if path.stat().st_size > MAX_CARD_BYTES:
                raise CheckpointError(f"{path}: {path.stat().st_size} bytes is no model card")
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise CheckpointError(f"{path}: unreadable ({exc})") from exc
        return cls.from_json(data, str(path))
