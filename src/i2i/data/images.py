"""Reading images of any mode into float arrays, by documented rules.

Conversion rules (the same for training data, ``i2i translate`` and the Python API):

- 8-bit modes (``L``, ``RGB``, ``P``, ``CMYK``, ``YCbCr``, ``1`` ...) are read as grayscale or RGB
  and scaled from 0..255 to [0, 1].
- 16-bit images (gray ``I;16``/``I`` as Pillow opens them, and 48/64-bit colour PNG/TIFF, which
  Pillow would cut to 8 bits and i2i decodes with pypng/tifffile) are scaled from 0..65535 to
  [0, 1] directly, without a detour through 8 bits.
- Images are read as every viewer shows them: the EXIF Orientation tag is applied (phone
  photos stored sideways stand upright), and a PNG whose pixel data ends early is refused
  instead of decoding as black rows.
- Every decode checks the image's declared size against a pixel budget before decoding
  (``I2I_MAX_PIXELS``, default 179 MP as PIL's), so a small file cannot expand into gigabytes.
- Transparency (``RGBA``, ``LA``, ``PA``, palette images with a transparent colour) is composited
  over white, the usual background of sketches and label maps with holes.
- Channels are then matched to what the model wants: gray -> RGB repeats the channel; RGB -> gray
  uses the ITU-R 601 luma weights (0.299, 0.587, 0.114).
- 32-bit float images (mode ``F``) have no agreed range and are refused with an error.
"""

from __future__ import annotations

import io
import os
import struct
import threading
import warnings
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import png
import tifffile
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from i2i.errors import BadImageError, ConfigError, DataError

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif"}
)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


def list_images(folder: str | Path, extra: tuple[str, ...] = ()) -> list[Path]:
    """Image files directly inside ``folder`` (and files with the ``extra`` suffixes, such as
    ``.npy``), sorted by name; DataError if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    wanted = IMAGE_EXTENSIONS | set(extra)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in wanted)
    if not files:
        raise DataError(f"{folder}: no images found (looked for {', '.join(sorted(wanted))})")
    return files


# Decompression-bomb guard: the most pixels an image may declare before anything is decoded.
# PIL refuses images over 2 x 89.5 MP with an exception it calls a decompression bomb; i2i applies
# the same bound to every decode path by default, checked from the header, with its own message.
MAX_PIXELS_ENV = "I2I_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 2 * 89_478_485
_PIL_GUARD = threading.Lock()  # PIL's guard is process-wide: lifted by one header at a time

Picture = Image.Image | np.ndarray
"""A decoded image: a PIL image, or (16-bit colour, which PIL reads as 8 bits) a uint16
HxWxC numpy array."""

# EXIF Orientation (tag 0x0112) -> the numpy steps that show the stored pixels as viewers do
_ORIENTATION_SWAPS = {5, 6, 7, 8}  # the stored width is the displayed height


def max_pixels() -> int:
    """The pixel budget of one decoded image: ``$I2I_MAX_PIXELS``, else PIL's 179 MP."""
    raw = os.environ.get(MAX_PIXELS_ENV)
    if raw is None:
        return DEFAULT_MAX_PIXELS
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ConfigError(f"{MAX_PIXELS_ENV}={raw!r}: expected a whole number of pixels")
    return int(raw)


def _check_budget(source: str | Path, w: int, h: int, budget: int) -> None:
    if w * h > budget:
        raise BadImageError(
            source,
            f"{w}x{h} is {w * h:,} pixels, more than the {budget:,} an image may have (too many "
            "pixels to decode safely: a decompression bomb guard); if the image is genuine, "
            f"raise the limit ({MAX_PIXELS_ENV}=N, or --max-pixels where offered)",
        )


