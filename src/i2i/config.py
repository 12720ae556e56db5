"""Typed configuration: every option of a run, as nested dataclasses.

A run's whole config is written to ``config.yaml`` in its run folder and read back on resume.
``from_dict`` checks every key and value, so a typo in a YAML file or a ``--set`` override is an
error that names the field instead of a silently ignored option.
"""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

Layout = Literal["auto", "side_by_side", "ab_folders", "npz"]
Direction = Literal["AtoB", "BtoA"]
Preprocess = Literal["resize_and_crop", "resize", "none"]
Norm = Literal["instance", "batch", "none"]
Init = Literal["normal", "xavier", "kaiming", "orthogonal"]
GanMode = Literal["vanilla", "lsgan", "hinge", "wgan-gp"]
ReconLoss = Literal["l1", "l2", "l1+l2"]
GeneratorKind = Literal["unet_128", "unet_256", "resnet_6blocks", "resnet_9blocks"]
DiscriminatorKind = Literal["patch", "pixel"]
Precision = Literal["fp32", "bf16"]


class ConfigError(ValueError):
    """A config value is missing, misspelled or out of range; the message names the field."""


@dataclass
class DataConfig:
    """Where the pairs come from and how they are preprocessed."""

    root: str = ""  # dataset folder (with train/ val/ ...) or a .npz file
    layout: Layout = "auto"  # side_by_side: A|B in one image; ab_folders: A/ and B/; npz
    direction: Direction = "AtoB"
    preprocess: Preprocess = "resize_and_crop"
    load_size: int = 286  # resize to this before the random crop (resize_and_crop)
    crop_size: int = 256  # training crop; eval/test resize straight to it
    flip: bool = True  # random horizontal flip, the same for both images of a pair
    input_nc: int = 3
    output_nc: int = 3
    npz_keys: list[str] = field(default_factory=lambda: ["arr_0", "arr_1"])
    train_split: str = "train"
    val_split: str = "val"
    skip_bad: bool = False  # skip unreadable files with a warning instead of stopping
    # data-loading processes; 0 loads in the training process; None: 0 on the CPU (the compute
    # threads need the cores), up to 4 on a GPU (docs/performance.md: 1.6x images/s on an H100)
    num_workers: int | None = None
    cache: bool = True  # keep decoded, resized training images in memory (decode once)
    serial: bool = False  # unpaired data: pair A[i] with B[i] instead of a random B each epoch

    def __post_init__(self) -> None:
        for name in ("input_nc", "output_nc"):
            if getattr(self, name) not in (1, 3):
                raise ConfigError(f"data.{name} must be 1 or 3, got {getattr(self, name)}")
        if self.crop_size < 1 or self.load_size < 1:
            raise ConfigError("data.crop_size and data.load_size must be positive")
        if self.preprocess == "resize_and_crop" and self.crop_size > self.load_size:
            raise ConfigError(
                f"data.crop_size ({self.crop_size}) is larger than data.load_size "
                f"({self.load_size}); a crop must fit inside the resized image"
            )
        if len(self.npz_keys) != 2:
            raise ConfigError(f"data.npz_keys must name two arrays, got {self.npz_keys}")
        if self.num_workers is not None and self.num_workers < 0:
            raise ConfigError(f"data.num_workers must be 0 or more, got {self.num_workers}")


@dataclass
class GeneratorConfig:
    kind: GeneratorKind = "unet_256"
    ngf: int = 64  # width: channels of the first layer
    norm: Norm = "instance"
    dropout: float = 0.5  # U-Net decoder / ResNet block dropout; 0 disables it
    skip: bool = True  # U-Net skip connections; False is the paper's encoder-decoder ablation
    depth: int | None = None  # U-Net downsamplings or ResNet blocks; None keeps the kind's own


@dataclass
class DiscriminatorConfig:
    kind: DiscriminatorKind = "patch"
    n_layers: int = 3  # PatchGAN receptive field: 1 -> 16 px, 3 -> 70 px, 5 -> 286 px
    ndf: int = 64
    norm: Norm = "instance"


