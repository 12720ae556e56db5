"""Reading images of any mode into float arrays, by documented rules.

Conversion rules (the same for training data, ``i2i translate`` and the Python API):

- 8-bit modes (``L``, ``RGB``, ``P``, ``CMYK``, ``YCbCr``, ``1`` ...) are read as grayscale or RGB
  and scaled from 0..255 to [0, 1].
- 16-bit modes (``I;16``, and ``I`` as Pillow opens 16-bit PNG/TIFF) are scaled from 0..65535 to
  [0, 1] directly, without a detour through 8 bits.
- Transparency (``RGBA``, ``LA``, ``PA``, palette images with a transparent colour) is composited
  over white, the usual background of sketches and label maps with holes.
- Channels are then matched to what the model wants: gray -> RGB repeats the channel; RGB -> gray
  uses the ITU-R 601 luma weights (0.299, 0.587, 0.114).
- 32-bit float images (mode ``F``) have no agreed range and are refused with an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from i2i.errors import BadImageError, DataError

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif"}
)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name; errors if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(
            f"{folder}: no images found (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    return files


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding the pixels."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise BadImageError(path, "the file is empty (0 bytes)")
    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise BadImageError(path, f"not a readable image ({exc})") from exc


def open_image(path: str | Path, large: bool = False) -> Image.Image:
    """Decode an image file completely, turning every decoder failure into a BadImageError.
    ``large`` lifts PIL's decompression-bomb guard (about 179 MP), for mosaics the user asked
    to tile; otherwise bigger images are refused."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise BadImageError(path, "the file is empty (0 bytes)")
    guard = Image.MAX_IMAGE_PIXELS
    try:
        if large:
            Image.MAX_IMAGE_PIXELS = None
        with Image.open(path) as im:
            im.load()  # decodes now, so truncated files fail here and not in a worker later
            return im
    except Image.DecompressionBombError as exc:
        raise BadImageError(path, f"too many pixels to decode safely ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise BadImageError(path, f"not a readable image ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImageError(path, f"corrupt or truncated image ({exc})") from exc
    finally:
        Image.MAX_IMAGE_PIXELS = guard


def pil_to_array(im: Image.Image, channels: int, source: str | Path = "image") -> np.ndarray:
    """An HxWxC float32 array in [0, 1] with ``channels`` (1 or 3), by the module's rules."""
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
    if out.ndim != 3 or out.shape[-1] not in (1, 3, 4):
        raise BadImageError(source, f"expected HxW, HxWx1, HxWx3 or HxWx4, got shape {arr.shape}")
    if out.shape[-1] == 4:  # straight alpha over white, as for files
        alpha = out[..., 3:]
        out = out[..., :3] * alpha + (1.0 - alpha)
    return match_channels(out, channels)


def save_image(arr: np.ndarray, path: str | Path) -> None:
    """Write an HxWxC float array in [0, 1] as an 8-bit image (format from the suffix)."""
    img = array_to_pil(arr)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def array_to_pil(arr: np.ndarray) -> Image.Image:
    """A float HxWxC array in [0, 1] (or an 8-bit one, as is) as a PIL image."""
    u8 = arr if arr.dtype == np.uint8 else (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8)


SKIP_HINT = "fix or remove the file, or pass --skip-bad to skip unreadable files"
T = TypeVar("T")


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
    if not good:
        raise DataError(f"no usable {what}s left after skipping {len(bad)} bad ones")
    return good


def open_with_hint(path: Path) -> Image.Image:
    """``open_image`` whose error also says how to skip the file."""
    try:
        return open_image(path)
    except BadImageError as exc:
        raise BadImageError(exc.path, f"{exc.problem}; {SKIP_HINT}") from None


def read_with_hint(path: Path, channels: int) -> np.ndarray:
    return pil_to_array(open_with_hint(path), channels, path)
