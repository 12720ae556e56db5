"""Colorization: CIE Lab conversions, lightness kept, a tiny model that learns colours, and the
model through translate, export, serve, evaluate and the sample grid."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from kornia.color import lab_to_rgb, rgb_to_lab
from PIL import Image
from typer.testing import CliRunner

import i2i
from i2i.cli import app
from i2i.config import (
    ColorizationConfig,
    ColorizerConfig,
    DataConfig,
    GeneratorConfig,
    Pix2PixConfig,
    RunConfig,
)
from i2i.data.build import open_datasets
from i2i.data.synth import make_pair
from i2i.data.unconditional import GrayPairs, ImageDataset
from i2i.errors import CheckpointError
from i2i.metrics.colorfulness import colorfulness
from i2i.metrics.evaluate import (
    EvalConfig,
    evaluate_checkpoint,
    evaluate_folders,
    score_translations,
)
from i2i.metrics.scorer import Scorer
from i2i.models import build_model
from i2i.nets import Colorizer, build_net
from i2i.nets.colorizer import l_ab_to_rgb, rgb_to_l_ab, zero_chroma
from i2i.runs.checkpoint import load_network, read_card, resolve_checkpoint
from i2i.serve.app import create_app, load_models
from i2i.train.loop import train

from .conftest import tiny_config

LEVEL = 1 / 255  # one 8-bit level, in [0, 1] units


def write_shapes(root: Path, n_train: int = 64, n_val: int = 16, size: int = 32) -> Path:
    """Colour images of shaded shapes (the renderings of ``data synth``): blue spheres, red
    bricks, green triangles on sand, in ``train/`` and ``val/``."""
    for split, n, split_id in (("train", n_train, 0), ("val", n_val, 1)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            _, rendering = make_pair(size, np.random.default_rng([7, split_id, i]))
            Image.fromarray(rendering).save(root / split / f"{i:03d}.png")
    return root


def tiny_colorization(data: Path, out: Path, **train_options: object) -> RunConfig:
    """The tests' tiny pix2pix, as a colorization model of 8 generator channels."""
    cfg = tiny_config(data, out, **{"batch_size": 8, "lr": 1e-3, **train_options})
    pix2pix = cfg.model
    assert isinstance(pix2pix, Pix2PixConfig)
    generator = replace(pix2pix.generator, ngf=8)
    cfg.model = ColorizationConfig(generator=generator, discriminator=pix2pix.discriminator)
    return cfg


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shapes(tmp_path_factory.mktemp("shapes"))


