"""Writing many images to a folder or straight into a zip archive (competition submissions
such as Kaggle's photo -> Monet want 7,000-10,000 JPEGs in one zip). Each image is encoded and
written as it comes, so memory does not grow with the count."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from types import TracebackType

from PIL import Image


class ImageWriter:
    """``with ImageWriter("out.zip") as w: w.write("a.jpg", image)``; a path without ``.zip``
    is a folder. The format follows each name's suffix (JPEG at quality 95)."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.zip: zipfile.ZipFile | None = None

    def __enter__(self) -> ImageWriter:
        if self.out.suffix.lower() == ".zip":
            self.out.parent.mkdir(parents=True, exist_ok=True)
            # JPEG/PNG are compressed already: store them rather than deflate them again
            self.zip = zipfile.ZipFile(self.out, "w", compression=zipfile.ZIP_STORED)
        else:
            self.out.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, name: str, image: Image.Image) -> str:
        suffix = Path(name).suffix.lower()
        quality = 95 if suffix in (".jpg", ".jpeg") else None
        target: Path | io.BytesIO = self.out / name if self.zip is None else io.BytesIO()
        fmt = Image.registered_extensions()[suffix]
        if quality is None:
            image.save(target, format=fmt)
        else:
            image.save(target, format=fmt, quality=quality)
        if self.zip is not None and isinstance(target, io.BytesIO):
            self.zip.writestr(name, target.getvalue())
        return name

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.zip is not None:
            self.zip.close()
