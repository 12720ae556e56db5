"""``i2i evaluate``: score a checkpoint on a dataset split, or a folder of outputs against a
folder of real images, and write ``metrics.json`` plus a Markdown table.

Protocol. A translation model translates each input of the split as prepared for evaluation
(resized to the training crop size); outputs and targets are compared at ``size`` x ``size``
(default: the model's training size; the photo -> map literature uses 256), the targets resized
once from the stored images with PIL bicubic. A translation model that makes its input from each
image (colorization) translates each image of the split and is compared with that image. An
unconditional model (DCGAN) draws as many samples as the real set has images. Distribution
metrics resize both sets the same way (see ``i2i.metrics.features``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from i2i.config import DataConfig
from i2i.data.images import float_to_uint16, list_images, read_with_hint
from i2i.data.layouts import domain_folder, locate, locate_pairs, locate_unpaired
from i2i.data.paired import PairedDataset
from i2i.data.unconditional import GrayPairs, ImageDataset, image_split
from i2i.device import pick_device
from i2i.errors import ConfigError, DataError, InputNotFound
from i2i.files import atomic_path, write_text_atomic
from i2i.infer.batch import batched
from i2i.infer.grid import sample_grid
from i2i.infer.sample import load_generator
from i2i.infer.tiles import Tiling, as_trained, check_tiles
from i2i.infer.translator import Translator
from i2i.metrics.features import FeatureExtractor, FeatureWeightsMissing, build_extractor
from i2i.metrics.names import DESCRIPTIVE, DISTRIBUTION, LOWER_IS_BETTER, PAIRED, check_metrics
from i2i.metrics.paired import LPIPS, to_uint8
from i2i.metrics.palette import Palette
from i2i.metrics.scorer import Scorer
from i2i.models import MODELS, data_kind
from i2i.runs.checkpoint import read_card, resolve_checkpoint
from i2i.runs.pretrained import resolve_model


def _read(path: Path, channels: int) -> np.ndarray:
    """An image to score (HxWxC, [0, 1]); a bad file stops the score, since leaving it out
    would change what is measured."""
    return read_with_hint(path, channels, "fix or remove the file")


@dataclass
class EvalConfig:
    metrics: list[str] | None = None  # None: every metric the data and this machine allow
    split: str | None = None  # None: val, or test where the data has no val split
    size: int | None = None  # compare at size x size; None: the model's training size
    limit: int | None = None  # score only the first N images
    batch_size: int = 8
    pixel_threshold: float = 5.0  # 8-bit levels, as in the photo -> map protocol
    features: str = "inception"  # or "package.module:factory"
    inception_weights: str | None = None
    mifid_eps: float = 0.1
    kid_subset_size: int = 1000
    device: str = "auto"
    palette: str | None = None  # a palette file: per-class IoU (miou) of palette-style targets
    tiling: Tiling | None = None  # translate in tiles (i2i.infer.tiles); None: whole images

    def __post_init__(self) -> None:
        if self.metrics is not None:
            self.metrics = check_metrics(self.metrics)


class Gallery:
    """The first ``limit`` examples of an evaluation, as labelled columns of 8-bit HxWxC
    arrays (input | output | target), for ``gallery.png``: the first thing a person looks at."""

    def __init__(self, limit: int = 8) -> None:
        self.limit = limit
        self.columns: dict[str, list[np.ndarray]] = {}

    def add(self, **columns: Sequence[np.ndarray]) -> None:
        room = self.limit - len(next(iter(self.columns.values()), []))
        if room <= 0:
            return
        for name, images in columns.items():
            self.columns.setdefault(name, []).extend(images[:room])

    def save(self, path: Path) -> None:
        """Write the grid (one row per example) as PNG, atomically; nothing when empty."""
        if not self.columns:
            return
        grid = sample_grid(
            [_to_net(same_shape(images)) for images in self.columns.values()],
            list(self.columns),
        )
        pixels = (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        with atomic_path(path) as tmp:
            Image.fromarray(pixels).save(tmp, format="PNG")


@dataclass
class Report:
    metrics: dict[str, float]
    count: int
    source: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    gallery: Gallery = field(default_factory=Gallery, repr=False, compare=False)

    def table(self) -> str:
        lines = ["| metric | value | better |", "| --- | --- | --- |"]
        for name, value in self.metrics.items():
            base = name.removesuffix("_std")
            arrow = "lower" if base in LOWER_IS_BETTER else "higher"
            # spreads, and colourfulness (described, compared with the real images') judge nothing
            arrow = "" if name.endswith("_std") or name.startswith(DESCRIPTIVE) else arrow
            lines.append(f"| {name} | {value:.4g} | {arrow} |")
        return "\n".join(lines)

    def write(self, out: str | Path) -> Path:
        """``metrics.json``, ``metrics.md`` and ``gallery.png`` into folder ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        summary = {"metrics": self.metrics, "count": self.count, "source": self.source,
                   "notes": self.notes}  # fmt: skip
        write_text_atomic(out / "metrics.json", json.dumps(summary, indent=2) + "\n")
        self.gallery.save(out / "gallery.png")
        what = ", ".join(f"{k}: {_words(v)}" for k, v in self.source.items())
        notes = "".join(f"\n- {n}" for n in self.notes)
        write_text_atomic(
            out / "metrics.md",
            f"# Evaluation\n\n{what}; {self.count} images.\n\n{self.table()}\n{notes}\n",
        )
        return out / "metrics.json"