@dataclass
class Pix2PixConfig:
    """pix2pix (Isola et al. 2017): conditional GAN + reconstruction loss on paired data."""

    kind: Literal["pix2pix"] = "pix2pix"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    gan_mode: GanMode = "vanilla"
    recon_loss: ReconLoss = "l1"
    recon_mix: float = 0.5  # with l1+l2: weight of L1; L2 gets 1 - recon_mix
    lambda_recon: float = 100.0
    lambda_gp: float = 10.0  # gradient-penalty weight, used by wgan-gp only
    init: Init = "normal"
    init_gain: float = 0.02

    def __post_init__(self) -> None:
        if not 0.0 <= self.recon_mix <= 1.0:
            raise ConfigError(f"model.recon_mix must lie in [0, 1], got {self.recon_mix}")


def _resnet9() -> GeneratorConfig:
    return GeneratorConfig(kind="resnet_9blocks", dropout=0.0)


@dataclass
class CycleGANConfig:
    """CycleGAN (Zhu et al. 2017): G: A->B and F: B->A with cycle and identity losses."""

    kind: Literal["cyclegan"] = "cyclegan"
    generator: GeneratorConfig = field(default_factory=_resnet9)  # used for both G and F
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    gan_mode: GanMode = "lsgan"
    cycle_loss: ReconLoss = "l1"
    cycle_mix: float = 0.5  # with l1+l2: weight of L1
    lambda_A: float = 10.0  # weight of the A -> B -> A cycle
    lambda_B: float = 10.0  # weight of the B -> A -> B cycle
    lambda_identity: float = 0.5  # identity loss weight, as a fraction of lambda_A / lambda_B
    pool_size: int = 50  # history of generated images shown to the discriminators
    lambda_gp: float = 10.0
    init: Init = "normal"
    init_gain: float = 0.02

    def __post_init__(self) -> None:
        if not 0.0 <= self.cycle_mix <= 1.0:
            raise ConfigError(f"model.cycle_mix must lie in [0, 1], got {self.cycle_mix}")
        if self.pool_size < 0:
            raise ConfigError(f"model.pool_size must be 0 or more, got {self.pool_size}")


@dataclass
class CUTConfig:
    """CUT and FastCUT (Park et al. 2020): one generator, multilayer PatchNCE loss.

    ``kind`` picks the paper's two settings; ``lambda_nce``, ``nce_identity`` and
    ``flip_equivariance`` left at None take that setting's value (CUT: 1, on, off;
    FastCUT: 10, off, on).
    """

    kind: Literal["cut", "fastcut"] = "cut"
    generator: GeneratorConfig = field(default_factory=_resnet9)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    gan_mode: GanMode = "lsgan"
    lambda_gan: float = 1.0
    lambda_nce: float | None = None
    nce_identity: bool | None = None  # PatchNCE on (B, G(B)) too, an identity-like regularizer
    flip_equivariance: bool | None = None
    nce_layers: list[int] = field(default_factory=lambda: [0, 4, 8, 12, 16])
    num_patches: int = 256
    nce_temperature: float = 0.07
    mlp_width: int = 256  # the patch projection head's width
    lambda_gp: float = 10.0
    init: Init = "xavier"
    init_gain: float = 0.02

    def __post_init__(self) -> None:
        fast = self.kind == "fastcut"
        if self.lambda_nce is None:
            self.lambda_nce = 10.0 if fast else 1.0
        if self.nce_identity is None:
            self.nce_identity = not fast
        if self.flip_equivariance is None:
            self.flip_equivariance = fast
        if not self.nce_layers:
            raise ConfigError("model.nce_layers must name at least one generator layer")


@dataclass
class DCGANConfig:
    """DCGAN (Radford et al. 2016): unconditional generation from a latent vector."""

    kind: Literal["dcgan"] = "dcgan"
    latent_dim: int = 100
    ngf: int = 64
    ndf: int = 64
    gan_mode: GanMode = "vanilla"
    lambda_gp: float = 10.0
    init: Init = "normal"
    init_gain: float = 0.02


ModelConfig = Pix2PixConfig | CycleGANConfig | CUTConfig | DCGANConfig
MODEL_CONFIGS: dict[str, type[ModelConfig]] = {
    "pix2pix": Pix2PixConfig,
    "cyclegan": CycleGANConfig,
    "cut": CUTConfig,
    "fastcut": CUTConfig,
    "dcgan": DCGANConfig,
}


