"""Where a dataset's images are, found from its files, and the array formats read as arrays.

The paired layouts and splits (:func:`locate`, documented in :mod:`i2i.data.paired`), the
unpaired folders (:func:`locate_unpaired`, :func:`unpaired_folders`), ``.npz`` archives
(:class:`NpzReader`) and MNIST's IDX files (:func:`read_idx`). Nothing here imports torch (a
5-second import on a small machine), so that ``i2i data inspect`` and ``i2i data download`` use
the same rules as training and still start at once.
"""

from __future__ import annotations

import gzip
import struct
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from i2i.config import DataConfig
from i2i.data.images import IMAGE_EXTENSIONS, uint_array_to_float
from i2i.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Location:
    """A resolved dataset: its layout and the path(s) it reads."""

    layout: str
    paths: tuple[Path, ...]


def locate(root: str | Path, split: str | None, layout: str = "auto") -> Location | None:
    """Find ``split`` of the dataset at ``root``; None when that split does not exist.

    A root without split folders is its own training split (``split`` is then ignored for
    training, and there is no validation split).
    """
    if "://" in str(root):  # Path() would fold the URL into a path that names nothing
        raise DataError(
            f"{root}: datasets are read from local folders or .npz files; copy it here first "
            "(for object storage, with its own tool, e.g. `aws s3 sync`)"
        )
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: dataset not found (expected a folder or a .npz file)")
    if root.is_file():
        if root.suffix.lower() != ".npz" and layout not in ("npz",):
            raise DataError(f"{root}: a dataset is a folder or a .npz file")
        return Location("npz", (root,)) if split in (None, "train") else None
    candidates: list[Path | tuple[Path, Path]] = []
    if split:
        candidates += [
            root / split,
            (root / "A" / split, root / "B" / split),
            (root / f"{split}A", root / f"{split}B"),  # what `i2i data unpair` keeps paired
            root / f"{split}.npz",
        ]
    if split in (None, "train"):
        candidates.append(root)
    for cand in candidates:
        found = _layout_of(cand, layout)
        if found:
            return found
    if split in (None, "train"):
        raise DataError(
            f"{root}: no paired data found; expected side-by-side images, A/ and B/ folders "
            f"or a .npz file, directly or in a '{split or 'train'}' split folder"
        )
    return None


def _layout_of(cand: Path | tuple[Path, Path], layout: str) -> Location | None:
    if isinstance(cand, tuple):
        if cand[0].is_dir() and cand[1].is_dir() and layout in ("auto", "ab_folders"):
            return Location("ab_folders", cand)
        return None
    if cand.is_file() and cand.suffix.lower() == ".npz" and layout in ("auto", "npz"):
        return Location("npz", (cand,))
    if not cand.is_dir():
        return None
    if (cand / "A").is_dir() and (cand / "B").is_dir() and layout in ("auto", "ab_folders"):
        return Location("ab_folders", (cand / "A", cand / "B"))
    if layout in ("auto", "side_by_side") and (layout == "side_by_side" or has_images(cand)):
        return Location("side_by_side", (cand,))
    return None


def locate_pairs(root: str | Path, split: str, layout: str = "auto") -> Location | None:
    """:func:`locate`, but None for two folders whose file names do not pair (the CycleGAN
    layout's ``trainA/`` + ``trainB/``): where paired metrics and paired targets come from."""
    loc = locate(root, split, layout)
    if loc is not None and loc.layout == "ab_folders" and not paired_names(*loc.paths):
        return None
    return loc


