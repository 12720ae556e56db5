"""``i2i data prepare`` and ``i2i data unpair``: convert a paired dataset between layouts, split
and resize it, or unpair it for CycleGAN/CUT.

Reads any layout :mod:`i2i.data.paired` reads (side-by-side folder, A/ + B/ folders, .npz) and
writes side-by-side PNGs (``OUT/<split>/<name>.png``) or one archive per split
(``OUT/<split>.npz`` with ``arr_0`` sources and ``arr_1`` targets, uint8 NHWC). A source that
already has splits keeps them; a source without is shuffled (by seed) and split by fractions.
Output is 8-bit RGB.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from tqdm import tqdm

from i2i.config import DataConfig
from i2i.data.images import list_images
from i2i.data.layouts import SPLITS, domain_folder, locate, split_location
from i2i.data.paired import PairReader, open_reader
from i2i.errors import ConfigError, DataError

OutFormat = Literal["side_by_side", "npz"]


def parse_fractions(text: str) -> dict[str, float]:
    """'0.8,0.1,0.1' -> {'train': 0.8, 'val': 0.1, 'test': 0.1}."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--split {text!r}: expected fractions like 0.8,0.1,0.1") from None
    if not 1 <= len(values) <= 3 or any(v < 0 for v in values) or abs(sum(values) - 1) > 1e-6:
        raise ConfigError(
            f"--split {text!r}: give up to three fractions (train,val,test) summing to 1"
        )
    return dict(zip(SPLITS, values, strict=False))


def prepare(
    source: str | Path,
    out: str | Path,
    to: OutFormat = "side_by_side",
    fractions: dict[str, float] | None = None,
    size: int | None = None,
    seed: int = 0,
    skip_bad: bool = False,
    npz_keys: tuple[str, str] = ("arr_0", "arr_1"),
    progress: bool = True,
) -> dict[str, int]:
    """Convert ``source`` into ``out``; returns the number of pairs written per split."""
    cfg = DataConfig(root=str(source), skip_bad=skip_bad, npz_keys=list(npz_keys))
    found = {s: loc for s in SPLITS if (loc := split_location(source, s))}
    plan: dict[str, tuple[PairReader, list[int]]] = {}
    if found and fractions is None:
        for split, loc in found.items():
            reader = open_reader(loc, cfg)
            plan[split] = (reader, list(range(len(reader))))
    else:
        loc = locate(source, None)
        assert loc is not None
        reader = open_reader(loc, cfg)
        order = np.random.default_rng(seed).permutation(len(reader)).tolist()
        fractions = fractions or {"train": 1.0}
        start = 0
        for i, (split, frac) in enumerate(fractions.items()):
            end = len(order) if i == len(fractions) - 1 else start + round(frac * len(order))
            if end > start:
                plan[split] = (reader, sorted(order[start:end]))
            start = end
    counts = {}
    for split, (reader, indices) in plan.items():
        counts[split] = _write_split(reader, indices, Path(out), split, to, size, progress)
    return counts


def _write_split(
    reader: PairReader,
    indices: list[int],
    out: Path,
    split: str,
    to: OutFormat,
    size: int | None,
    progress: bool,
) -> int:
    pairs_a, pairs_b = [], []
    folder = out / split
    if to == "side_by_side":
        folder.mkdir(parents=True, exist_ok=True)
    for i in tqdm(indices, desc=f"prepare {split}", disable=not progress, unit="pair"):
        a, b = (_to_uint8(x, size) for x in reader.load(i, 3, 3))
        if to == "side_by_side":
            name = Path(reader.name(i)).stem + ".png"
            Image.fromarray(np.concatenate([a, b], axis=1)).save(folder / name)
        else:
            pairs_a.append(a)
            pairs_b.append(b)
    if to == "npz":
        shapes = {x.shape for x in pairs_a}
        if len(shapes) > 1:
            raise DataError(
                f"images differ in size ({sorted(shapes)[:3]}...); an .npz holds one size: "
                "pass --size N to resize them"
            )
        out.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out / f"{split}.npz", arr_0=np.stack(pairs_a), arr_1=np.stack(pairs_b))
    return len(indices)


def _to_uint8(x: np.ndarray, size: int | None) -> np.ndarray:
    img = Image.fromarray((np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8))
    if size is not None and img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(img)


def unpair(
    source: str | Path | None,
    out: str | Path,
    seed: int = 0,
    progress: bool = True,
    domains: tuple[str | Path, str | Path] | None = None,
) -> dict[str, int]:
    """Turn a paired dataset into the CycleGAN layout; returns the pairs written per split.

    The training split's halves go to ``trainA/`` and ``trainB/``, each shuffled on its own and
    renamed (``a_00000``, ``b_00000``) so no pairing survives. Every other split goes to
    ``<split>A/`` and ``<split>B/`` with the same file names on both sides: the ground-truth
    pairs stay available for paired metrics (read them with ``--split <split>``).

    With ``domains`` (two folders of any names, A then B; ``source`` None) their images are
    copied as they are into ``trainA/`` and ``trainB/``; the counts are then per folder.
    """
    if domains is not None:
        return _gather(domains, Path(out), progress)
    if source is None:
        raise ConfigError("name the paired data to unpair, or give --domain-a and --domain-b")
    cfg = DataConfig(root=str(source))
    found = {s: loc for s in SPLITS if (loc := split_location(source, s))}
    if not found:
        found = {"train": locate(source, None)}  # type: ignore[dict-item]
    out = Path(out)
    rng = np.random.default_rng(seed)
    counts = {}
    for split, loc in found.items():
        reader = open_reader(loc, cfg)
        n = len(reader)
        a_dir, b_dir = out / f"{split}A", out / f"{split}B"
        a_dir.mkdir(parents=True, exist_ok=True)
        b_dir.mkdir(parents=True, exist_ok=True)
        if split == "train":
            a_order, b_order = rng.permutation(n), rng.permutation(n)
            slot = (
                {int(i): k for k, i in enumerate(a_order)},
                {int(i): k for k, i in enumerate(b_order)},
            )
        for i in tqdm(range(n), desc=f"unpair {split}", disable=not progress, unit="pair"):
            a, b = (_to_uint8(x, None) for x in reader.load(i, 3, 3))
            name = Path(reader.name(i))
            suffix = name.suffix if name.suffix.lower() in (".jpg", ".jpeg", ".png") else ".png"
            if split == "train":
                a_name, b_name = f"a_{slot[0][i]:05d}{suffix}", f"b_{slot[1][i]:05d}{suffix}"
            else:
                a_name = b_name = name.stem + suffix
            _save(Image.fromarray(a), a_dir / a_name)
            _save(Image.fromarray(b), b_dir / b_name)
        counts[split] = n
    return counts


def _save(image: Image.Image, path: Path) -> None:
    if path.suffix.lower() in (".jpg", ".jpeg"):
        image.save(path, quality=95)
    else:
        image.save(path)


def _gather(domains: tuple[str | Path, str | Path], out: Path, progress: bool) -> dict[str, int]:
    """Copy the images of two domain folders, byte for byte, into ``out/trainA``/``trainB``."""
    counts = {}
    for side, folder in zip("AB", domains, strict=True):
        files = list_images(domain_folder(folder, side.lower()))
        target = out / f"train{side}"
        target.mkdir(parents=True, exist_ok=True)
        for path in tqdm(files, desc=f"copy {side}", disable=not progress, unit="img"):
            shutil.copyfile(path, target / path.name)
        counts[target.name] = len(files)
    return counts
