"""Image sizes are checked before training, every image from its header, and the advice fits
the run: mixed valid sizes train at batch 1, misfits are named (or skipped with --skip-bad)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from i2i.cli import app
from i2i.config import DataConfig
from i2i.data.transforms import preview_view

SMALL = ["--generator", "unet_128", "--depth", "5", "--ngf", "8", "--ndf", "8",
         "--disc-layers", "2", "--max-steps", "2", "--no-progress"]  # fmt: skip


def pairs(folder: Path, sides: list[int]) -> None:
    """Side-by-side A|B pairs of the given square sides."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, side in enumerate(sides):
        a = rng.integers(0, 255, (side, side, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([a, 255 - a], 1)).save(folder / f"{i}.png")


def train(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["train", *map(str, args)])
    return result.exit_code, result.output


def test_mixed_valid_sizes_train_at_batch_one(tmp_path):
    """Case 01: no val split, so the sample grid shows the training pairs, one by one."""
    pairs(tmp_path / "data" / "train", [32, 64, 32, 64])
    code, output = train("--data", tmp_path / "data", "--out", tmp_path / "run",
                         "--preprocess", "none", "--batch-size", "1", "--set",
                         "train.num_samples=4", *SMALL)  # fmt: skip
    assert code == 0, output
    grid = Image.open(tmp_path / "run" / "samples.png")
    assert grid.size[1] > grid.size[0]  # four rows of input | output | target


def test_mixed_sizes_in_a_batch_name_two_files(tmp_path):
    pairs(tmp_path / "data" / "train", [32, 64, 32, 64])
    code, output = train("--data", tmp_path / "data", "--out", tmp_path / "run",
                         "--preprocess", "none", "--batch-size", "2", *SMALL)  # fmt: skip
    assert code == 1 and "Traceback" not in output
    assert "0.png (32x32) and 1.png (64x64) differ" in output and "--batch-size 1" in output


def test_a_later_misfit_is_named_before_training_or_skipped(tmp_path):
    pairs(tmp_path / "data" / "train", [32, 32, 32, 40])  # 40 is no multiple of 32
    args = ["--data", tmp_path / "data", "--preprocess", "none", "--batch-size", "1", *SMALL]
    code, output = train(*args, "--out", tmp_path / "r1")
    assert code == 1 and "3.png" in output and "Traceback" not in output
    assert "--skip-bad to skip such files" in output  # a readable image that does not fit
    assert not (tmp_path / "r1").exists()  # stopped before training, leaving no run folder
    code, output = train(*args, "--out", tmp_path / "r2", "--skip-bad")
    assert code == 0, output


def test_a_misfit_val_image_is_left_out_of_the_sample_grids(tmp_path):
    """With --preprocess none, a val image the generator cannot take used to stop the run
    with a traceback at its first sample grid, losing its steps."""
    pairs(tmp_path / "data" / "train", [32, 32])
    pairs(tmp_path / "data" / "val", [40, 32, 32])  # 40 is no multiple of 32
    with pytest.warns(UserWarning, match="leave out preview example 0"):
        code, output = train("--data", tmp_path / "data", "--out", tmp_path / "run",
                             "--preprocess", "none", "--batch-size", "1", "--set",
                             "train.num_samples=2", *SMALL)  # fmt: skip
    assert code == 0, output
    assert (tmp_path / "run" / "samples.png").is_file()


def test_size_advice_applies_under_preprocess_none(tmp_path):
    """Case 04: the advice works in that mode and does not suggest what the run uses."""
    pairs(tmp_path / "data" / "train", [40, 40])
    code, output = train("--data", tmp_path / "data", "--out", tmp_path / "run",
                         "--preprocess", "none", *SMALL)  # fmt: skip
    line = " ".join(output.split())
    assert code == 1 and "with --preprocess none, images are used at their own size (40x40)" in line
    assert "--depth 3" in line and "resize_and_crop" in line
    assert "(unet_128" not in line and "crop size that is" not in line


def test_crop_preprocessing_names_images_smaller_than_the_crop(tmp_path):
    pairs(tmp_path / "data" / "train", [64, 64, 16])
    args = ["--data", tmp_path / "data", "--preprocess", "crop", "--crop-size", "32", *SMALL]
    code, output = train(*args, "--out", tmp_path / "run")
    assert code == 1 and "2.png" in output and "smaller than the 32 px crops" in output
    code, output = train(*args, "--out", tmp_path / "run2", "--skip-bad")
    assert code == 0, output
    # every image smaller than the crop: skipping them all leaves the reason and the way out
    code, output = train("--data", tmp_path / "data", "--preprocess", "crop", "--crop-size",
                         "128", *SMALL, "--out", tmp_path / "run3", "--skip-bad")  # fmt: skip
    assert code == 1 and "no usable" in output
    assert "the first: " in output and "smaller than the 128 px crops" in output


def test_crop_preprocessing_previews_centre_crops_the_generator_takes(tmp_path):
    """48 px images are no multiple of the generator's 32: training sees 32 px crops, and the
    sample grid shows centre crops of that size rather than failing on whole images."""
    pairs(tmp_path / "data" / "train", [48, 48])
    pairs(tmp_path / "data" / "val", [48])
    code, output = train("--data", tmp_path / "data", "--out", tmp_path / "run",
                         "--preprocess", "crop", "--crop-size", "32", *SMALL)  # fmt: skip
    assert code == 0, output
    assert (tmp_path / "run" / "samples.png").is_file()


def test_preview_view_is_the_centre_crop_under_crop_preprocessing():
    image = torch.arange(48 * 40, dtype=torch.float32).reshape(1, 1, 48, 40)
    sample = {"A": image, "name": ["x"]}
    view = preview_view(sample, DataConfig(preprocess="crop", crop_size=32))
    assert torch.equal(view["A"], image[..., 8:40, 4:36]) and view["name"] == ["x"]
    assert preview_view(sample, DataConfig(preprocess="none")) is sample