def locate_unpaired(root: str | Path, split: str) -> tuple[Path, Path] | None:
    """The A and B folders of ``split``; None when the data has no such split."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    candidates = [
        (root / f"{split}A", root / f"{split}B"),
        (root / split / "A", root / split / "B"),
    ]
    if split == "train":
        candidates.append((root / "A", root / "B"))
    for a, b in candidates:
        if a.is_dir() and b.is_dir():
            return a, b
    if split == "train":
        raise DataError(
            f"{root}: no unpaired data found; expected folders trainA/ and trainB/ "
            "(or train/A + train/B, or A/ + B/)"
        )
    return None


def unpaired_folders(cfg: DataConfig, split: str) -> tuple[Path, Path] | None:
    """The A and B folders of unpaired ``split``: ``data.domain_a`` and ``data.domain_b`` when
    they are set (they are the training split: other splits then do not exist), else the
    folders :func:`locate_unpaired` finds under ``data.root``."""
    if cfg.domain_a is None or cfg.domain_b is None:
        return locate_unpaired(cfg.root, split)
    if split != cfg.train_split:
        return None
    return domain_folder(cfg.domain_a, "a"), domain_folder(cfg.domain_b, "b")


def domain_folder(folder: str | Path, side: str) -> Path:
    """``folder`` (given as ``--domain-a`` or ``--domain-b``) when it is a folder."""
    path = Path(folder)
    if not path.is_dir():
        raise DataError(
            f"{path}: folder not found (given as --domain-{side}, data.domain_{side}); "
            "name a folder of images"
        )
    return path


def split_location(root: str | Path, split: str) -> Location | None:
    """Paired ``split`` of the data at ``root`` only when it is a real split folder (or
    archive), not the root itself answering for 'train'."""
    loc = locate(root, split)
    if loc is None or split != "train":
        return loc
    # a root without split folders answers 'train' with itself; that is not a real split
    try:
        whole = locate(root, None)
    except DataError:  # the root holds only split folders
        return loc
    return None if loc == whole else loc


class NpzReader:
    """Two image arrays in one .npz archive, the i-th source paired with the i-th target."""

    def __init__(self, path: Path, keys: Sequence[str]) -> None:
        self.path = path
        try:
            with np.load(path, allow_pickle=False) as archive:
                missing = [k for k in keys if k not in archive.files]
                if missing:
                    raise DataError(
                        f"{path}: no array named {missing} (arrays: {archive.files}); "
                        "name the source and target arrays with --npz-keys SRC,TGT"
                    )
                self.a, self.b = archive[keys[0]], archive[keys[1]]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: not a readable .npz archive ({exc})") from exc
        for key, arr in zip(keys, (self.a, self.b), strict=True):
            if arr.ndim not in (3, 4) or arr.dtype not in (np.uint8, np.uint16):
                raise DataError(
                    f"{path}: array {key!r} has shape {arr.shape} and dtype {arr.dtype}; "
                    "expected uint8 or uint16 images shaped N x H x W (x C)"
                )
        if len(self.a) != len(self.b) or self.a.shape[1:3] != self.b.shape[1:3]:
            raise DataError(
                f"{path}: arrays {keys[0]!r} {self.a.shape} and {keys[1]!r} {self.b.shape} "
                "must hold the same number of images of the same height and width"
            )
        if len(self.a) == 0:
            raise DataError(f"{path}: the arrays hold no images")

    def __len__(self) -> int:
        return len(self.a)

    def name(self, i: int) -> str:
        return f"{self.path.stem}_{i:05d}.png"

    def size(self, i: int) -> tuple[int, int]:
        return self.a.shape[2], self.a.shape[1]

    def load(self, i: int, channels_a: int, channels_b: int) -> tuple[np.ndarray, np.ndarray]:
        src = f"{self.path}[{i}]"
        return (
            uint_array_to_float(self.a[i], src, channels_a),
            uint_array_to_float(self.b[i], src, channels_b),
        )


def read_idx(path: str | Path) -> np.ndarray:
    """The uint8 array stored in an IDX file (gzip or plain)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable IDX file ({exc})") from exc
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dtype, ndim = raw[2], raw[3]
    if dtype != 0x08:
        raise DataError(f"{path}: IDX type 0x{dtype:02x} is not unsigned bytes (0x08)")
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header < expected:
        raise DataError(
            f"{path}: truncated: the header promises {dims} = {expected} bytes of data, "
            f"the file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, np.uint8, count=expected, offset=header).reshape(dims)


def is_idx(path: Path) -> bool:
    return path.is_file() and "idx" in path.name and "ubyte" in path.name


# -- what a dataset holds, for the tools that look at data (inspect, download) ---------------
DataKind = Literal["paired", "unpaired", "images"]
KINDS = ("auto", "paired", "unpaired", "images")


@dataclass(frozen=True)
class SplitFiles:
    """One split as the readers see it: its layout and the folder(s) or file it reads.

    ``layout``: ``side_by_side`` (one folder), ``ab_folders`` (A and B folders paired by file
    name), ``unpaired`` (A and B folders), ``npz`` or ``idx`` (one file), ``images`` (one
    folder of single images)."""

    split: str
    layout: str
    paths: tuple[Path, ...]


@dataclass(frozen=True)
class FoundDataset:
    """What :func:`find_dataset` found: the kind of data and its splits, in order."""

    root: Path
    kind: DataKind
    splits: tuple[SplitFiles, ...]


def find_dataset(
    root: str | Path | None,
    kind: str = "auto",
    domains: tuple[str | Path, str | Path] | None = None,
) -> FoundDataset:
    """The splits of the data at ``root`` (or the two ``domains`` folders, one unpaired
    training split), by the rules training uses.

    ``kind`` ``auto`` reads split folders (``train/``, ``val/``, ``test/``, ``trainA/`` ...)
    as i2i's trainers do: one folder per split holds side-by-side pairs, two folders hold pairs
    when most file names match and unpaired collections otherwise; a ``.npz`` file holds pairs,
    an IDX file and a folder of images without splits hold single images. ``paired``,
    ``unpaired`` or ``images`` overrides the reading. Raises DataError when nothing is found."""
    if kind not in KINDS:
        raise ConfigError(f"--kind {kind!r}: use {', '.join(KINDS)}")
    if domains is not None:
        a, b = domain_folder(domains[0], "a"), domain_folder(domains[1], "b")
        layout = "ab_folders" if kind == "paired" else "unpaired"
        found = (SplitFiles("train", layout, (a, b)),)
        return FoundDataset(a.parent, "paired" if kind == "paired" else "unpaired", found)
    if root is None:
        raise ConfigError("name the data: DATA, or --domain-a DIR --domain-b DIR")
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: dataset not found (a folder, a .npz file or an IDX file)")
    if is_idx(root):
        return FoundDataset(root, "images", (SplitFiles("train", "idx", (root,)),))
    splits = [s for split in SPLITS if (s := _split_files(root, split, kind))]
    if not splits:
        whole = _whole_files(root, kind)
        splits = [whole]
    layouts = {s.layout for s in splits}
    data_kind: DataKind = "paired"
    if "unpaired" in layouts:
        data_kind = "unpaired"
    elif layouts <= {"images", "idx"}:
        data_kind = "images"
    return FoundDataset(root, data_kind, tuple(splits))


def _split_files(root: Path, split: str, kind: str) -> SplitFiles | None:
    if root.is_file():
        return None
    if kind == "images":
        folder = root / split
        return SplitFiles(split, "images", (folder,)) if has_images(folder) else None
    loc = split_location(root, split)
    return None if loc is None else _split_of(split, loc, kind)


def _whole_files(root: Path, kind: str) -> SplitFiles:
    if kind != "paired" and has_images(root):  # a folder of images: one collection
        return SplitFiles("train", "images", (root,))
    loc = locate(root, None)  # raises DataError when there is no paired data either
    assert loc is not None
    return _split_of("train", loc, kind)


def _split_of(split: str, loc: Location, kind: str) -> SplitFiles:
    if loc.layout != "ab_folders" or kind == "paired":
        return SplitFiles(split, loc.layout, loc.paths)
    unpaired = kind == "unpaired" or not paired_names(*loc.paths)
    return SplitFiles(split, "unpaired" if unpaired else "ab_folders", loc.paths)


def has_images(folder: Path) -> bool:
    """Whether ``folder`` is a folder with image files directly inside."""
    return folder.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir())


def paired_names(a: Path, b: Path) -> bool:
    """Whether folders ``a`` and ``b`` pair by file name: more than half of the smaller one's
    images have a partner of the same name (without extension) in the other."""
    stems_a, stems_b = (
        {p.stem for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS}
        for folder in (a, b)
    )
    smaller = min(len(stems_a), len(stems_b))
    return smaller > 0 and len(stems_a & stems_b) * 2 > smaller
