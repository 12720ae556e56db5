"""``i2i data download NAME``: the standard pix2pix and CycleGAN datasets, by their usual names.

The archives are the ones the reference repository (junyanz/pytorch-CycleGAN-and-pix2pix)
publishes: pix2pix's as ``pix2pix/datasets/NAME.tar.gz`` (side-by-side pairs in ``train/``,
``val/`` and sometimes ``test/``) and CycleGAN's as ``cyclegan/datasets/NAME.zip`` (``trainA/``
``trainB/`` ``testA/`` ``testB/``), both under ``DATASETS_URL`` (``$I2I_DATASETS_URL`` overrides
it, as the tests do with a server on 127.0.0.1). :data:`CATALOGUE` lists them with their kind,
approximate size and licence note.

What happens: the archive is downloaded into the cache (``$I2I_CACHE/datasets``) by
:func:`i2i.download.download` (progress bar, resumed after an interruption, size checked), then
extracted into a temporary folder beside the target, which is renamed into place only when
every member was extracted: a corrupt or truncated archive (a bad gzip stream, a zip member whose
CRC fails) is an error that deletes the archive and leaves no dataset behind. Members that would
land outside the target (absolute paths, ``..``, links out of it) are refused: tar members
through the standard library's ``data`` extraction filter, zip members by checking each name.
macOS metadata (``__MACOSX/``, ``._*`` files) is left out, since it would read as broken images.
The archive's one top-level folder becomes the dataset folder, already in the layout i2i's
readers expect, and the command prints the ``i2i train`` line that uses it.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from tqdm import tqdm

from i2i.data.layouts import FoundDataset, find_dataset
from i2i.download import TIMEOUT, cache_root, download
from i2i.errors import ConfigError, DataError

DATASETS_URL = "http://efrosgans.eecs.berkeley.edu"  # the reference repository's archives
URL_VARIABLE = "I2I_DATASETS_URL"


@dataclass(frozen=True)
class DatasetInfo:
    """One published dataset: ``name`` for ``i2i data download``; ``archive`` is its file name
    in ``source``'s folder (``pix2pix``: ``.tar.gz`` of side-by-side pairs, ``cyclegan``:
    ``.zip`` of A/B folders); ``size_mb`` is the archive's approximate size in MB."""

    name: str
    kind: Literal["paired", "unpaired"]
    source: Literal["pix2pix", "cyclegan"]
    size_mb: int
    contents: str
    licence: str
    archive: str = ""  # the published file's stem, when it differs from ``name``
    instructions: str = ""  # set when the data may not be redistributed: how to get it

    @property
    def file_name(self) -> str:
        return f"{self.archive or self.name}{'.tar.gz' if self.source == 'pix2pix' else '.zip'}"

    def url(self, base: str | None = None) -> str:
        """Where the archive is published (``base``: default $I2I_DATASETS_URL, else
        :data:`DATASETS_URL`)."""
        base = (base or os.environ.get(URL_VARIABLE) or DATASETS_URL).rstrip("/")
        return f"{base}/{self.source}/datasets/{self.file_name}"

    @property
    def size(self) -> str:
        return f"{self.size_mb / 1000:.1f} GB" if self.size_mb >= 1000 else f"{self.size_mb} MB"


