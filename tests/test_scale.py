"""Inference at the training scale: cards record how training images were scaled, and
``--resize train|WxH|auto`` (CLI, Python API) translates an image at that scale and returns it
at its own size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import i2i
from i2i.cli import app
from i2i.errors import CheckpointError, ConfigError
from i2i.infer.resize import Resize, resize_array
from i2i.infer.translator import Translator
from i2i.runs.card import ModelCard, ScaleInfo
from i2i.runs.checkpoint import read_card, resolve_checkpoint
from i2i.train.loop import train

from .conftest import tiny_config

V1 = Path(__file__).parent / "fixtures" / "v1"


@pytest.fixture(scope="module")
def run(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pix2pix trained on 32 px crops of images resized to 36 px: its training side is 36."""
    out = tmp_path_factory.mktemp("scale") / "run"
    return train(tiny_config(synth_dir, out, max_steps=2), progress=False).run_dir


def test_cards_record_the_training_scale(run: Path):
    ckpt = resolve_checkpoint(run)
    card = read_card(ckpt)
    assert card.scale == ScaleInfo("resize_and_crop", 36, 32) and card.scale.side == 36
    data = json.loads((ckpt / "model.json").read_text())
    assert data["scale"] == {"preprocess": "resize_and_crop", "load_size": 36, "crop_size": 32}
    assert set(data["translate"]) == {"nets", "default", "train_size"}
    assert ScaleInfo("resize", 286, 256).side == 256 and ScaleInfo("crop", 286, 256).side is None
    # cards written before the field: the run's config says it, or else the training size does
    old = read_card(V1 / "pix2pix")
    assert old.scale is None and old.training_scale() == ScaleInfo("resize_and_crop", 36, 32)
    bare = ModelCard.from_json({**old.to_json(), "config": None})
    assert bare.training_scale() == ScaleInfo("resize", 32, 32)
    with pytest.raises(CheckpointError, match="scale.load_size"):
        ModelCard.from_json({**data, "scale": {**data["scale"], "load_size": 0}})
    with pytest.raises(CheckpointError, match="scale.preprocess: 'squash' is not one of"):
        ModelCard.from_json({**data, "scale": {**data["scale"], "preprocess": "squash"}})


def test_resize_rules():
    train, auto = Resize.parse("train"), Resize.parse("auto")
    assert train.target(600, 400, 286) == (429, 286)  # the shorter side, aspect kept
    assert train.target(300, 900, 256) == (256, 768)
    assert train.target(600, 400, None) is None  # learned at its images' own scale
    assert train.target(429, 286, 286) is None  # already there
    assert auto.target(572, 600, 286) is None and auto.target(800, 573, 286) == (399, 286)
    assert Resize.parse("256x128").target(600, 400, None) == (256, 128)
    assert Resize.parse(None).target(600, 400, 286) is None
    words = train.describe((600, 400), (429, 286))
    assert words == "600x400 -> 429x286 (training scale) -> 600x400"
    for bad in ("big", "0x5", "256", "-2x3"):
        with pytest.raises(ConfigError, match="--resize"):
            Resize.parse(bad)


def test_the_api_translates_at_the_training_scale(run: Path):
    model = i2i.load(run, device="cpu")
    assert model.train_side == 36
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (90, 120, 3), np.uint8))
    out = model(photo, resize="train")
    assert out.size == (120, 90)
    # by hand: down to a 36 px shorter side, translate, back up
    small = resize_array(np.asarray(photo, np.float32) / 255, (48, 36))
    (y,) = model.translate_arrays([small])
    expected = np.clip(resize_array(y, (120, 90)), 0, 1)
    assert np.abs(np.asarray(out).astype(int) - (expected * 255 + 0.5).astype(int)).max() <= 1
    assert not np.array_equal(np.asarray(out), np.asarray(model(photo)))  # not its own scale
    (listed,) = model([photo], resize="train")
    assert np.array_equal(np.asarray(listed), np.asarray(out))
    assert model(np.asarray(photo), resize="60x30").shape == (90, 120, 3)
    onnx = i2i.load(run, backend="onnxruntime")
    assert onnx.train_side == 36
    assert np.abs(np.asarray(onnx(photo, resize="train")).astype(int)
                  - np.asarray(out).astype(int)).max() <= 1  # fmt: skip


def test_translate_resize_train_on_the_command_line(run: Path, tmp_path: Path, monkeypatch):
    seen: list[tuple[int, ...]] = []
    batch = Translator.translate_batch

    def recording(self, x, moments=None):  # the shapes the network is given
        seen.append(x.shape)
        return batch(self, x, moments)

    monkeypatch.setattr(Translator, "translate_batch", recording)
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (90, 120, 3), np.uint8)).save(photos / "a.png")
    Image.fromarray(rng.integers(0, 255, (200, 100, 3), np.uint8)).save(photos / "b.png")
    expected = {  # (H, W) of each network input: the images at a 36 px shorter side, or tiles
        ("train", None): [(36, 48), (72, 36)],
        ("train", "64"): [(36, 48), (64, 36), (64, 36)],  # 72 rows: two 64 px tiles
        ("40x20", None): [(20, 40)],  # both images at 40 x 20: one batch
    }
    for (resize, tile), sizes in expected.items():
        seen.clear()
        out = tmp_path / f"{resize}{tile}"
        tiles = ["--tile", tile, "--overlap", "16"] if tile else []
        args = ["translate", str(run), str(photos), "--out", str(out), "--backend", "torch",
                "--resize", resize, *tiles]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert Image.open(out / "a.png").size == (120, 90)
        assert Image.open(out / "b.png").size == (100, 200)
        assert sorted(s[2:] for s in seen) == sizes
        assert ("at the training scale: shorter side 36 px" in result.output) == (resize == "train")
    result = CliRunner().invoke(app, ["translate", str(run), str(photos), "--out", "x",
                                      "--resize", "huge"])  # fmt: skip
    assert result.exit_code == 1
    assert "--resize 'huge': use train, auto, none or WxH" in result.output
