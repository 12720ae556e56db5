"""The ``i2i`` command end to end on tiny data (in-process, through Typer's runner)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from i2i.cli import app, translate_command
from i2i.config import Pix2PixConfig
from i2i.data.paired import NpzReader

from .conftest import tiny_config

runner = CliRunner()
TINY = [
    "--load-size",
    "36",
    "--crop-size",
    "32",
    "--depth",
    "5",
    "--ngf",
    "8",
    "--ndf",
    "8",
    "--disc-layers",
    "2",
    "--batch-size",
    "4",
    "--no-progress",
]


def run(*args: str, ok: bool = True):
    result = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def test_synth_train_translate(tmp_path):
    run("data", "synth", "--out", tmp_path / "d", "--n-train", 8, "--n-val", 2, "--size", 32)
    assert len(list((tmp_path / "d" / "train").glob("*.png"))) == 8
    out = run("train", "--data", tmp_path / "d", "--out", tmp_path / "r", "--max-steps", 3, *TINY)
    assert "trained 3 steps" in out.output and "i2i translate" in out.output
    out = run(
        "translate",
        tmp_path / "r",
        tmp_path / "d" / "val",
        "--out",
        tmp_path / "t",
        "--input-half",
        "left",
        "--format",
        "jpg",
        "--no-progress",
    )
    assert "translated 2 image(s)" in out.output
    outputs = (tmp_path / "t").iterdir()  # the images, and the manifest of what was done
    assert sorted(p.name for p in outputs) == ["00000.jpg", "00001.jpg", "_manifest.jsonl"]
    # resume may extend training, but not change the model
    out = run("train", "--resume", tmp_path / "r", "--max-steps", 5, "--no-progress")
    assert "trained 5 steps" in out.output
    bad = run("train", "--resume", tmp_path / "r", "--ngf", 16, ok=False)
    assert bad.exit_code == 1 and "only training-length" in bad.output


def test_set_and_config_file(tmp_path):
    run("data", "synth", "--out", tmp_path / "d", "--n-train", 4, "--n-val", 1, "--size", 32)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  gan_mode: lsgan\n")
    run(
        "train",
        "--data",
        tmp_path / "d",
        "--config",
        cfg,
        "--out",
        tmp_path / "r",
        "--max-steps",
        1,
        "--set",
        "model.recon_loss=l2",
        *TINY,
    )
    text = (tmp_path / "r" / "config.yaml").read_text()
    assert "gan_mode: lsgan" in text and "recon_loss: l2" in text
    bad = run("train", "--data", tmp_path / "d", "--set", "model.gan_mode=wgan", ok=False)
    assert bad.exit_code == 1 and "model.gan_mode: 'wgan' is not one of" in bad.output


def test_prepare_combines_folders_splits_and_writes_npz(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(10):
        for side in "AB":
            (tmp_path / "src" / side).mkdir(parents=True, exist_ok=True)
            arr = rng.integers(0, 255, (20, 30, 3), np.uint8)
            Image.fromarray(arr).save(tmp_path / "src" / side / f"{i}.png")
    out = run(
        "data",
        "prepare",
        tmp_path / "src",
        "--out",
        tmp_path / "sbs",
        "--split",
        "0.6,0.2,0.2",
        "--size",
        16,
    )
    assert "'train': 6" in out.output
    assert Image.open(next((tmp_path / "sbs" / "val").iterdir())).size == (32, 16)
    run("data", "prepare", tmp_path / "sbs", "--out", tmp_path / "npz", "--to", "npz")
    reader = NpzReader(tmp_path / "npz" / "test.npz", ["arr_0", "arr_1"])
    assert len(reader) == 2 and reader.a.shape == (2, 16, 16, 3)
    # the npz form reads back as a dataset and trains
    run(
        "train",
        "--data",
        tmp_path / "npz",
        "--out",
        tmp_path / "r",
        "--max-steps",
        1,
        "--preprocess",
        "resize",
        *TINY,
    )
    # other array names, by option
    renamed = tmp_path / "renamed.npz"
    with np.load(tmp_path / "npz" / "train.npz") as z:
        np.savez(renamed, photo=z["arr_0"], label=z["arr_1"])
    run(
        "train",
        "--data",
        renamed,
        "--npz-keys",
        "label,photo",
        "--out",
        tmp_path / "r2",
        "--max-steps",
        1,
        "--preprocess",
        "resize",
        *TINY,
    )
    assert "- label" in (tmp_path / "r2" / "config.yaml").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "/nonexistent"], "/nonexistent: dataset not found"),
        (["train"], "give the dataset with --data"),
        (["translate", "/nonexistent", "x.png", "--out", "o"], "/nonexistent: not found"),
        (["data", "prepare", "/nonexistent", "--out", "o", "--split", "0.5,0.2"], "summing to 1"),
    ],
)
def test_user_errors_are_one_clear_line(args, message):
    result = run(*args, ok=False)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_demo_runs_end_to_end(tmp_path):
    """The README's first command, shortened: data, training, scores, translations."""
    result = CliRunner().invoke(
        app,
        ["demo", "--out", str(tmp_path / "run"), "--data", str(tmp_path / "synth"),
         "--steps", "4"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "before training ->" in result.output
    assert len(list((tmp_path / "run" / "translated").glob("*.png"))) == 50


def test_the_printed_translate_command_tiles_a_model_trained_on_crops(tmp_path):
    """A run trained on crops at the data's own scale is told to translate in tiles of the
    crop size on their own statistics; one trained on resized images, or with batch norm's
    running statistics, is not."""
    cfg = tiny_config(tmp_path, tmp_path / "r")
    assert (
        translate_command(cfg, Path("r")) == "i2i translate r IMAGES_OR_FOLDERS --out translated/"
    )
    cfg.data.preprocess = "crop"
    assert translate_command(cfg, Path("r")).endswith(" --tile 32 --tile-stats tile")
    assert isinstance(cfg.model, Pix2PixConfig)
    cfg.model.generator.norm = "batch"
    assert "--tile" not in translate_command(cfg, Path("r"))