def make_scorer(
    cfg: EvalConfig,
    paired_data: bool,
    has_train: bool,
    extractor: FeatureExtractor | None = None,
) -> tuple[Scorer, list[str]]:
    """A Scorer for the requested metrics, or (``cfg.metrics`` None) for all that apply here.
    Returns it with notes on metrics left out. ``extractor`` overrides ``cfg.features``."""
    notes: list[str] = []
    auto = cfg.metrics is None
    if auto:
        names = list(PAIRED if paired_data else ()) + list(DISTRIBUTION) + list(DESCRIPTIVE)
        if cfg.palette is None and "miou" in names:
            names.remove("miou")  # per-class IoU needs the palette of the targets
    else:
        names = list(cfg.metrics or [])
    if cfg.palette is not None and paired_data and "miou" not in names:
        names.append("miou")
    if not paired_data:
        asked = [n for n in names if n in PAIRED]
        if asked and not auto:
            raise ConfigError(f"{', '.join(asked)}: need ground-truth pairs, which this data lacks")
    if "mifid" in names and not has_train:
        if not auto:
            raise ConfigError("mifid needs the training images: pass --train-data")
        names.remove("mifid")
        notes.append("mifid left out: no training images given")
    device = pick_device(cfg.device)
    lpips = None
    if "lpips" in names:
        try:
            lpips = LPIPS(device)
        except FeatureWeightsMissing as exc:
            if not auto:
                raise
            names.remove("lpips")
            notes.append(f"lpips left out: {exc}")
    feats: FeatureExtractor | None = None
    if any(n in DISTRIBUTION for n in names):
        try:
            feats = extractor or build_extractor(cfg.features, cfg.inception_weights, device)
        except FeatureWeightsMissing as exc:
            if not auto:
                raise
            names = [n for n in names if n not in DISTRIBUTION]
            notes.append(f"distribution metrics left out: {exc}")
    scorer = Scorer(
        names,
        feats,
        lpips,
        pixel_threshold=cfg.pixel_threshold,
        mifid_eps=cfg.mifid_eps,
        kid_subset_size=cfg.kid_subset_size,
        palette=Palette.read(cfg.palette) if cfg.palette else None,
    )
    return scorer, notes