def model_config(kind: str) -> ModelConfig:
    """The default config of model ``kind``."""
    if kind not in MODEL_CONFIGS:
        raise ConfigError(f"unknown model {kind!r}; choose from {', '.join(MODEL_CONFIGS)}")
    return MODEL_CONFIGS[kind](kind=kind)  # type: ignore[arg-type]


@dataclass
class TrainConfig:
    out: str = "runs/pix2pix"  # run folder: config, checkpoints, logs, pictures
    epochs: int = 100  # epochs at the initial learning rate
    epochs_decay: int = 100  # epochs of linear decay to zero after that
    max_steps: int | None = None  # stop early after this many steps (None: run all epochs)
    batch_size: int = 1
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0
    device: str = "auto"  # auto picks cuda when present, else cpu
    # bitwise-repeatable GPU runs (deterministic cuDNN/cuBLAS kernels), a little slower;
    # CPU runs are repeatable either way
    deterministic: bool = False
    # GPU speed settings (docs/performance.md); none changes what is computed beyond rounding
    precision: Precision = "fp32"  # bf16: autocast the networks to bfloat16 (GPUs since Ampere)
    channels_last: bool = False  # NHWC tensors: faster convolutions on tensor-core GPUs
    compile: bool = False  # torch.compile the networks: minutes of compiling, then faster steps
    save_every: int = 1000  # steps between checkpoints (one is always written at the end)
    keep: int = 3  # step checkpoints kept on disk (older ones are pruned)
    log_every: int = 10  # steps between logged scalars
    image_every: int = 500  # steps between sample grids
    num_samples: int = 4  # rows in a sample grid
    # score the val split every eval_every steps (and at the end) and keep checkpoints/best
    eval_every: int | None = None
    eval_metric: str = "l1"  # any metric of `i2i evaluate`; lower or higher is better by metric
    eval_limit: int | None = 100  # val images per evaluation (None: all)

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.epochs_decay < 0 or self.epochs + self.epochs_decay == 0:
            raise ConfigError("train.epochs + train.epochs_decay must be at least 1")
        if self.eval_every is not None and self.eval_every < 1:
            raise ConfigError(f"train.eval_every must be at least 1, got {self.eval_every}")
        for name in ("batch_size", "save_every", "log_every", "image_every", "keep"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self, name)}")


@dataclass
class RunConfig:
    """Everything a training run needs; written to ``RUN/config.yaml``."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=Pix2PixConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


T = TypeVar("T")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass ``cls`` from plain data, checking each key and value against its type.

    Hand-written (about 50 lines) rather than a dependency: the standard library's dataclasses
    plus ``typing`` introspection cover our types, and the errors name the dotted field path.
    """
    where = path or "config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {unknown}; known: {sorted(known)}")
    hints = get_type_hints(cls)
    kwargs = {
        name: _coerce(hints[name], value, f"{path}.{name}" if path else name)
        for name, value in data.items()
    }
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - a required field without default
        raise ConfigError(f"{where}: {exc}") from exc


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)  # type: ignore[arg-type]
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(map(str, get_args(tp)))
            raise ConfigError(f"{path}: {value!r} is not one of {choices}")
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) > 1:  # a union of model configs: the "kind" key picks one
            kind = value.get("kind", "pix2pix") if isinstance(value, dict) else None
            if kind not in MODEL_CONFIGS:
                raise ConfigError(f"{path}.kind: {kind!r} is not one of {', '.join(MODEL_CONFIGS)}")
            return from_dict(MODEL_CONFIGS[kind], value, path)
        return _coerce(inner[0], value, path)
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        (item,) = get_args(tp)
        return [_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected a whole number, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected text, got {value!r}")
        return value
    raise ConfigError(f"{path}: unsupported type {tp}")  # pragma: no cover


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data['train']['lr'] = value`` from ``'train.lr'``; the key must already exist."""
    *parents, leaf = dotted.split(".")
    node = data
    for i, key in enumerate(parents):
        if not isinstance(node.get(key), dict):
            raise ConfigError(f"{'.'.join(parents[: i + 1])}: no such config section")
        node = node[key]
    if leaf not in node:
        raise ConfigError(f"{dotted}: no such option; known: {sorted(node)}")
    node[leaf] = value