_IMAGENET = "ImageNet images: non-commercial research and education only"
_ART = "paintings from WikiArt, photos from Flickr: research use"
CATALOGUE: tuple[DatasetInfo, ...] = (
    DatasetInfo("facades", "paired", "pix2pix", 29,
                "400 label map|photo pairs of building facades (CMP Facade), 256 px",
                "CMP Facade Database (Tylecek & Sara 2013): research use, cite the paper"),
    DatasetInfo("maps", "paired", "pix2pix", 239,
                "2,194 satellite photo|map pairs (1,096 train, 1,098 val), 600 px halves",
                "Google Maps imagery collected for pix2pix: research use only"),
    DatasetInfo("edges2shoes", "paired", "pix2pix", 2000,
                "50,025 edge map|photo pairs of shoes (UT Zappos50K), 256 px",
                "UT Zappos50K (Yu & Grauman 2014): research use, cite the paper"),
    DatasetInfo("edges2handbags", "paired", "pix2pix", 8000,
                "about 138,000 edge map|photo pairs of handbags (iGAN, Amazon), 256 px",
                "Amazon product photos collected for iGAN (Zhu et al. 2016): research use"),
    DatasetInfo("night2day", "paired", "pix2pix", 1900,
                "about 20,000 night|day pairs of outdoor webcam scenes, 256 px",
                "Transient Attributes (Laffont et al. 2014): research use, cite the paper"),
    DatasetInfo("cityscapes", "paired", "pix2pix", 99,
                "2,975 street photo|label map pairs", "not redistributable (Cityscapes terms)",
                instructions="its licence forbids redistribution: register at "
                "https://www.cityscapes-dataset.com, download gtFine_trainvaltest.zip and "
                "leftImg8bit_trainvaltest.zip, and make side-by-side pairs with "
                "datasets/prepare_cityscapes_dataset.py of the pytorch-CycleGAN-and-pix2pix "
                "repository"),
    DatasetInfo("horse2zebra", "unpaired", "cyclegan", 111,
                "horses (A) and zebras (B) from ImageNet, 256 px", _IMAGENET),
    DatasetInfo("apple2orange", "unpaired", "cyclegan", 75,
                "apples (A) and oranges (B) from ImageNet, 256 px", _IMAGENET),
    DatasetInfo("summer2winter_yosemite", "unpaired", "cyclegan", 126,
                "Yosemite in summer (A) and winter (B), Flickr photos, 256 px",
                "Flickr photos, each under its owner's licence: research use"),
    DatasetInfo("monet2photo", "unpaired", "cyclegan", 291,
                "Monet paintings (A) and landscape photos (B), 256 px", _ART),
    DatasetInfo("cezanne2photo", "unpaired", "cyclegan", 267,
                "Cezanne paintings (A) and landscape photos (B), 256 px", _ART),
    DatasetInfo("ukiyoe2photo", "unpaired", "cyclegan", 279,
                "ukiyo-e prints (A) and landscape photos (B), 256 px", _ART),
    DatasetInfo("vangogh2photo", "unpaired", "cyclegan", 292,
                "Van Gogh paintings (A) and landscape photos (B), 256 px", _ART),
    DatasetInfo("iphone2dslr_flower", "unpaired", "cyclegan", 324,
                "flower photos from iPhones (A) and DSLRs with shallow focus (B), 256 px",
                "Flickr photos, each under its owner's licence: research use"),
    DatasetInfo("ae_photos", "unpaired", "cyclegan", 10,
                "a few test photos to try trained style models on (no training split)",
                "photos released with CycleGAN: research use"),
    DatasetInfo("maps_unpaired", "unpaired", "cyclegan", 1400,
                "CycleGAN's copy of maps: satellite photos (A) and maps (B) as A/B folders",
                "Google Maps imagery collected for pix2pix: research use only",
                archive="maps"),
    DatasetInfo("facades_unpaired", "unpaired", "cyclegan", 34,
                "CycleGAN's copy of facades: photos (A) and label maps (B) as A/B folders",
                "CMP Facade Database (Tylecek & Sara 2013): research use, cite the paper",
                archive="facades"),
)  # fmt: skip
DATASETS = {info.name: info for info in CATALOGUE}


def dataset_info(name: str) -> DatasetInfo:
    """The catalogue entry ``name``; ConfigError listing the names when there is none."""
    if name not in DATASETS:
        raise ConfigError(
            f"unknown dataset {name!r}; choose from {', '.join(DATASETS)} "
            "(i2i data download --list describes them)"
        )
    return DATASETS[name]


def catalogue_table() -> str:
    """The catalogue as a plain-text table: name, kind, size, contents, licence."""
    rows = [("name", "kind", "size", "what it holds", "licence")]
    for d in CATALOGUE:
        size = "-" if d.instructions else f"{'~' if d.size_mb >= 1000 else ''}{d.size}"
        rows.append((d.name, d.kind, size, d.contents, d.licence))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
        for r in rows
    )


@dataclass(frozen=True)
class DownloadedDataset:
    """A dataset on disk: its catalogue entry, its folder, what i2i's readers find there, and
    whether this call fetched it (False: it was already there)."""

    info: DatasetInfo
    path: Path
    found: FoundDataset | None  # None: no training split (ae_photos)
    fetched: bool

    @property
    def train_command(self) -> str | None:
        """The ``i2i train`` line for this data, or None when it has no training split."""
        if self.found is None:
            return None
        model = "" if self.found.kind == "paired" else "--model cyclegan "
        return f"i2i train {model}--data {self.path} --out runs/{self.info.name}"