def open_header(fp: Path | io.BytesIO) -> Image.Image:
    """``Image.open`` (the header only) without PIL's own decompression-bomb guard, whose
    bound and message i2i replaces with its own pixel budget (``--max-pixels``). PIL's guard
    is process-wide, so it is lifted for one header at a time. Raises what ``Image.open``
    raises for a file that is not an image (UnidentifiedImageError, OSError)."""
    with _PIL_GUARD:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(fp)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _orientation(im: Image.Image) -> int:
    """The EXIF Orientation (1-8) from the header: for a PNG, an eXIf chunk before its pixel
    data (``getexif`` would decode the whole image to look for one after it)."""
    try:
        if im.format == "PNG":
            exif = Image.Exif()
            if "exif" in im.info:
                exif.load(im.info["exif"])
        else:
            exif = im.getexif()
        value = exif.get(0x0112, 1)
    except Exception:  # a damaged EXIF block: show the pixels as stored
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def image_size(path: str | Path, budget: int | None = None) -> tuple[int, int]:
    """(width, height) as viewers show the image (EXIF orientation applied), from the file's
    header without decoding the pixels. BadImageError for an empty, unreadable or oversized
    file (over ``budget`` pixels, default :func:`max_pixels`)."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise BadImageError(path, "the file is empty (0 bytes)")
    budget = budget or max_pixels()
    try:
        with open_header(path) as im:
            w, h = im.size
            swapped = _orientation(im) in _ORIENTATION_SWAPS
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadImageError(path, f"not a readable image ({exc})") from None
    _check_budget(path, w, h, budget)
    return (h, w) if swapped else (w, h)


def open_image(path: str | Path, budget: int | None = None) -> Picture:
    """Decode an image file completely, as every viewer shows it: EXIF orientation applied,
    16-bit colour PNG/TIFF kept at 16 bits (a uint16 HxWxC array), a PNG whose pixel data ends
    early refused. Every decoder failure is a BadImageError naming the file. ``budget`` (px)
    bounds the image's declared size, checked before decoding (default :func:`max_pixels`)."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise BadImageError(path, "the file is empty (0 bytes)")
    return _decode(path, path, budget or max_pixels())


def decode_bytes(data: bytes, source: str = "upload", budget: int | None = None) -> Picture:
    """:func:`open_image` for an image held in memory (an HTTP upload)."""
    if not data:
        raise BadImageError(source, "the file is empty (0 bytes)")
    return _decode(io.BytesIO(data), source, budget or max_pixels())


