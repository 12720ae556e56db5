"""Images are decoded as every viewer shows them, with bounds: EXIF orientation applied,
16-bit colour kept at 16 bits, truncated PNGs refused, and a pixel budget checked from the
header before anything is decoded, on every path (training, prepare, translate, tiles)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import png
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

from i2i.cli import app
from i2i.data.images import image_size, open_image, pil_to_array
from i2i.errors import BadImageError

TINY = ["--load-size", "36", "--crop-size", "32", "--generator", "unet_128", "--depth", "5",
        "--ngf", "8", "--ndf", "8", "--disc-layers", "2", "--max-steps", "2",
        "--no-progress"]  # fmt: skip


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(w: int, h: int, rows: bytes, depth: int = 8, colour: int = 2) -> bytes:
    header = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))  # fmt: skip


def sideways_jpeg(path: Path, shown: np.ndarray) -> None:
    """``shown`` (HxWx3) stored rotated, with EXIF Orientation 6: viewers show ``shown``."""
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    stored = np.ascontiguousarray(np.rot90(shown, 1))
    Image.fromarray(stored).save(path, exif=exif.tobytes(), quality=100)


def test_exif_orientation_is_applied_to_sizes_and_pixels(tmp_path):
    shown = np.zeros((40, 24, 3), np.uint8)
    shown[:10] = 255  # a white band at the top of the upright image
    sideways_jpeg(tmp_path / "p.jpg", shown)
    assert Image.open(tmp_path / "p.jpg").size == (40, 24)  # as stored
    assert image_size(tmp_path / "p.jpg") == (24, 40)  # as shown, from the header
    pixels = pil_to_array(open_image(tmp_path / "p.jpg"), 3)
    assert pixels.shape == (40, 24, 3)
    assert pixels[:8].mean() > 0.9 and pixels[12:].mean() < 0.1


def test_a_phone_photo_pair_trains_and_translates_upright(tmp_path):
    """Case 03: A/ holds sideways-stored JPEGs, B/ upright PNGs of the same scene."""
    rng = np.random.default_rng(0)
    for side in "AB":
        (tmp_path / "data" / side).mkdir(parents=True)
    for i in range(4):
        shown = rng.integers(0, 255, (40, 24, 3), dtype=np.uint8)
        Image.fromarray(255 - shown).save(tmp_path / "data" / "B" / f"{i}.png")
        sideways_jpeg(tmp_path / "data" / "A" / f"{i}.jpg", shown)
    runner = CliRunner()
    args = ["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), *TINY]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, ["translate", str(tmp_path / "run"), str(tmp_path / "data/A/0.jpg"),
                                 "--out", str(tmp_path / "out"), "--no-progress"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out" / "0.png").size == (24, 40)


def test_sixteen_bit_colour_keeps_its_low_bits(tmp_path):
    values = np.array([[[3000, 40000, 257], [1, 65535, 12345]]], np.uint16)  # 1x2 RGB
    rows = values.reshape(1, -1)
    with open(tmp_path / "rgb48.png", "wb") as f:
        png.Writer(2, 1, greyscale=False, bitdepth=16).write(f, rows.tolist())
    tifffile.imwrite(tmp_path / "rgb48.tif", values, photometric="rgb")
    for name in ("rgb48.png", "rgb48.tif"):
        got = pil_to_array(open_image(tmp_path / name), 3)
        np.testing.assert_allclose(got, values / 65535, atol=1e-6, err_msg=name)


def test_sixteen_bit_gray_with_alpha_keeps_its_low_bits(tmp_path):
    gray = np.array([[30000, 30001, 30005]], np.uint16)
    alpha = np.full_like(gray, 65535)
    with open(tmp_path / "la32.png", "wb") as f:
        png.Writer(3, 1, greyscale=True, alpha=True, bitdepth=16).write(
            f, np.stack([gray, alpha], -1).reshape(1, -1).tolist()
        )
    got = pil_to_array(open_image(tmp_path / "la32.png"), 1)
    np.testing.assert_allclose(got[..., 0], gray / 65535, atol=1e-6)


def test_a_png_whose_data_ends_early_is_refused(tmp_path):
    rows = b"".join(b"\x00" + bytes([200] * 15) for _ in range(4))  # 4 of 8 rows
    (tmp_path / "short.png").write_bytes(raw_png(5, 8, rows))
    with pytest.raises(BadImageError, match=r"short\.png: truncated PNG"):
        open_image(tmp_path / "short.png")
    whole = rows * 2
    (tmp_path / "whole.png").write_bytes(raw_png(5, 8, whole))
    assert open_image(tmp_path / "whole.png").size == (5, 8)  # type: ignore[union-attr]
    interlaced = tmp_path / "adam7.png"  # the row count follows the seven Adam7 passes
    with open(interlaced, "wb") as f:
        png.Writer(13, 11, greyscale=True, interlace=True).write(
            f, [[i % 256] * 13 for i in range(11)]
        )
    assert pil_to_array(open_image(interlaced), 1).shape == (11, 13, 1)


def bomb(path: Path, side: int = 60000) -> None:
    """A few KB of PNG that declares ``side`` x ``side`` pixels."""
    path.write_bytes(raw_png(side, side, b"\x00" * (side + 1) * 64, colour=0))


def test_decompression_bombs_are_bad_files_in_datasets(tmp_path):
    """Case rel-04: one line naming the file; --skip-bad skips it; data prepare alike."""
    runner = CliRunner()
    runner.invoke(app, ["data", "synth", "--out", str(tmp_path / "d"), "--n-train", "4",
                        "--n-val", "1", "--size", "32"])  # fmt: skip
    bomb(tmp_path / "d" / "train" / "bomb.png")
    args = ["train", "--data", str(tmp_path / "d"), *TINY]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "r1")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "bomb.png" in result.output and "too many pixels" in result.output
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "r2"), "--skip-bad"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["data", "prepare", str(tmp_path / "d"), "--out",
                                 str(tmp_path / "p")])  # fmt: skip
    assert result.exit_code == 1 and "bomb.png" in result.output


def test_the_pixel_budget_is_configurable_and_covers_tiles(tmp_path, monkeypatch):
    Image.new("RGB", (100, 100)).save(tmp_path / "big.png")
    monkeypatch.setenv("I2I_MAX_PIXELS", "5000")
    message = r"100x100 is 10,000 pixels, more than the 5,000 .*I2I_MAX_PIXELS"
    with pytest.raises(BadImageError, match=message):
        image_size(tmp_path / "big.png")
    with pytest.raises(BadImageError, match="too many pixels"):
        open_image(tmp_path / "big.png")
    assert open_image(tmp_path / "big.png", budget=10_000).size == (100, 100)  # type: ignore[union-attr]
