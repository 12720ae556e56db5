"""The published pix2pix and CycleGAN generators, by name, downloaded and imported once.

The catalogue lists the generators the reference pix2pix/CycleGAN code publishes (its
``scripts/download_cyclegan_model.sh`` and ``download_pix2pix_model.sh``), with what each one is:
the method, the dataset it was trained on and which side of it is the input (``direction``,
in that dataset's A/B layout), the task, the architecture (CycleGAN: resnet_9blocks with
instance norm; pix2pix: unet_256 with batch norm) and the input size (256 px, trained at load
286 / crop 256, the reference's defaults).

``pretrained_checkpoint(name)`` downloads the ``.pth`` into the cache
(``$I2I_CACHE/pretrained/METHOD/NAME.pth``, with ``i2i.download``: progress, resume, atomic),
imports it as an i2i checkpoint beside it, and reuses both afterwards. A file that is not the
generator the catalogue describes is deleted and reported as a corrupt download. Set
``I2I_PRETRAINED_URL`` to another server that mirrors the files' paths (tests use one on
127.0.0.1).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from i2i.config import Direction, GeneratorKind, Norm
from i2i.download import cache_root, download
from i2i.errors import CheckpointError, ConfigError, DownloadError
from i2i.runs.importer import (
    CHECKPOINT,
    ImportConfig,
    Method,
    cached_import,
    import_reference,
    is_reference_file,
)
from i2i.runs.layout import CARD
from i2i.runs.storage import is_url

SERVER = "http://efrosgans.eecs.berkeley.edu"
URL_ENV = "I2I_PRETRAINED_URL"  # another server with the same paths (a mirror, a test server)
PATHS: dict[Method, str] = {  # where each method's generators lie on the server
    "cyclegan": "cyclegan/pretrained_models",
    "pix2pix": "pix2pix/models-pytorch",
}
ARCHITECTURES: dict[Method, tuple[GeneratorKind, Norm]] = {
    "cyclegan": ("resnet_9blocks", "instance"),
    "pix2pix": ("unet_256", "batch"),
}


@dataclass(frozen=True)
class Published:
    """One published generator: ``name`` as the reference's download scripts spell it, the
    ``method``, the ``dataset`` it learned from and its ``direction`` there, the ``task`` in
    words, and the ``size`` (px) of the images it was trained on."""

    name: str
    method: Method
    dataset: str
    direction: Direction
    task: str
    size: int = 256

    @property
    def key(self) -> str:
        """The catalogue's full name: ``METHOD/NAME``."""
        return f"{self.method}/{self.name}"

    @property
    def architecture(self) -> tuple[GeneratorKind, Norm]:
        return ARCHITECTURES[self.method]

    def url(self) -> str:
        server = os.environ.get(URL_ENV) or SERVER
        return f"{server.rstrip('/')}/{PATHS[self.method]}/{self.name}.pth"

    def folder(self) -> Path:
        """Where the download and its import live in the cache."""
        return cache_root() / "pretrained" / self.method


def _entries() -> list[Published]:
    """(name, dataset, direction, task) of each method's published generators."""
    cyclegan: list[tuple[str, str, Direction, str]] = [
        ("apple2orange", "apple2orange", "AtoB", "apple -> orange"),
        ("orange2apple", "apple2orange", "BtoA", "orange -> apple"),
        ("summer2winter_yosemite", "summer2winter_yosemite", "AtoB", "summer -> winter"),
        ("winter2summer_yosemite", "summer2winter_yosemite", "BtoA", "winter -> summer"),
        ("horse2zebra", "horse2zebra", "AtoB", "horse -> zebra"),
        ("zebra2horse", "horse2zebra", "BtoA", "zebra -> horse"),
        ("monet2photo", "monet2photo", "AtoB", "Monet painting -> photo"),
        ("style_monet", "monet2photo", "BtoA", "photo -> Monet painting"),
        ("style_cezanne", "cezanne2photo", "BtoA", "photo -> Cezanne painting"),
        ("style_ukiyoe", "ukiyoe2photo", "BtoA", "photo -> ukiyo-e print"),
        ("style_vangogh", "vangogh2photo", "BtoA", "photo -> Van Gogh painting"),
        ("sat2map", "maps", "AtoB", "satellite photo -> map"),
        ("map2sat", "maps", "BtoA", "map -> satellite photo"),
        ("cityscapes_photo2label", "cityscapes", "AtoB", "street photo -> label map"),
        ("cityscapes_label2photo", "cityscapes", "BtoA", "label map -> street photo"),
        ("facades_photo2label", "facades", "AtoB", "facade photo -> label map"),
        ("facades_label2photo", "facades", "BtoA", "label map -> facade photo"),
        ("iphone2dslr_flower", "iphone2dslr_flower", "AtoB", "iPhone flower photo -> DSLR"),
    ]
    pix2pix: list[tuple[str, str, Direction, str]] = [
        ("edges2shoes", "edges2shoes", "AtoB", "edge drawing -> shoe photo"),
        ("sat2map", "maps", "AtoB", "satellite photo -> map"),
        ("map2sat", "maps", "BtoA", "map -> satellite photo"),
        ("facades_label2photo", "facades", "BtoA", "label map -> facade photo"),
        ("day2night", "night2day", "BtoA", "daytime photo -> night photo"),
    ]
    return [Published(n, "cyclegan", data, d, task) for n, data, d, task in cyclegan] + [
        Published(n, "pix2pix", data, d, task) for n, data, d, task in pix2pix
    ]


