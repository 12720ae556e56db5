"""What the training loop needs from every model, the registry of models, and what the models
share.

A model is an ``nn.Module`` holding its networks as named attributes (``G``, ``D`` ...; their
``state_dict`` keys are the checkpoint's). Its ``training_step(batch, update)`` computes the
paper's losses and hands each one to ``update`` with the name of the parameter group it trains
(``update("D", loss_D)``); the loop owns everything else: backward, precision and loss scaling,
gradient averaging across processes, clipping and the optimizer step (``i2i.train.step``).
The model also says which networks each parameter group holds (``param_groups``), what a sample
grid shows (``preview``), how to rebuild each network (``net_specs``), which network translates
which way (``translate_nets``), and which non-weight state resume needs (``train_state``).

Adding a method: a config class in ``i2i.config`` and one file here whose class is registered
with ``@MODELS.register(kind)`` (ARCHITECTURE.md, "Adding a method").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal, Protocol

import torch
from torch import nn

from i2i.config import DataConfig, DiscriminatorConfig, GeneratorConfig, RunConfig, to_dict
from i2i.errors import ConfigError
from i2i.nets import Generator, UNetGenerator
from i2i.registry import Registry
from i2i.runs.card import NORMALIZATION, ModelCard, NetSpec, SampleInfo, ScaleInfo, TranslateInfo
from i2i.version import __version__

DataKind = Literal["paired", "unpaired", "images"]


class Update(Protocol):
    """``update(names, loss)``: one optimizer step of the parameter group(s) ``names`` ("D",
    or ("G", "H")) on ``loss``, a scalar tensor."""

    def __call__(self, names: str | tuple[str, ...], loss: torch.Tensor) -> None: ...


class Model(nn.Module, ABC):
    """A method: its networks as attributes, and what the loop asks of it (module docstring)."""

    data: ClassVar[DataKind]  # the kind of data it learns from (i2i.data.build)
    normalization: ClassVar[str] = NORMALIZATION  # how its networks see pixels (the card's)
    conditional: ClassVar[bool] = True  # its outputs depend on an input image

    @classmethod
    def for_run(cls, cfg: RunConfig) -> Model:
        """The model for ``cfg``'s data, freshly initialized; image-to-image models are built
        from the input and output channels."""
        return cls(cfg.model, cfg.data.input_nc, cfg.data.output_nc)

    @abstractmethod
    def param_groups(self) -> dict[str, list[nn.Module]]:
        """Parameter group name ("G", "D" ...) -> the networks one optimizer updates."""

    @abstractmethod
    def training_step(self, batch: dict[str, Any], update: Update) -> dict[str, torch.Tensor]:
        """One step on ``batch`` (NCHW tensors in [-1, 1]): each loss goes to ``update``;
        returns the named losses to log (detached)."""

    @abstractmethod
    def preview(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Named image columns of a sample grid (NCHW in [-1, 1])."""

    @abstractmethod
    def net_specs(self) -> dict[str, NetSpec]:
        """How to rebuild each network without the run's config (the model card's nets)."""

    @abstractmethod
    def translate_nets(self, direction: str) -> dict[str, str]:
        """Direction -> the network that translates it ({} for unconditional models)."""

    @abstractmethod
    def check_image_size(self, height: int, width: int, data: DataConfig) -> None:
        """Raise ConfigError, with a fix that applies under ``data``'s preprocessing, when
        training inputs of ``width`` x ``height`` px do not fit the networks."""

    def train_state(self) -> dict[str, torch.Tensor]:
        """Non-weight state that resume needs (CycleGAN's history pools); none by default."""
        return {}

    def load_train_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`train_state` returned."""


MODELS: Registry[type[Model]] = Registry("model")


def build_model(cfg: RunConfig) -> Model:
    """The model ``cfg.model.kind`` names, built for ``cfg``'s data (freshly initialized)."""
    return MODELS.get(cfg.model.kind).for_run(cfg)


def data_kind(kind: str) -> DataKind:
    """The kind of data model ``kind`` learns from: paired, unpaired or images."""
    return MODELS.get(kind).data


def model_card(model: Model, cfg: RunConfig, step: int) -> ModelCard:
    """The checkpoint's card: enough to rebuild and use ``model`` without config.yaml.
    ``translate`` maps each direction the model can translate to the network that does it, and
    ``scale`` records the training scale; an unconditional model has ``sample`` instead."""
    nets = model.translate_nets(cfg.data.direction)
    translate = sample = scale = None
    if nets:
        translate = TranslateInfo(nets, cfg.data.direction, cfg.data.crop_size)
        scale = ScaleInfo(cfg.data.preprocess, cfg.data.load_size, cfg.data.crop_size)
    else:
        sample = SampleInfo("G", cfg.data.crop_size, cfg.data.output_nc)
    return ModelCard(
        model=cfg.model.kind,
        nets=model.net_specs(),
        step=step,
        translate=translate,
        sample=sample,
        config=to_dict(cfg),
        i2i_version=__version__,
        scale=scale,
        normalization=model.normalization,
    )


def reverse(direction: str) -> str:
    return "BtoA" if direction == "AtoB" else "AtoB"


def check_translation_size(
    gen: Generator,
    gen_cfg: GeneratorConfig,
    disc_cfg: DiscriminatorConfig,
    h: int,
    w: int,
    data: DataConfig,
) -> None:
    """Fail early when training inputs of ``w`` x ``h`` px do not fit the networks, with a
    fix that works under ``data``'s preprocessing (its own size under ``none``, the crop
    otherwise) and does not suggest what the run already uses."""
    m = gen.size_multiple
    if h % m or w % m:
        depth = f"{gen_cfg.kind} with --depth {gen_cfg.depth}" if gen_cfg.depth else gen_cfg.kind
        fixes = []
        if data.preprocess == "none":
            where = f"with --preprocess none, images are used at their own size ({w}x{h})"
            fixes.append(f"resize them to multiples of {m}")
            fixes.append(
                f"use --preprocess resize_and_crop with a --crop-size that is a multiple of {m}"
            )
        else:
            where = f"the training crops are {w}x{h} (--crop-size {data.crop_size})"
            below, above = max(m, w // m * m), (w // m + 1) * m
            sizes = " or ".join(str(n) for n in sorted({below, above}))
            fixes.append(f"use a --crop-size that is a multiple of {m} ({sizes})")
        if isinstance(gen, UNetGenerator):
            fits = [d for d in range(2, gen.num_downs) if h % 2**d == 0 and w % 2**d == 0]
            if fits:
                fixes.append(f"use a shallower U-Net (--depth {max(fits)})")
        raise ConfigError(
            f"{where}, but generator {depth} needs sides that are multiples of {m}; "
            + ", or ".join(fixes)
        )
    n = disc_cfg.n_layers
    if disc_cfg.kind == "patch" and min(h, w) // 2**n < 3:
        raise ConfigError(
            f"training images of {w}x{h} are too small for a PatchGAN with n_layers={n}; "
            f"it needs sides of at least {3 * 2**n} px (or fewer --disc-layers)"
        )


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    """Freeze discriminators during the generator's update (saves their weight gradients)."""
    for net in nets:
        net.requires_grad_(flag)
