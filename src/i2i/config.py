"""Typed configuration: every option of a run, as nested dataclasses.

A run's whole config is written to ``config.yaml`` in its run folder and read back on resume.
``from_dict`` checks every key and value, so a typo in a YAML file or a ``--set`` override is an
error that names the field instead of a silently ignored option.

Each field is declared with :func:`option`: its default, a help text, its checked range and, for
the options the ``i2i train`` command exposes, the flag's name. The command derives its flags and
their help (defaults included, per model) from these declarations; nothing is restated by hand.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from i2i.errors import ConfigError

Layout = Literal["auto", "side_by_side", "ab_folders", "npz"]
Direction = Literal["AtoB", "BtoA"]
Preprocess = Literal["resize_and_crop", "crop", "resize", "none"]
Norm = Literal["instance", "batch", "none"]
BatchStats = Literal["running", "image"]
Init = Literal["normal", "xavier", "kaiming", "orthogonal"]
GanMode = Literal["vanilla", "lsgan", "hinge", "wgan-gp"]
ReconLoss = Literal["l1", "l2", "l1+l2"]
GeneratorKind = Literal["unet_128", "unet_256", "resnet_6blocks", "resnet_9blocks"]
DiscriminatorKind = Literal["patch", "pixel"]
Precision = Literal["fp32", "bf16", "fp16"]

MAX_SIDE = 16384  # px: larger training sizes are typos, not images a GAN trains on
MAX_WIDTH = 1024  # channels: ngf/ndf beyond this need terabytes


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    flag: str | None = None,
    min: float | None = None,
    max: float | None = None,
    above: float | None = None,
    below: float | None = None,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A config field: ``default`` (or ``factory``), what it means, its range (``min``/``max``
    inclusive, ``above``/``below`` exclusive; None and NaN are refused by any bound but None
    is allowed where the type allows it) and the ``i2i train`` flag that sets it (``--flag``)."""
    meta = {"help": help, "flag": flag, "range": (min, max, above, below)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def check_range(value: Any, bounds: tuple[Any, ...], where: str) -> None:
    """Raise ConfigError naming ``where`` when ``value`` (a number, or each number of a list)
    is outside ``bounds`` = (min, max, above, below)."""
    lo, hi, above, below = bounds
    values = value if isinstance(value, list) else [value]
    for v in values:
        if v is None or isinstance(v, bool) or not isinstance(v, int | float):
            continue
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{where} must be a finite number, got {v}")
        if lo is not None and not v >= lo:
            least = "0 or more" if lo == 0 else f"at least {lo}"
            raise ConfigError(f"{where} must be {least}, got {v}")
        if hi is not None and not v <= hi:
            raise ConfigError(f"{where} must be at most {hi}, got {v}")
        if above is not None and not v > above:
            word = "positive" if above == 0 else f"above {above}"
            raise ConfigError(f"{where} must be {word}, got {v}")
        if below is not None and not v < below:
            raise ConfigError(f"{where} must be below {below}, got {v}")


class Section:
    """A config section: checks each field's declared range on construction (the message
    names ``SECTION.field``), then the section's own rules (:meth:`validate`)."""

    SECTION: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if "range" in f.metadata:
                check_range(getattr(self, f.name), f.metadata["range"], self.where(f.name))
        self.validate()

    def where(self, name: str) -> str:
        return f"{self.SECTION}.{name}" if self.SECTION else name

    def validate(self) -> None:
        """Rules between fields; raise ConfigError naming them."""


@dataclass
class DataConfig(Section):
    """Where the pairs come from and how they are preprocessed."""

    SECTION: ClassVar[str] = "data"

    root: str = option("", "Dataset: a folder (train/ val/ ...), a .npz file, an IDX file.",
                       flag="data")  # fmt: skip
    layout: Layout = option("auto", "Paired layout: A|B in one image, A/ + B/ folders, .npz.",
                            flag="layout")  # fmt: skip
    direction: Direction = option("AtoB", "Which side is the input.", flag="direction")
    preprocess: Preprocess = option(
        "resize_and_crop",
        "resize_and_crop: resize to load size, random crop; crop: random crop at the image's "
        "own scale; resize: to crop size; none: own size.",
        flag="preprocess",
    )
    load_size: int = option(286, "Side images are resized to before the random crop (px).",
                            flag="load_size", min=1, max=MAX_SIDE)  # fmt: skip
    crop_size: int = option(256, "Training crop side (px); evaluation resizes to it.",
                            flag="crop_size", min=1, max=MAX_SIDE)  # fmt: skip
    flip: bool = option(True, "Random horizontal flip, the same for both images of a pair.",
                        flag="flip")  # fmt: skip
    input_nc: int = option(3, "Input channels, 1 or 3.", flag="input_nc")
    output_nc: int = option(3, "Output channels, 1 or 3.", flag="output_nc")
    npz_keys: list[str] = option(help="Source and target array names in a .npz.",
                                 flag="npz_keys", factory=lambda: ["arr_0", "arr_1"])  # fmt: skip
    train_split: str = option("train", "Split folder trained on.")
    val_split: str = option("val", "Split folder of the sample grids and --eval-every.")
    skip_bad: bool = option(False, "Skip unreadable images with a warning, instead of stopping.",
                            flag="skip_bad")  # fmt: skip
    # None: 0 on the CPU (the compute threads need the cores), up to 4 on a GPU
    # (docs/performance.md: 1.6x images/s on an H100)
    num_workers: int | None = option(None, "Data-loading processes; none: 4 per GPU, 0 on a CPU.",
                                     flag="num_workers", min=0, max=256)  # fmt: skip
    cache: bool = option(True, "Keep decoded, resized training images in memory.", flag="cache")
    serial: bool = option(False, "Unpaired data: A[i] with B[i], not a random B.", flag="serial")
    # two folders of any names (Kaggle's photo_jpg/ and monet_jpg/) as the unpaired domains
    domain_a: str | None = option(None, "Unpaired data: folder of domain A images (with "
                                  "--domain-b, instead of --data).", flag="domain_a")  # fmt: skip
    domain_b: str | None = option(None, "Unpaired data: folder of domain B images (with "
                                  "--domain-a, instead of --data).", flag="domain_b")  # fmt: skip

    def validate(self) -> None:
        for name in ("input_nc", "output_nc"):
            if getattr(self, name) not in (1, 3):
                raise ConfigError(f"data.{name} must be 1 or 3, got {getattr(self, name)}")
        if self.preprocess == "resize_and_crop" and self.crop_size > self.load_size:
            raise ConfigError(
                f"data.crop_size ({self.crop_size}) is larger than data.load_size "
                f"({self.load_size}); a crop must fit inside the resized image"
            )
        if len(self.npz_keys) != 2:
            raise ConfigError(f"data.npz_keys must name two arrays, got {self.npz_keys}")
        if (self.domain_a is None) != (self.domain_b is None):
            raise ConfigError(
                "data.domain_a and data.domain_b (--domain-a, --domain-b) go together: give "
                "both folders, or neither"
            )
        if self.domain_a is not None and self.root:
            raise ConfigError(
                f"data.root ({self.root}) and data.domain_a/domain_b both name the data; give "
                "--data DIR or --domain-a DIR --domain-b DIR, not both"
            )


@dataclass
class GeneratorConfig(Section):
    """An image-to-image generator: which architecture (``nets.GENERATORS``), and its size."""

    SECTION: ClassVar[str] = "model.generator"

    kind: GeneratorKind = option("unet_256", "Generator architecture.", flag="generator")
    ngf: int = option(64, "Generator width: channels of its first layer.", flag="ngf",
                      min=1, max=MAX_WIDTH)  # fmt: skip
    norm: Norm = option("instance", "Normalization layers.", flag="norm")
    dropout: float = option(0.5, "Dropout in the U-Net decoder / ResNet blocks; 0 disables it.",
                            flag="dropout", min=0, below=1)  # fmt: skip
    skip: bool = option(True, "U-Net skip connections; off is the paper's encoder-decoder.",
                        flag="skip")  # fmt: skip
    depth: int | None = option(None, "U-Net downsamplings or ResNet blocks; none: the kind's own.",
                               flag="depth", min=1, max=16)  # fmt: skip
    # set by `i2i import` for the reference code's pix2pix models (i2i.runs.importer)
    batch_stats: BatchStats = option(
        "running", "Batch norm in translation: its running statistics, or each image's own "
        "(the pix2pix paper's test-time batch statistics, at batch size 1).",
    )  # fmt: skip


@dataclass
class DiscriminatorConfig(Section):
    """A discriminator (``nets.DISCRIMINATORS``) and its size."""

    SECTION: ClassVar[str] = "model.discriminator"

    kind: DiscriminatorKind = option("patch", "Discriminator: PatchGAN or 1x1 PixelGAN.",
                                     flag="disc")  # fmt: skip
    n_layers: int = option(3, "PatchGAN layers: 1 -> 16 px field, 3 -> 70 px, 5 -> 286 px.",
                           flag="disc_layers", min=1, max=8)  # fmt: skip
    ndf: int = option(64, "Discriminator width.", flag="ndf", min=1, max=MAX_WIDTH)
    norm: Norm = option("instance", "Normalization layers.", flag="norm")


@dataclass
class Pix2PixConfig(Section):
    """pix2pix (Isola et al. 2017): conditional GAN + reconstruction loss on paired data."""

    SECTION: ClassVar[str] = "model"

    kind: Literal["pix2pix"] = "pix2pix"
    generator: GeneratorConfig = option(factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = option(factory=DiscriminatorConfig)
    gan_mode: GanMode = option("vanilla", "GAN objective.", flag="gan_mode")
    recon_loss: ReconLoss = option("l1", "Reconstruction loss.", flag="recon_loss")
    recon_mix: float = option(0.5, "With l1+l2: the weight of L1 (L2 gets 1 - it).",
                              flag="recon_mix", min=0, max=1)  # fmt: skip
    lambda_recon: float = option(100.0, "Weight of the reconstruction loss (lambda).",
                                 flag="lambda_recon", min=0)  # fmt: skip
    lambda_gp: float = option(10.0, "Gradient-penalty weight (wgan-gp only).", min=0)
    init: Init = option("normal", "Weight initialization.", flag="init")
    init_gain: float = option(0.02, "Scale of the initial weights.", above=0)


@dataclass
class ColorizationConfig(Pix2PixConfig):
    """Colorization: pix2pix in CIE Lab. The generator sees the L channel of each colour image
    and predicts its a, b channels; the discriminator judges (L, ab) pairs. The options are
    pix2pix's; the data is any folder of colour images (the gray input is made from each)."""

    kind: Literal["colorization"] = "colorization"  # type: ignore[assignment]


def _resnet9() -> GeneratorConfig:
    return GeneratorConfig(kind="resnet_9blocks", dropout=0.0)


@dataclass
class CycleGANConfig(Section):
    """CycleGAN (Zhu et al. 2017): G: A->B and F: B->A with cycle and identity losses."""

    SECTION: ClassVar[str] = "model"

    kind: Literal["cyclegan"] = "cyclegan"
    generator: GeneratorConfig = option(factory=_resnet9)  # used for both G and F
    discriminator: DiscriminatorConfig = option(factory=DiscriminatorConfig)
    gan_mode: GanMode = option("lsgan", "GAN objective.", flag="gan_mode")
    cycle_loss: ReconLoss = option("l1", "Cycle-consistency loss.", flag="cycle_loss")
    cycle_mix: float = option(0.5, "With l1+l2: the weight of L1.", min=0, max=1)
    lambda_A: float = option(10.0, "Weight of the A -> B -> A cycle.", min=0)
    lambda_B: float = option(10.0, "Weight of the B -> A -> B cycle.", min=0)
    lambda_identity: float = option(0.5, "Identity loss weight, a fraction of lambda_A/B.",
                                    flag="lambda_identity", min=0)  # fmt: skip
    pool_size: int = option(50, "History of generated images shown to the discriminators.",
                            flag="pool_size", min=0, max=100_000)  # fmt: skip
    lambda_gp: float = option(10.0, "Gradient-penalty weight (wgan-gp only).", min=0)
    init: Init = option("normal", "Weight initialization.", flag="init")
    init_gain: float = option(0.02, "Scale of the initial weights.", above=0)


@dataclass
class CUTConfig(Section):
    """CUT and FastCUT (Park et al. 2020): one generator, multilayer PatchNCE loss.

    ``kind`` picks the paper's two settings; ``lambda_nce``, ``nce_identity`` and
    ``flip_equivariance`` left at None take that setting's value (CUT: 1, on, off;
    FastCUT: 10, off, on).
    """

    SECTION: ClassVar[str] = "model"

    kind: Literal["cut", "fastcut"] = "cut"
    generator: GeneratorConfig = option(factory=_resnet9)
    discriminator: DiscriminatorConfig = option(factory=DiscriminatorConfig)
    gan_mode: GanMode = option("lsgan", "GAN objective.", flag="gan_mode")
    lambda_gan: float = option(1.0, "Weight of the GAN loss.", min=0)
    lambda_nce: float | None = option(None, "Weight of PatchNCE (CUT 1, FastCUT 10).", min=0)
    nce_identity: bool | None = option(None, "PatchNCE on (B, G(B)) too (CUT on, FastCUT off).")
    flip_equivariance: bool | None = option(None, "G must commute with flips (FastCUT on).")
    nce_layers: list[int] = option(help="Generator layers PatchNCE compares.", min=0,
                                   factory=lambda: [0, 4, 8, 12, 16])  # fmt: skip
    num_patches: int = option(256, "Patches sampled per layer.", min=1, max=1_000_000)
    nce_temperature: float = option(0.07, "PatchNCE temperature tau.", above=0)
    mlp_width: int = option(256, "Width of the patch projection head.", min=1, max=8192)
    lambda_gp: float = option(10.0, "Gradient-penalty weight (wgan-gp only).", min=0)
    init: Init = option("xavier", "Weight initialization.", flag="init")
    init_gain: float = option(0.02, "Scale of the initial weights.", above=0)

    def validate(self) -> None:
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
class DCGANConfig(Section):
    """DCGAN (Radford et al. 2016): unconditional generation from a latent vector."""

    SECTION: ClassVar[str] = "model"

    kind: Literal["dcgan"] = "dcgan"
    latent_dim: int = option(100, "Length of the latent vector z.", min=1, max=100_000)
    ngf: int = option(64, "Generator width.", flag="ngf", min=1, max=MAX_WIDTH)
    ndf: int = option(64, "Discriminator width.", flag="ndf", min=1, max=MAX_WIDTH)
    gan_mode: GanMode = option("vanilla", "GAN objective.", flag="gan_mode")
    lambda_gp: float = option(10.0, "Gradient-penalty weight (wgan-gp only).", min=0)
    init: Init = option("normal", "Weight initialization.", flag="init")
    init_gain: float = option(0.02, "Scale of the initial weights.", above=0)


ModelConfig = Pix2PixConfig | ColorizationConfig | CycleGANConfig | CUTConfig | DCGANConfig
"""Adding a method: a config class here, in this union, and a model file registered in
``i2i.models`` (ARCHITECTURE.md, "Adding a method")."""


def _kinds(cls: type) -> tuple[str, ...]:
    return get_args(get_type_hints(cls)["kind"])


# kind -> config class, read off each class's ``kind`` literal
MODEL_CONFIGS: dict[str, type[ModelConfig]] = {
    kind: cls for cls in get_args(ModelConfig) for kind in _kinds(cls)
}


def model_config(kind: str) -> ModelConfig:
    """The default config of model ``kind``."""
    if kind not in MODEL_CONFIGS:
        raise ConfigError(f"unknown model {kind!r}; choose from {', '.join(MODEL_CONFIGS)}")
    return MODEL_CONFIGS[kind](kind=kind)  # type: ignore[arg-type]


# -- the networks of a model card (``i2i.runs.card``) that have no user-facing section ---------
@dataclass
class DCGANGeneratorConfig(Section):
    """DCGAN's generator: latent vector -> ``size`` x ``size`` image."""

    kind: Literal["dcgan"] = "dcgan"
    latent_dim: int = option(100, min=1, max=100_000)
    ngf: int = option(64, min=1, max=MAX_WIDTH)
    size: int = option(28, min=4, max=MAX_SIDE)


@dataclass
class DCGANDiscriminatorConfig(Section):
    """DCGAN's discriminator on ``size`` x ``size`` images."""

    kind: Literal["dcgan"] = "dcgan"
    ndf: int = option(64, min=1, max=MAX_WIDTH)
    size: int = option(28, min=4, max=MAX_SIDE)


@dataclass
class PatchMLPConfig(Section):
    """CUT's patch projection head: one two-layer MLP per encoder layer of ``channels``."""

    kind: Literal["patch_mlp"] = "patch_mlp"
    width: int = option(256, min=1, max=8192)
    channels: list[int] = option(factory=list, min=1, max=100_000)


@dataclass
class ColorizerConfig(Section):
    """Colorization's translating network: RGB -> CIE L -> ``generator`` (1 -> 2 channels) ->
    a, b -> RGB, so that it takes and gives RGB like any generator (``nets.colorizer``)."""

    # how the colorizer's generator sees pixels (a model card's ``normalization``): the
    # reference repository's colorization scaling, so its generators import unchanged
    NORMALIZATION: ClassVar[str] = (
        "network pixels = 2x - 1 for image pixels x in [0, 1]; back: (y + 1) / 2. Inside the "
        "colorizer, CIE Lab (D65, kornia.color): the generator sees L / 50 - 1 (L in 0..100) "
        "and predicts (a, b) / 110"
    )

    kind: Literal["colorizer"] = "colorizer"
    generator: GeneratorConfig = option(factory=GeneratorConfig)


NetConfig = (
    GeneratorConfig
    | ColorizerConfig
    | DiscriminatorConfig
    | DCGANGeneratorConfig
    | DCGANDiscriminatorConfig
    | PatchMLPConfig
)
# the network configs each role of a model card may hold, told apart by ``kind``
NET_CONFIGS: dict[str, tuple[type[NetConfig], ...]] = {
    "generator": (GeneratorConfig, ColorizerConfig, DCGANGeneratorConfig),
    "discriminator": (DiscriminatorConfig, DCGANDiscriminatorConfig),
    "patch projection head": (PatchMLPConfig,),
}

DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """``"30m"``, ``"2h"``, ``"1800"`` or ``"90s"`` -> seconds; ConfigError otherwise."""
    match = DURATION.fullmatch(text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"--time-limit {text!r}: give a duration such as 1800, 90s, 30m or 2h")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[(match.group(2) or "s").lower()]


@dataclass
class TrainConfig(Section):
    """How long and how a run trains, and what it writes."""

    SECTION: ClassVar[str] = "train"

    out: str = option("runs/pix2pix", "Run folder (or URL): config, checkpoints, logs, pictures.",
                      flag="out")  # fmt: skip
    epochs: int = option(100, "Epochs at the initial learning rate.", flag="epochs",
                         min=0, max=1_000_000)  # fmt: skip
    epochs_decay: int = option(100, "Epochs of linear learning-rate decay to zero after that.",
                               flag="epochs_decay", min=0, max=1_000_000)  # fmt: skip
    max_steps: int | None = option(None, "Stop after this many steps in all.", flag="max_steps",
                                   min=1)  # fmt: skip
    time_limit: str | None = option(
        None, "Train for this much time (1800, 30m, 2h), all sessions together: the lr schedule "
        "is fitted to end there, with a final checkpoint.", flag="time_limit",
    )  # fmt: skip
    batch_size: int = option(1, "Images per step, over all processes.", flag="batch_size",
                             min=1, max=65536)  # fmt: skip
    lr: float = option(2e-4, "Adam learning rate.", flag="lr", above=0)
    beta1: float = option(0.5, "Adam beta1.", min=0, below=1)
    beta2: float = option(0.999, "Adam beta2.", min=0, below=1)
    seed: int = option(0, "Random seed of weights, data order and augmentation.", flag="seed",
                       min=0, max=2**32 - 1)  # fmt: skip
    device: str = option("auto", "auto | cpu | cuda | cuda:N (auto: cuda when present).",
                         flag="device")  # fmt: skip
    deterministic: bool = option(False, "Bitwise-repeatable GPU runs (a little slower).",
                                 flag="deterministic")  # fmt: skip
    # GPU speed settings (docs/performance.md); none changes what is computed beyond rounding
    precision: Precision = option(
        "fp32",
        "Autocast precision: bf16 (GPUs since Ampere) or fp16 (with loss scaling).",
        flag="precision",
    )
    channels_last: bool = option(False, "NHWC tensors: faster on tensor-core GPUs.",
                                 flag="channels_last")  # fmt: skip
    compile: bool = option(False, "torch.compile the networks (GPU: faster after compiling).",
                           flag="compile")  # fmt: skip
    cpu_kernels: bool = option(
        True, "On the CPU, i2i's convolution kernels where they are faster (i2i.kernels); "
        "I2I_CPU_KERNELS=0 turns them off too.", flag="cpu_kernels",
    )  # fmt: skip
    clip_grad_norm: float | None = option(None, "Clip each update's gradient norm to this.",
                                          above=0)  # fmt: skip
    save_every: int = option(1000, "Steps between checkpoints (one is written at the end).",
                             flag="save_every", min=1)  # fmt: skip
    keep: int = option(3, "Step checkpoints kept on disk (older ones are pruned).", min=1)
    log_every: int = option(10, "Steps between logged losses.", flag="log_every", min=1)
    image_every: int = option(500, "Steps between sample grids.", flag="image_every", min=1)
    num_samples: int = option(4, "Rows of a sample grid.", min=1, max=64)
    eval_every: int | None = option(None, "Steps between val-split scores; keeps the best.",
                                    flag="eval_every", min=1)  # fmt: skip
    eval_metric: str = option("l1", "Metric of --eval-every (any of i2i evaluate's).",
                              flag="eval_metric")  # fmt: skip
    eval_limit: int | None = option(100, "Val images per evaluation.", flag="eval_limit", min=1)

    def validate(self) -> None:
        if self.epochs + self.epochs_decay == 0:
            raise ConfigError("train.epochs + train.epochs_decay must be at least 1")
        if not DEVICE_PATTERN.fullmatch(self.device):
            raise ConfigError(f"train.device {self.device!r}: use auto, cpu, cuda or cuda:N")
        if self.time_limit is not None:
            parse_duration(self.time_limit)


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

    Hand-written (about 60 lines) rather than a dependency: the standard library's dataclasses
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


# YAML 1.1 (PyYAML) reads 2e-4 and 1E-3 as text: numbers written so are accepted as numbers
_NUMBER = re.compile(r"[+-]?(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)([eE][+-]?\d+)?|[+-]?(inf|nan)", re.I)


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
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        key_type, value_type = get_args(tp)
        return {
            _coerce(key_type, k, f"{path} key"): _coerce(value_type, v, f"{path}.{k}")
            for k, v in value.items()
        }
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
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            return float(value.strip())
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


def has_dotted(data: dict[str, Any], dotted: str) -> bool:
    """Whether ``data`` has the option ``dotted`` (``'model.generator.ngf'``)."""
    node: Any = data
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def load_yaml(path: str | Path) -> Any:
    """A YAML file's data (safe loading: no Python tags), or one ConfigError naming the file
    and the line of a syntax error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{line}: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text (YAML) file") from None