def _decode(fp: Path | io.BytesIO, source: str | Path, budget: int) -> Picture:
    try:
        with open_header(fp) as im:
            _check_budget(source, *im.size, budget)
            deep = _deep_colour(im)
            orientation = _orientation(im)
            picture: Picture
            if deep:
                picture = _read_deep(fp, im.format)
            else:
                im.load()  # decodes now, so truncated files fail here and not in a worker later
                if im.format == "PNG" and not _png_data_complete(fp):
                    raise BadImageError(
                        source, "truncated PNG: its pixel data ends before the last row"
                    )
                picture = im
    except BadImageError:
        raise
    except UnidentifiedImageError as exc:
        raise BadImageError(source, f"not a readable image ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError, png.Error) as exc:
        raise BadImageError(source, f"corrupt or truncated image ({exc})") from None
    return _orient(picture, orientation)


def _deep_colour(im: Image.Image) -> bool:
    """16 bits per channel with colour or alpha, which PIL would read as 8 bits: PNG
    RGB/RGBA/gray+alpha at 16 bits, TIFF with several 16-bit samples per pixel."""
    if im.format == "PNG":
        tile = im.tile if isinstance(im, ImageFile.ImageFile) else []
        return bool(tile) and tile[0].args in ("RGB;16B", "RGBA;16B", "LA;16B")
    if im.format == "TIFF":
        bits = im.tag_v2.get(258, (8,))  # type: ignore[attr-defined]
        bits = bits if isinstance(bits, tuple) else (bits,)
        return len(bits) >= 3 and max(bits) == 16
    return False


def _read_deep(fp: Path | io.BytesIO, fmt: str | None) -> np.ndarray:
    """A 16-bit colour image as uint16 HxWxC, decoded by a library that keeps all 16 bits
    (pypng for PNG, tifffile for TIFF): PIL has no 16-bit colour modes."""
    if isinstance(fp, io.BytesIO):
        fp.seek(0)
    if fmt == "TIFF":
        return np.asarray(tifffile.imread(fp), dtype=np.uint16)
    reader = png.Reader(file=fp) if isinstance(fp, io.BytesIO) else png.Reader(filename=str(fp))
    w, h, rows, info = reader.asDirect()
    planes = info["planes"]
    return np.vstack([np.asarray(r, np.uint16) for r in rows]).reshape(h, w, planes)


def _png_data_complete(fp: Path | io.BytesIO) -> bool:
    """Whether a PNG's compressed pixel data holds every row its header declares. PIL fills
    rows missing from a stream that ends cleanly with black, without a word; this reads the
    chunks and counts the inflated bytes (Adam7 passes included). Hand-written because
    neither PIL nor the standard library offers the check."""
    data = fp.getvalue() if isinstance(fp, io.BytesIO) else Path(fp).read_bytes()
    pos, header, idat = 8, b"", []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if len(header) < 13:
        return False
    w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header[:13])
    bits = depth * {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 1)
    passes = [(w, h)]
    if interlace:  # Adam7: (x start, x step, y start, y step) of each pass
        adam7 = [(0, 8, 0, 8), (4, 8, 0, 8), (0, 4, 4, 8), (2, 4, 0, 4), (0, 2, 2, 4),
                 (1, 2, 0, 2), (0, 1, 1, 2)]  # fmt: skip
        passes = [(-(-(w - x0) // dx), -(-(h - y0) // dy)) for x0, dx, y0, dy in adam7]
    expected = sum(ph * (1 + -(-pw * bits // 8)) for pw, ph in passes if pw > 0 and ph > 0)
    inflate = zlib.decompressobj()
    try:
        got = sum(len(inflate.decompress(chunk)) for chunk in idat)
    except zlib.error:
        return False
    return got >= expected


def _orient(picture: Picture, orientation: int) -> Picture:
    """``picture`` turned as EXIF ``orientation`` says viewers show it."""
    if orientation == 1:
        return picture
    if isinstance(picture, Image.Image):
        return ImageOps.exif_transpose(picture)
    steps = {2: (0, True), 3: (2, False), 4: (2, True), 5: (1, True), 6: (3, False),
             7: (3, True), 8: (1, False)}  # fmt: skip
    turns, mirror = steps[orientation]  # counter-clockwise quarter turns, then a mirror
    arr = np.rot90(picture, turns) if turns else picture
    return np.ascontiguousarray(arr[:, ::-1] if mirror else arr)


def picture_size(picture: Picture) -> tuple[int, int]:
    """(width, height) of a decoded image."""
    if isinstance(picture, Image.Image):
        return picture.size
    return picture.shape[1], picture.shape[0]


def crop(picture: Picture, box: tuple[int, int, int, int]) -> Picture:
    """The (left, top, right, bottom) region of a decoded image."""
    if isinstance(picture, Image.Image):
        return picture.crop(box)
    left, top, right, bottom = box
    return picture[top:bottom, left:right]


def pil_to_array(im: Picture, channels: int, source: str | Path = "image") -> np.ndarray:
    """A decoded image as an HxWxC float32 array in [0, 1] with ``channels`` (1 or 3), by the
    module's rules."""
    if isinstance(im, np.ndarray):
        return uint_array_to_float(im, str(source), channels)
    if im.mode == "F":
        raise BadImageError(source, "32-bit float images have no agreed range; save as 8/16-bit")
    if im.mode in _SIXTEEN_BIT:
        arr = np.asarray(im, dtype=np.float32) / 65535.0
        arr = np.clip(arr, 0.0, 1.0)[..., None]
    else:
        has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
            im.mode == "P" and "transparency" in im.info
        )
        if has_alpha:
            rgba = im.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, rgba).convert("RGB")
        elif im.mode not in ("L", "RGB"):
            im = im.convert("L" if im.mode == "1" else "RGB")
        arr = np.asarray(im, dtype=np.float32) / 255.0
        if arr.ndim == 2:
            arr = arr[..., None]
    return match_channels(arr, channels)


def match_channels(arr: np.ndarray, channels: int) -> np.ndarray:
    """Gray -> RGB by repetition, RGB -> gray by ITU-R 601 luma; HxWxC in, HxWxC out."""
    have = arr.shape[-1]
    if have == channels:
        return arr
    if have == 1 and channels == 3:
        return np.repeat(arr, 3, axis=-1)
    if have == 3 and channels == 1:
        return (arr @ _LUMA)[..., None].astype(np.float32)
    raise ValueError(f"cannot convert {have} channels to {channels}")


def read_image(path: str | Path, channels: int) -> np.ndarray:
    """Read ``path`` as an HxWxC float32 array in [0, 1]."""
    return pil_to_array(open_image(path), channels, source=path)


def float_to_uint16(x: np.ndarray) -> np.ndarray:
    """Float pixels in [0, 1] (any shape) as 16-bit 0..65535, clipped and rounded: how a
    float image enters tiled translation, which reads 8/16-bit pixels, without losing
    precision."""
    return (np.clip(x, 0, 1) * 65535 + 0.5).astype(np.uint16)


def uint_array_to_float(arr: np.ndarray, source: str, channels: int) -> np.ndarray:
    """uint8 / uint16 HxW or HxWxC arrays (npz datasets, API inputs) to float32 HxWxC [0, 1]."""
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        out = arr.astype(np.float32) / 65535.0
    else:
        raise BadImageError(source, f"expected uint8 or uint16 pixels, got {arr.dtype}")
    if out.ndim == 2:
        out = out[..., None]
    if out.ndim != 3 or out.shape[-1] not in (1, 2, 3, 4):
        raise BadImageError(source, f"expected HxW or HxWx1 to HxWx4, got shape {arr.shape}")
    if out.shape[-1] in (2, 4):  # gray or colour with straight alpha, over white as for files
        alpha = out[..., -1:]
        out = out[..., :-1] * alpha + (1.0 - alpha)
    return match_channels(out, channels)


def array_to_pil(arr: np.ndarray) -> Image.Image:
    """A float HxWxC array in [0, 1] (or an 8-bit one, as is) as a PIL image."""
    u8 = arr if arr.dtype == np.uint8 else (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8)


SKIP_HINT = "fix or remove the file, or pass --skip-bad to skip such files"
T = TypeVar("T")


def apply_rule(path: str | Path, rule: Callable[[int, int], None] | None, w: int, h: int) -> None:
    """Run a size ``rule`` on a file's (width, height); its ConfigError becomes the file's
    BadImageError, which ``screen`` skips with --skip-bad."""
    if rule is None:
        return
    try:
        rule(w, h)
    except ConfigError as exc:
        raise BadImageError(path, str(exc)) from None


def screen(items: Sequence[T], check: Callable[[T], None], skip_bad: bool, what: str) -> list[T]:
    """Keep the items that pass ``check``; a failure stops with its message unless skip_bad,
    which skips it and warns once with the count."""
    good, bad = [], []
    for item in items:
        try:
            check(item)
            good.append(item)
        except BadImageError as exc:
            if not skip_bad:
                raise BadImageError(exc.path, f"{exc.problem}; {SKIP_HINT}") from None
            bad.append(exc)
    if bad:
        shown = "; ".join(str(e) for e in bad[:3])
        warnings.warn(f"skipped {len(bad)} bad {what}(s) of {len(items)}: {shown}", stacklevel=3)
    if not good:  # the first reason, which is often every item's (a crop larger than all)
        raise DataError(
            f"no usable {what}s left after skipping {len(bad)} bad ones; the first: {bad[0]}"
            if bad
            else f"no {what}s to use"
        )
    return good


def open_with_hint(path: Path, hint: str = SKIP_HINT) -> Picture:
    """``open_image`` whose error also says what to do (``hint``: by default, how to skip
    the file)."""
    try:
        return open_image(path)
    except BadImageError as exc:
        raise BadImageError(exc.path, f"{exc.problem}; {hint}") from None


def read_with_hint(path: Path, channels: int, hint: str = SKIP_HINT) -> np.ndarray:
    return pil_to_array(open_with_hint(path, hint), channels, path)