def download_dataset(
    name: str,
    out: str | Path | None = None,
    *,
    keep_archive: bool = False,
    progress: bool = True,
    timeout: float = TIMEOUT,
) -> DownloadedDataset:
    """Download and extract dataset ``name`` (see :data:`CATALOGUE`) into ``out`` (default
    ``data/NAME``), as the module docstring describes; a dataset already at ``out`` is kept.
    The archive is deleted once extracted unless ``keep_archive``. Raises ConfigError (unknown
    name), DownloadError (offline, refused, interrupted: a re-run resumes), DataError (corrupt
    archive, a member outside the target, ``out`` taken by something else)."""
    info = dataset_info(name)
    if info.instructions:
        raise DataError(f"{name}: {info.instructions}")
    dest = Path(out) if out is not None else Path("data") / info.name
    if dest.exists() and any(dest.iterdir()):
        return DownloadedDataset(info, dest, _found(dest), fetched=False)
    archive = cache_root() / "datasets" / info.source / info.file_name
    download(info.url(), archive, progress=progress, timeout=timeout)
    extract_archive(archive, dest, progress=progress, delete_bad=True)
    if not keep_archive:
        archive.unlink()
    return DownloadedDataset(info, dest, _found(dest), fetched=True)


def _found(dest: Path) -> FoundDataset | None:
    """What the readers find at ``dest``; None without a training split."""
    try:
        found = find_dataset(dest)
    except DataError:
        return None
    return found if any(s.split == "train" for s in found.splits) else None


class _Outside(Exception):
    """An archive member whose path leaves the target folder."""


def extract_archive(
    archive: str | Path, dest: str | Path, progress: bool = True, delete_bad: bool = False
) -> Path:
    """Extract a ``.zip`` or a (gzip, bzip2 or xz compressed) tar archive so that ``dest`` is
    its one top-level folder (or its whole content), atomically: a temporary folder beside
    ``dest`` is renamed into place at the end. Raises DataError when the archive is corrupt or
    truncated or a member would land outside ``dest`` (nothing is left extracted; with
    ``delete_bad`` the archive is deleted), and when ``dest`` exists and is not empty."""
    archive, dest = Path(archive), Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise DataError(f"{dest}: exists and is not empty; remove it or choose another --out")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".extracting", dir=dest.parent))
    fate = "it was deleted: run the command again to download it afresh"
    try:
        try:
            if archive.name.lower().endswith(".zip"):
                _extract_zip(archive, tmp, progress)
            else:
                _extract_tar(archive, tmp, progress)
        except (tarfile.FilterError, _Outside) as exc:
            if delete_bad:
                archive.unlink(missing_ok=True)
            raise DataError(
                f"{archive}: refused to extract it into {dest}: {exc}; nothing was extracted, "
                f"and {fate if delete_bad else 'the archive is not to be trusted'}"
            ) from None
        except (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, EOFError,
                zlib.error) as exc:  # fmt: skip
            if delete_bad:
                archive.unlink(missing_ok=True)
            raise DataError(
                f"{archive}: the archive is corrupt or truncated ({exc}); nothing was "
                f"extracted{', and ' + fate if delete_bad else ''}"
            ) from None
        except OSError as exc:
            raise DataError(f"{dest}: cannot extract {archive} here ({exc.strerror})") from None
        entries = list(tmp.iterdir())
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
        if dest.exists():
            dest.rmdir()  # empty, checked above
        top.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _skipped(name: str) -> bool:
    """macOS metadata that would read as broken images."""
    parts = PurePosixPath(name).parts
    return "__MACOSX" in parts or (bool(parts) and parts[-1].startswith("._"))


@contextmanager
def _bar(total: int, desc: str, progress: bool) -> Iterator[Callable[[int], None]]:
    with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar:

        def show(done: int) -> None:  # bytes of the archive read so far
            bar.update(done - bar.n)

        yield show


def _extract_tar(archive: Path, tmp: Path, progress: bool) -> None:
    """Stream the archive once (a second pass over a gzip stream decompresses it again),
    extracting each member through the ``data`` filter, which refuses paths and links that
    leave ``tmp`` and drops device files and unsafe permissions."""
    size = archive.stat().st_size
    with (
        open(archive, "rb") as raw,
        tarfile.open(fileobj=raw, mode="r|*") as tar,
        _bar(size, "extract", progress) as show,
    ):
        for member in tar:
            if not _skipped(member.name):
                tar.extract(member, tmp, filter="data")
            show(raw.tell())


def _extract_zip(archive: Path, tmp: Path, progress: bool) -> None:
    """Check every name first (zipfile would silently rewrite ``..`` and absolute names), then
    extract; reading each member checks its CRC."""
    root = tmp.resolve()
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.infolist() if not _skipped(m.filename)]
        for m in members:
            name = PurePosixPath(m.filename.replace("\\", "/"))
            target = (root / name).resolve()
            if name.is_absolute() or ".." in name.parts or not target.is_relative_to(root):
                raise _Outside(f"member {m.filename!r} would be written outside it")
        total = sum(m.compress_size for m in members)
        with _bar(total, "extract", progress) as show:
            done = 0
            for m in members:
                zf.extract(m, tmp)
                done += m.compress_size
                show(done)