# -- a checkpoint on a dataset ----------------------------------------------------------------
def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str | Path | None,
    cfg: EvalConfig,
    direction: str | None = None,
    train_data: str | Path | None = None,
    extractor: FeatureExtractor | None = None,
    progress: bool = True,
    domains: tuple[str | Path, str | Path] | None = None,
) -> Report:
    """Score ``checkpoint`` on split ``cfg.split`` of ``data``, or (a translation model) on two
    folders of unpaired images, ``domains`` = (domain A, domain B): the inputs are translated
    and compared with the other folder by distribution metrics. Raises ConfigError when neither
    or both are given."""
    if (data is None) == (domains is None):
        raise ConfigError("give --data DIR, or --domain-a DIR --domain-b DIR (not both)")
    ckpt = resolve_checkpoint(resolve_model(checkpoint, progress))
    card = read_card(ckpt)
    # a translation model's data settings come from its card (imported models have no run)
    data_cfg = card.data_config(str(ckpt)) if card.translate else card.run_config(str(ckpt)).data
    data_cfg.root = "" if data is None else str(data)
    data_cfg.domain_a = data_cfg.domain_b = None  # the training folders are not scored
    data_cfg.skip_bad = True
    split = cfg.split or ("val" if data is None else default_split(data))
    source: dict[str, Any] = (
        {"checkpoint": str(ckpt), "data": str(data), "split": split}
        if domains is None
        else {"checkpoint": str(ckpt), "domain_a": str(domains[0]), "domain_b": str(domains[1])}
    )
    if card.sample is not None:  # unconditional: samples against the images at --data
        if data is None:
            raise ConfigError(f"{ckpt} generates images: score it against --data DIR")
        size = cfg.size or card.sample.size
        data_cfg.crop_size, data_cfg.preprocess = size, "resize"
        reals = ImageDataset(data_cfg, False, split)
        n = min(cfg.limit or len(reals), len(reals))
        scorer, notes = make_scorer(cfg, False, True, extractor)
        net = load_generator(ckpt, cfg.device)
        device, gen = next(net.parameters()).device, torch.Generator().manual_seed(0)
        for start in tqdm(range(0, n, cfg.batch_size), disable=not progress, desc="evaluate"):
            idx = range(start, min(start + cfg.batch_size, n))
            real = torch.stack([reals[i]["image"] for i in idx])
            scorer.add_reals(_from_net(real))
            scorer.add_train(_from_net(real))  # MiFID: the data the model learned from
            z = torch.randn(len(idx), net.latent_dim, generator=gen).to(device)
            with torch.inference_mode():
                scorer.add_fakes(_from_net(net(z)))
        return Report(scorer.compute(), n, {**source, "size": size}, notes)

    translator = Translator.load(ckpt, cfg.device, direction)
    if cfg.tiling is not None:
        check_tiles(cfg.tiling.tile, cfg.tiling.overlap, translator.size_multiple)
        source["tiling"] = vars(cfg.tiling)
    assert card.translate is not None  # a card that does not sample translates
    data_cfg.direction = direction or card.translate.default  # type: ignore[assignment]
    size = cfg.size or card.translate.train_size
    source["size"] = size
    kind = data_kind(card.model) if card.model in MODELS else "paired"
    train_images = _train_targets(data_cfg, train_data, kind)
    pairs: PairedDataset | GrayPairs | None = None
    whole = False  # colorization on a folder of images without split folders: all of them
    if data is not None and kind == "images":  # colorization: each image's gray is its input
        whole = image_split(data_cfg.root, split) is None
        pairs = GrayPairs(ImageDataset(data_cfg, False, None if whole else split))
    elif data is not None and locate_pairs(data_cfg.root, split, data_cfg.layout) is not None:
        pairs = PairedDataset(data_cfg, split, train=False)
    scorer, notes = make_scorer(cfg, pairs is not None, train_images is not None, extractor)
    if whole:
        notes.append(f"{data} has no '{split}' folder: scored the images in it")
    trained = as_trained(data_cfg.preprocess, data_cfg.crop_size, translator.image_statistics)
    if cfg.tiling is None and trained is not None:
        notes.append(
            f"trained on {trained.tile} px crops at the data's scale: --tile {trained.tile} "
            f"--tile-stats {trained.stats} scores it as it was trained (each tile on its own "
            "statistics)"
        )
    if train_images is not None and "mifid" in scorer.metrics:
        for chunk in batched(train_images(), cfg.batch_size):
            scorer.add_train(_stack([to_uint8(a, size) for a in chunk]))
    gallery = Gallery()
    if pairs is not None:
        n = min(cfg.limit or len(pairs), len(pairs))
        score_translations(
            translator, pairs, scorer, size, n, cfg.batch_size, progress, gallery, cfg.tiling
        )
    else:
        found = (
            (domain_folder(domains[0], "a"), domain_folder(domains[1], "b"))
            if domains is not None
            else locate_unpaired(data_cfg.root, split)
        )
        if found is None:
            raise InputNotFound(f"{data}: no '{split}' split (paired or {split}A/B)")
        folders = found
        a, b = folders if data_cfg.direction == "AtoB" else folders[::-1]
        inputs, targets = list_images(a)[: cfg.limit], list_images(b)[: cfg.limit]
        n = len(inputs)
        for batch in tqdm(list(batched(inputs, cfg.batch_size)), disable=not progress):
            arrays = [_read(p, translator.input_channels) for p in batch]
            translated = translate_arrays(translator, arrays, cfg.batch_size, cfg.tiling)
            outs = [to_uint8(o, size) for o in translated]
            scorer.add_fakes(_stack(outs))
            gallery.add(input=[to_uint8(a, size) for a in arrays], output=outs)
        for batch in batched(targets, cfg.batch_size):
            scorer.add_reals(_stack([to_uint8(_read(p, 3), size) for p in batch]))
        unpaired = "the domain folders are unpaired" if data is None else f"{split} has no pairs"
        notes.append(f"{unpaired}: distribution metrics only")
    return Report(scorer.compute(), n, source, notes, gallery)


