"""Writing many images to a folder, an object-storage URL (``s3://bucket/maps/``, any fsspec
URL) or straight into a zip archive (competition submissions such as Kaggle's photo -> Monet
want 7,000-10,000 JPEGs in one zip). Each image is encoded and written as it comes, so memory
does not grow with the count, and each appears whole or not at all: a temporary file renamed
into place in a folder, one PUT per object in a bucket."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from types import TracebackType
from typing import Any

from PIL import Image

from i2i.errors import ConfigError
from i2i.files import remove_stale_temps, write_bytes_atomic, write_text_atomic
from i2i.runs.storage import is_url, url_fs


def encode(image: Image.Image, name: str) -> bytes:
    """``image`` in the format ``name``'s suffix says (JPEG at quality 95)."""
    suffix = Path(name).suffix.lower()
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None:
        raise ConfigError(f"{name}: no image format for {suffix!r}; use .png or .jpg")
    buf = io.BytesIO()
    if fmt == "JPEG":
        image.save(buf, format=fmt, quality=95)
    else:
        image.save(buf, format=fmt)
    return buf.getvalue()


class ImageWriter:
    """``with ImageWriter("out.zip") as w: w.write("a.jpg", image)``: ``out`` is a folder, a
    URL (a folder in object storage) or a ``.zip``. The format follows each name's suffix."""

    def __init__(self, out: str | Path) -> None:
        self.url = str(out).rstrip("/") if is_url(out) else None
        self.out = Path(out) if self.url is None else Path(str(out).split("://", 1)[1])
        self.zip: zipfile.ZipFile | None = None
        self.fs: Any = None
        self.root = ""
        self.logs: dict[str, str] = {}  # what append_text wrote to object storage

    def __enter__(self) -> ImageWriter:
        if self.url is not None:
            if self.url.lower().endswith(".zip"):
                raise ConfigError(f"--out {self.url}: write a zip to a local path")
            self.fs, self.root = url_fs(self.url)
            self.fs.makedirs(self.root, exist_ok=True)
        elif self.out.suffix.lower() == ".zip":
            self.out.parent.mkdir(parents=True, exist_ok=True)
            # JPEG/PNG are compressed already: store them rather than deflate them again
            self.zip = zipfile.ZipFile(self.out, "w", compression=zipfile.ZIP_STORED)
        else:
            self.out.mkdir(parents=True, exist_ok=True)
        return self

    def existing(self) -> set[str]:
        """The names already in the destination (a zip is written anew: none)."""
        if self.zip is not None:
            return set()
        if self.url is not None:
            try:
                return {p.rsplit("/", 1)[-1] for p in self.fs.ls(self.root, detail=False)}
            except FileNotFoundError:  # object storage has no empty folders: nothing yet
                return set()
        return {p.name for p in self.out.iterdir() if not p.name.startswith(".")}

    def remove_stale_temps(self) -> None:
        """Remove temporary files that killed writes left in a local folder."""
        if self.url is None and self.zip is None:
            remove_stale_temps(self.out)

    def write(self, name: str, image: Image.Image) -> int:
        """Write ``image`` as ``name``, whole or not at all; returns its size in bytes."""
        return self.write_bytes(name, encode(image, name))

    def write_bytes(self, name: str, data: bytes) -> int:
        if self.zip is not None:
            self.zip.writestr(name, data)
        elif self.url is not None:
            self.fs.pipe_file(f"{self.root}/{name}", data)  # one PUT: the object appears whole
        else:
            write_bytes_atomic(self.out / name, data)
        return len(data)

    def write_text(self, name: str, text: str) -> None:
        """A small text file beside the images (a zip gets it beside itself)."""
        if self.zip is not None:
            write_text_atomic(self.out.with_name(f"{self.out.stem}{name}"), text)
        else:
            self.write_bytes(name, text.encode())

    def location(self, name: str) -> str:
        """Where ``write_text(name, ...)`` puts its file, as a user would type it."""
        if self.zip is not None:
            return str(self.out.with_name(f"{self.out.stem}{name}"))
        return f"{self.url}/{name}" if self.url is not None else str(self.out / name)

    def append_text(self, name: str, text: str) -> None:
        """Add ``text`` to a log beside the images as it grows, so that what a killed run
        did stays on record: appended to a local file; a URL's object is rewritten whole."""
        if self.zip is None and self.url is None:
            with open(self.out / name, "a") as f:
                f.write(text)
                f.flush()
            return
        if name not in self.logs:  # what a killed run wrote there stays
            self.logs[name] = self.read_text(name) or ""
        self.logs[name] += text
        self.write_text(name, self.logs[name])

    def names(self, pattern: str) -> list[str]:
        """The names beside the images that match a glob ``pattern``."""
        if self.zip is not None:
            return sorted(p.name.removeprefix(self.out.stem) for p in
                          self.out.parent.glob(f"{self.out.stem}{pattern}"))  # fmt: skip
        if self.url is not None:
            return sorted(p.rsplit("/", 1)[-1] for p in self.fs.glob(f"{self.root}/{pattern}"))
        return sorted(p.name for p in self.out.glob(pattern))

    def read_text(self, name: str) -> str | None:
        """A text file written beside the images before, or None."""
        if self.zip is not None:
            path = self.out.with_name(f"{self.out.stem}{name}")
            return path.read_text() if path.is_file() else None
        if self.url is not None:
            key = f"{self.root}/{name}"
            return self.fs.cat_file(key).decode() if self.fs.exists(key) else None
        local = self.out / name
        return local.read_text() if local.is_file() else None

    def remove(self, name: str) -> None:
        if self.zip is not None:
            self.out.with_name(f"{self.out.stem}{name}").unlink(missing_ok=True)
        elif self.url is not None:
            if self.fs.exists(f"{self.root}/{name}"):
                self.fs.rm(f"{self.root}/{name}")
        else:
            (self.out / name).unlink(missing_ok=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.zip is not None:
            self.zip.close()