CATALOGUE: dict[str, Published] = {entry.key: entry for entry in _entries()}


def short_name(entry: Published) -> str:
    """The shortest name that finds ``entry``: NAME alone when one method publishes it."""
    same = [e for e in CATALOGUE.values() if e.name == entry.name]
    return entry.name if len(same) == 1 else entry.key


def find(name: str) -> Published | None:
    """The entry ``name`` (``NAME`` or ``METHOD/NAME``) names, None when it names none.
    ConfigError for a NAME both methods publish."""
    if name in CATALOGUE:
        return CATALOGUE[name]
    same = [e for e in CATALOGUE.values() if e.name == name]
    if len(same) > 1:
        choices = " or ".join(e.key for e in same)
        raise ConfigError(f"{name!r} is published for both pix2pix and CycleGAN: say {choices}")
    return same[0] if same else None


def lookup(name: str) -> Published:
    """The entry ``name`` names; ConfigError listing the catalogue otherwise."""
    entry = find(name)
    if entry is None:
        names = ", ".join(short_name(e) for e in CATALOGUE.values())
        raise ConfigError(f"no published model {name!r}; `i2i pretrained list` shows: {names}")
    return entry


def pretrained_checkpoint(name: str, progress: bool = True) -> Path:
    """The i2i checkpoint of published model ``name``: downloaded and imported the first time,
    read from the cache afterwards. DownloadError when it cannot be fetched (the message names
    the URL and where to put the file by hand) or the file is not the catalogue's generator."""
    entry = lookup(name)
    folder = entry.folder()
    imported = folder / entry.name
    if (imported / CHECKPOINT / CARD).is_file():
        return imported / CHECKPOINT
    url = entry.url()
    pth = download(url, folder / f"{entry.name}.pth", progress=progress)
    kind, norm = entry.architecture
    cfg = ImportConfig(
        generator=kind,
        norm=norm,
        model=entry.method,
        direction=entry.direction,
        load_size=entry.size * 286 // 256,  # the reference's defaults: load 286, crop 256
        crop_size=entry.size,
    )
    source = {"url": url, "pretrained": entry.key, "dataset": entry.dataset, "task": entry.task}
    try:
        return import_reference(pth, imported, cfg, source)
    except CheckpointError as exc:
        pth.unlink(missing_ok=True)
        raise DownloadError(
            f"{url}: the downloaded file is not the published {entry.method} generator ({exc}); "
            "it was deleted: run the command again"
        ) from None


def resolve_model(path: str | Path, progress: bool = True) -> str | Path:
    """What a model argument names, first as a published model's name (``horse2zebra``,
    ``pix2pix/sat2map``; write ``./horse2zebra`` for a folder of that name): its checkpoint,
    downloaded and imported the first time. Then a reference ``.pth`` file: its checkpoint,
    imported once into the cache. Anything else is returned as it is, for
    ``resolve_checkpoint``."""
    text = str(path)
    if is_url(text):
        return path
    if not text.startswith((".", "/", "~")):
        entry = find(text)
        if entry is not None:
            if Path(text).exists():
                print(
                    f"note: {text!r} is the published model {entry.key}; for the folder of that "
                    f"name write ./{text}",
                    file=sys.stderr,
                )
            return pretrained_checkpoint(text, progress)
    if is_reference_file(text):
        return cached_import(text)
    return path