def _words(value: Any) -> str:
    """A source value as Markdown text: a dict (tiling) as ``key=value`` pairs."""
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def default_split(data: str | Path) -> str:
    """The split ``i2i evaluate`` scores when none is named: val, or test where the data has no
    val split (the CycleGAN archives ship trainA/B and testA/B only)."""
    if Path(data).is_dir():  # a .npz or IDX file holds one split
        for split in ("val", "test"):
            if locate(data, split) is not None or locate_unpaired(data, split) is not None:
                return split
    return "val"


def score_translations(
    translator: Any,
    dataset: PairedDataset | GrayPairs,
    scorer: Scorer,
    size: int,
    n: int,
    batch_size: int = 8,
    progress: bool = False,
    gallery: Gallery | None = None,
    tiling: Tiling | None = None,
) -> None:
    """Translate the first ``n`` pairs' inputs (whole, or as ``tiling`` says) and add (output,
    stored target) to ``scorer`` (and the first few, with their inputs, to ``gallery``)."""
    for start in tqdm(range(0, n, batch_size), disable=not progress, desc="evaluate"):
        idx = range(start, min(start + batch_size, n))
        inputs = torch.stack([dataset[i]["A"] for i in idx])
        if tiling is None:
            with torch.inference_mode():
                batch = (translator.translate_tensor(inputs).float().cpu() + 1) / 2
            outputs = [o.permute(1, 2, 0).numpy() for o in batch]
        else:
            arrays = [((x + 1) / 2).permute(1, 2, 0).numpy() for x in inputs]  # HxWxC, [0, 1]
            outputs = translate_arrays(translator, arrays, batch_size, tiling)
        fakes = [to_uint8(o, size) for o in outputs]
        reals = [to_uint8(dataset.raw_target(i), size) for i in idx]
        scorer.add_pairs(_stack(fakes), _stack(reals))
        if gallery is not None:
            shown = [to_uint8(((x + 1) / 2).permute(1, 2, 0).numpy(), size) for x in inputs]
            gallery.add(input=shown, output=fakes, target=reals)


def translate_arrays(
    translator: Translator, arrays: list[np.ndarray], batch_size: int, tiling: Tiling | None
) -> list[np.ndarray]:
    """Float HxWxC images in [0, 1] -> their translations (float HxWxC in [0, 1]): whole,
    batched by size, or each in tiles as ``tiling`` says."""
    if tiling is None:
        return translator.translate_arrays(arrays, batch_size)
    return [
        translator.translate_tiled(
            float_to_uint16(a), tiling.tile, tiling.overlap, tiling.stats
        ).astype(np.float32)
        / 255
        for a in arrays
    ]


def _train_targets(
    data_cfg: DataConfig, train_data: str | Path | None, kind: str = "paired"
) -> Callable[[], Iterator[np.ndarray]] | None:
    """The target domain's training images (MiFID's memorization reference), as a function
    that reads them one by one: ``train_data``, else the training split of the data (of
    ``kind``: paired, unpaired or images)."""
    if train_data is not None:
        paths = list_images(train_data)
        return lambda: (_read(p, 3) for p in paths)
    if not data_cfg.root:  # scoring --domain-a/--domain-b: only --train-data gives them
        return None
    split = data_cfg.train_split
    if kind == "images":
        images = ImageDataset(data_cfg, False, split)
        return lambda: (images.load(i) for i in range(len(images)))
    if locate_pairs(data_cfg.root, split, data_cfg.layout) is not None:
        pairs = PairedDataset(data_cfg, split, train=False)
        return lambda: (pairs.raw_target(i) for i in range(len(pairs)))
    try:
        folders = locate_unpaired(data_cfg.root, split)
    except DataError:
        return None
    target = folders[1] if data_cfg.direction == "AtoB" else folders[0]  # type: ignore[index]
    paths = list_images(target)
    return lambda: (_read(p, 3) for p in paths)