@pytest.fixture(scope="module")
def run(shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 steps (a few seconds on 2 cores), scored on val every 60 steps, a grid at the end."""
    out = tmp_path_factory.mktemp("colorization") / "run"
    cfg = tiny_colorization(shapes, out, max_steps=120, eval_every=60, eval_metric="psnr")
    return train(cfg, progress=False).run_dir


def lightness(rgb01: torch.Tensor) -> torch.Tensor:
    """CIE L (0..100) of Nx3xHxW RGB in [0, 1], by the library."""
    return rgb_to_lab(rgb01)[:, :1]


# -- CIE Lab ------------------------------------------------------------------------------------
# sRGB colours and their CIE Lab (D65, 2°) as colour calculators publish them (Lindbloom)
PUBLISHED_LAB = [
    ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ((1.0, 0.0, 0.0), (53.24, 80.09, 67.20)),
    ((0.0, 1.0, 0.0), (87.73, -86.18, 83.18)),
    ((0.0, 0.0, 1.0), (32.30, 79.19, -107.86)),
    ((128 / 255, 128 / 255, 128 / 255), (53.59, 0.0, 0.0)),
]


def test_lab_normalisation_matches_published_values():
    rgb = torch.tensor([c for c, _ in PUBLISHED_LAB]).view(-1, 3, 1, 1)
    L, ab = rgb_to_l_ab(rgb * 2 - 1)
    lab = torch.cat([(L + 1) * 50, ab * 110], dim=1).flatten(1)  # the documented scaling
    torch.testing.assert_close(lab, torch.tensor([v for _, v in PUBLISHED_LAB]), atol=0.02, rtol=0)
    assert L.min() >= -1 and L.max() <= 1 and ab.abs().max() <= 1  # the networks' range


def test_lab_round_trip_within_one_level_against_the_library():
    gen = torch.Generator().manual_seed(0)
    levels = torch.arange(256.0).view(1, 1, 16, 16).expand(1, 3, 16, 16) / 255  # every gray
    corners = torch.tensor([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)]).float()
    images = [torch.rand(4, 3, 16, 16, generator=gen), levels, corners.view(8, 3, 1, 1)]
    for rgb in images:
        ours = (l_ab_to_rgb(*rgb_to_l_ab(rgb * 2 - 1)) + 1) / 2
        library = lab_to_rgb(rgb_to_lab(rgb))
        assert (ours - rgb).abs().max() < LEVEL
        assert (ours - library).abs().max() < LEVEL


# -- lightness is the input's ---------------------------------------------------------------
def saturating_colorizer() -> Colorizer:
    """An untrained colorizer whose generator predicts chroma far outside the sRGB gamut."""
    net = build_net("generator", ColorizerConfig(generator=GeneratorConfig(ngf=8, depth=3)), 3, 3)
    assert isinstance(net, Colorizer)
    with torch.no_grad():
        net.generator.up[0][1].bias.copy_(torch.tensor([4.0, -4.0]))  # tanh -> ab ~ (110, -110)
    return net.eval()


def test_the_output_keeps_the_input_lightness_even_out_of_gamut():
    net = saturating_colorizer()
    rgb = torch.rand(3, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = (net(rgb * 2 - 1) + 1) / 2
        ab = net.generator(rgb_to_l_ab(rgb * 2 - 1)[0]) * 110
    assert ab.abs().mean() > 100  # the chroma asked for is out of gamut almost everywhere
    assert (lightness(out) - lightness(rgb)).abs().max() < 1e-3  # L units (0..100)
    eight_bit = (out * 255).round() / 255
    assert (lightness(eight_bit) - lightness(rgb)).abs().max() < 0.5
    # what the gamut mapping avoids: clipping each channel shifts lightness by tens of units
    clipped = lab_to_rgb(torch.cat([lightness(rgb), ab], dim=1))
    assert (lightness(clipped) - lightness(rgb)).abs().max() > 10
    assert colorfulness((out * 255).round()).min() > 30  # and the colour stays


def test_only_the_lightness_of_the_input_matters():
    net = saturating_colorizer()
    rgb = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    gray = zero_chroma(rgb)
    assert colorfulness(((gray + 1) * 127.5).round()).max() < 1
    with torch.no_grad():
        assert (net(rgb) - net(gray)).abs().max() < 1e-4


# -- learning -----------------------------------------------------------------------------------
class ZeroChroma:
    """The "predict no colour" baseline as a translator: each image's gray of the same L."""

    def translate_tensor(self, x: torch.Tensor) -> torch.Tensor:
        return zero_chroma(x)


def test_a_tiny_model_beats_predicting_no_colour_on_held_out_images(run: Path, shapes: Path):
    metrics = ["psnr", "ssim", "colorfulness"]
    report = evaluate_checkpoint(run, shapes, EvalConfig(metrics, device="cpu"), progress=False)
    val = GrayPairs(ImageDataset(DataConfig(root=str(shapes), crop_size=32), False, "val"))
    baseline = Scorer(metrics)
    score_translations(ZeroChroma(), val, baseline, 32, len(val))
    base = baseline.compute()
    assert report.count == len(val) == 16
    assert base["colorfulness"] < 1 < 30 < report.metrics["colorfulness"]
    assert report.metrics["psnr"] > base["psnr"] + 2  # dB; an untrained model scores below
    assert report.metrics["colorfulness_real"] == pytest.approx(base["colorfulness_real"])


# -- the model as a checkpoint: card, translate, export, serve, evaluate, grid -----------------
def test_the_card_describes_the_colorizer_and_its_normalisation(run: Path, tmp_path):
    ckpt = resolve_checkpoint(run)
    card = read_card(ckpt)
    assert card.model == "colorization"
    spec = card.nets["G"]
    assert (spec.in_channels, spec.out_channels) == (3, 3)
    assert isinstance(spec.config, ColorizerConfig) and spec.config.generator.ngf == 8
    assert card.nets["D"].in_channels == 3  # D judges (L, ab)
    assert "L / 50 - 1" in card.normalization and "(a, b) / 110" in card.normalization
    assert isinstance(load_network(ckpt, card, "G"), Colorizer)
    # the card is checked against the weights before anything is built
    data = json.loads((ckpt / "model.json").read_text())
    data["nets"]["G"]["config"]["generator"]["ngf"] = 16
    edited = tmp_path / "edited"
    edited.mkdir()
    (edited / "model.json").write_text(json.dumps(data))
    (edited / "model.safetensors").symlink_to(ckpt / "model.safetensors")
    with pytest.raises(CheckpointError, match="disagree"):
        i2i.load(edited, device="cpu")


def test_translate_colours_gray_and_rgb_files_keeping_their_lightness(run: Path, tmp_path):
    rng = np.random.default_rng(3)
    _, rendering = make_pair(48, rng)
    Image.fromarray(rendering).save(tmp_path / "colour.png")
    Image.fromarray(rendering).convert("L").save(tmp_path / "gray.png")
    result = CliRunner().invoke(
        app,
        ["translate", str(run), str(tmp_path / "colour.png"), str(tmp_path / "gray.png"),
         "--out", str(tmp_path / "out"), "--backend", "torch", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("colour", "gray"):
        source = Image.open(tmp_path / f"{name}.png").convert("RGB")
        out = Image.open(tmp_path / "out" / f"{name}.png")
        assert out.mode == "RGB" and out.size == (48, 48)
        before, after = (torch.from_numpy(np.asarray(im) / 255.0).permute(2, 0, 1)[None].float()
                         for im in (source, out))  # fmt: skip
        assert (lightness(after) - lightness(before)).abs().max() < 0.5
        assert colorfulness(torch.from_numpy(np.array(out)).permute(2, 0, 1)[None]) > 10


def test_export_runs_the_lab_conversion_inside_the_onnx_graph(run: Path, tmp_path):
    result = CliRunner().invoke(app, ["export", str(run), "--onnx", str(tmp_path / "c.onnx")])
    assert result.exit_code == 0, result.output
    torch_model = i2i.load(run, device="cpu", backend="torch")
    onnx_model = i2i.load(tmp_path / "c.onnx")
    assert "L / 50 - 1" in onnx_model.description["normalization"]
    for shape in [(1, 3, 32, 32), (2, 3, 40, 56), (1, 3, 9, 30)]:
        x = torch.rand(shape, generator=torch.Generator().manual_seed(4)) * 2 - 1
        got, expected = onnx_model.translate_tensor(x), torch_model.translate_tensor(x)
        assert (got - expected).abs().max() < 1e-4
    # the ONNX Runtime backend of a checkpoint (its export cached) gives the same
    cached = i2i.load(run, backend="onnxruntime")
    assert cached.backend == "onnxruntime"
    assert (cached.translate_tensor(x) - torch_model.translate_tensor(x)).abs().max() < 1e-4


def test_serve_colours_uploads(run: Path):
    client = TestClient(create_app(load_models([f"colour={run}"], device="cpu")))
    (info,) = client.get("/v1/models").json()["models"]
    assert info["model"] == "colorization" and info["input_channels"] == 3
    _, rendering = make_pair(40, np.random.default_rng(5))
    buf = io.BytesIO()
    Image.fromarray(rendering).convert("L").save(buf, "PNG")
    r = client.post("/v1/models/colour/translate", files={"image": ("g.png", buf.getvalue())})
    assert r.status_code == 200, r.text
    out = Image.open(io.BytesIO(r.content))
    assert out.mode == "RGB" and out.size == (40, 40)
    local = i2i.load(run, device="cpu")(Image.open(io.BytesIO(buf.getvalue())))
    assert np.abs(np.asarray(out, int) - np.asarray(local, int)).max() <= 1


def test_evaluate_command_and_eval_every(run: Path, shapes: Path):
    result = CliRunner().invoke(
        app,
        ["evaluate", str(run), "--data", str(shapes), "--metrics", "psnr,ssim,colorfulness",
         "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "eval-val" / "metrics.json").read_text())
    assert set(saved["metrics"]) == {"psnr", "ssim", "colorfulness", "colorfulness_real"}
    assert saved["count"] == 16
    rows = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [60, 120] and all(r["psnr"] > 15 for r in rows)


def test_the_sample_grid_shows_gray_input_output_original(run: Path, shapes: Path):
    assert (run / "samples.png").is_file()
    cfg = tiny_colorization(shapes, run)
    _, preview = open_datasets(cfg.data, "images")
    assert preview.folder.files[0].parent.name == "val"
    batch = {"image": torch.stack([preview[i]["image"] for i in range(2)])}
    columns = build_model(cfg).preview(batch)
    assert list(columns) == ["gray input", "output", "original"]
    gray, original = columns["gray input"], columns["original"]
    assert torch.equal(original, batch["image"])
    assert colorfulness(((gray + 1) * 127.5).round()).max() < 1
    L_gray, L_original = (lightness((x + 1) / 2) for x in (gray, original))
    assert (L_gray - L_original).abs().max() < 1e-3


# -- data and mistakes --------------------------------------------------------------------------
def test_a_folder_without_split_folders_is_all_training_data(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        Image.new("RGB", (20, 20), (40 * i, 90, 200)).save(flat / f"{i}.png")
    train_set, preview = open_datasets(DataConfig(root=str(flat), crop_size=16), "images")
    assert len(train_set) == len(preview) == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--input-nc", "1"], "colorization reads colour images"),
        (["--eval-every", "5", "--eval-metric", "colorfulness"], "describes outputs"),
    ],
)
def test_mistakes_are_one_clear_line(shapes: Path, tmp_path, extra, message):
    args = ["train", "--model", "colorization", "--data", str(shapes), "--out",
            str(tmp_path / "r"), "--crop-size", "32", "--load-size", "36", "--max-steps", "1",
            "--depth", "5", "--ngf", "4", "--no-progress", *extra]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_colorfulness_of_crafted_images():
    gray = torch.full((1, 3, 8, 8), 120, dtype=torch.uint8)
    red = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    red[:, 0] = 255
    red_green = red.clone()
    red_green[:, :, :, 4:] = torch.tensor([0, 255, 0], dtype=torch.uint8).view(3, 1, 1)
    values = colorfulness(torch.cat([gray, red, red_green]))
    # rg = R - G, yb = (R + G) / 2 - B; M = std(rg, yb) + 0.3 |mean(rg, yb)|
    expected = [0.0, 0.3 * np.hypot(255, 127.5), 255 + 0.3 * 127.5]
    np.testing.assert_allclose(values.numpy(), expected, rtol=1e-9)
    assert colorfulness(gray[:, :1]).item() == 0.0  # 1-channel images are gray


def test_evaluate_folders_reports_colorfulness_of_outputs_and_reals(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "fake").mkdir()
    for i in range(3):
        _, rendering = make_pair(32, np.random.default_rng([9, i]))
        Image.fromarray(rendering).save(tmp_path / "real" / f"{i}.png")
        Image.fromarray(rendering).convert("L").save(tmp_path / "fake" / f"{i}.png")
    report = evaluate_folders(
        tmp_path / "real", tmp_path / "fake", EvalConfig(["colorfulness"]), progress=False
    )
    assert report.metrics["colorfulness"] == 0.0 < 30 < report.metrics["colorfulness_real"]
    assert "| colorfulness | 0 |  |" in report.table()