# -- two folders --------------------------------------------------------------------------------
def evaluate_folders(
    real: str | Path,
    fake: str | Path,
    cfg: EvalConfig,
    train_data: str | Path | None = None,
    extractor: FeatureExtractor | None = None,
    progress: bool = True,
) -> Report:
    """Outputs in ``fake`` against ``real``: paired metrics when every output has a real image
    of the same file stem, distribution metrics always."""
    all_reals, fakes = list_images(real), list_images(fake)[: cfg.limit]
    reals, by_stem = all_reals[: cfg.limit], {p.stem: p for p in all_reals}
    unmatched = [p for p in fakes if p.stem not in by_stem]
    paired_ok = bool(fakes) and not unmatched
    asked_paired = [m for m in cfg.metrics or () if m in PAIRED]
    if unmatched and asked_paired:
        raise ConfigError(
            f"{', '.join(asked_paired)} need ground-truth pairs: {len(fakes) - len(unmatched)} "
            f"of {len(fakes)} outputs in {fake} have a real image of the same file name in "
            f"{real} (none for {unmatched[0]}); rename them to match, or ask only for "
            "distribution metrics (--metrics fid,kid,...)"
        )
    trains = list_images(train_data) if train_data is not None else None
    scorer, notes = make_scorer(cfg, paired_ok, trains is not None, extractor)
    size = cfg.size
    gallery, resized = Gallery(), Counter[tuple[str, str]]()
    for batch in tqdm(list(batched(fakes, cfg.batch_size)), disable=not progress):
        outs = [to_uint8(_read(p, 3), size) for p in batch]
        if paired_ok:
            targets = [to_uint8(_read(by_stem[p.stem], 3), size) for p in batch]
            for o, t in zip(outs, targets, strict=True):
                if o.shape != t.shape:
                    resized[(_size(o), _size(t))] += 1
            outs = [_resize_like(o, t) for o, t in zip(outs, targets, strict=True)]
            scorer.add_pairs(_stack(outs), _stack(targets))
            gallery.add(output=outs, target=targets)
        else:
            scorer.add_fakes(_stack_any(outs))
            gallery.add(output=outs)
    for (out_size, target_size), count in resized.items():
        notes.append(
            f"{count} output(s) ({out_size}) differ in size from their targets ({target_size}); "
            "they were resized to the targets' size (bicubic) before scoring: pass --size to "
            "compare both at one size, or make the outputs the targets' size"
        )
    if not paired_ok:
        for batch in batched(reals, cfg.batch_size):
            scorer.add_reals(_stack_any([to_uint8(_read(p, 3), size) for p in batch]))
        notes.append(
            f"paired metrics need every output's target: {len(fakes) - len(unmatched)} of "
            f"{len(fakes)} outputs have one of the same file name; distribution metrics only"
        )
    for batch in batched(trains or [], cfg.batch_size):
        scorer.add_train(_stack_any([to_uint8(_read(p, 3), size) for p in batch]))
    source = {"real": str(real), "fake": str(fake)}
    return Report(scorer.compute(), len(fakes), source, notes, gallery)


# -- helpers ------------------------------------------------------------------------------------
def _stack(arrays: Sequence[np.ndarray]) -> torch.Tensor:
    """HxWxC uint8 arrays of one size -> NxCxHxW uint8 tensor."""
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _stack_any(arrays: Sequence[np.ndarray]) -> torch.Tensor:
    """Like _stack, for images of several sizes (for features only): resized to the first's."""
    h, w = arrays[0].shape[:2]
    return _stack([_resize_like(a, arrays[0]) if a.shape[:2] != (h, w) else a for a in arrays])


def _size(image: np.ndarray) -> str:
    return f"{image.shape[1]}x{image.shape[0]}"


def same_shape(images: list[np.ndarray]) -> np.ndarray:
    """HxWxC uint8 images as one NxHxWxC array at the first one's size."""
    return np.stack([_resize_like(im, images[0]) for im in images])


def _to_net(images: np.ndarray) -> torch.Tensor:
    """NxHxWxC uint8 -> NxCxHxW in [-1, 1] (what ``sample_grid`` draws)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def _resize_like(image: np.ndarray, like: np.ndarray) -> np.ndarray:
    if image.shape == like.shape:
        return image
    h, w = like.shape[:2]
    resized = Image.fromarray(image).resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(resized)


def _from_net(x: torch.Tensor) -> torch.Tensor:
    """Network images in [-1, 1] -> uint8."""
    return ((x.float().cpu() + 1) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8)


def evaluate_translator(
    translator: Any,
    dataset: PairedDataset | GrayPairs,
    metrics: Sequence[str] = ("l1", "rmse", "pixel_acc"),
    size: int | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    extractor: FeatureExtractor | None = None,
) -> dict[str, float]:
    """Score a translator on a paired dataset: the Python API behind training-time evaluation.
    ``size`` defaults to the dataset's crop size."""
    cfg = EvalConfig(metrics=list(metrics), batch_size=batch_size, device="cpu")
    scorer, _ = make_scorer(cfg, True, False, extractor)
    n = min(limit or len(dataset), len(dataset))
    score_translations(translator, dataset, scorer, size or dataset.cfg.crop_size, n, batch_size)
    return scorer.compute()
