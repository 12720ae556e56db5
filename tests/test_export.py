"""ONNX export and the onnxruntime backend; tiled translation of large images."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

import i2i
from i2i.cli import app
from i2i.config import GeneratorConfig
from i2i.errors import ConfigError
from i2i.infer import onnx as onnx_module
from i2i.infer import translator as translator_module
from i2i.infer.batch import translate_files
from i2i.infer.onnx import OnnxGenerator, export_bytes
from i2i.infer.tiles import Tiling, overview, ramp, tile_starts, translate_tiled
from i2i.infer.translator import Translator, fastest_backend
from i2i.infer.writers import ImageWriter
from i2i.nets import build_generator
from i2i.runs.checkpoint import resolve_checkpoint
from i2i.train.loop import train

from .conftest import tiny_config

ONNX_TOLERANCE = 1e-4  # max |difference| of network outputs in [-1, 1]


@pytest.fixture(scope="module")
def run(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "run"
    return train(tiny_config(synth_dir, out, max_steps=3), progress=False).run_dir


def test_onnx_export_matches_pytorch_on_dynamic_shapes(run: Path, tmp_path: Path):
    result = CliRunner().invoke(app, ["export", str(run), "--onnx", str(tmp_path / "g.onnx")])
    assert result.exit_code == 0, result.output
    torch_model = i2i.load(run, device="cpu")
    onnx_model = i2i.load(tmp_path / "g.onnx")
    assert onnx_model.backend == "onnxruntime" and onnx_model.size_multiple == 32
    # other batch, height and width than the export; padded by reflection; by replication
    for shape in [(1, 3, 32, 32), (3, 3, 64, 96), (2, 3, 40, 50), (1, 3, 10, 45)]:
        x = torch.rand(shape) * 2 - 1
        expected = torch_model.translate_tensor(x)
        got = onnx_model.translate_tensor(x)
        assert (got - expected).abs().max().item() < ONNX_TOLERANCE
    # dropout is off in the export: the same input gives the same output
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(onnx_model.translate_tensor(x), onnx_model.translate_tensor(x))


def test_onnxruntime_backend_from_a_checkpoint_and_in_translate(run: Path, tmp_path: Path):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), np.uint8))
    a = np.asarray(i2i.load(run, device="cpu")(image)).astype(int)
    b = np.asarray(i2i.load(run, backend="onnxruntime")(image)).astype(int)
    assert np.abs(a - b).max() <= 1
    image.save(tmp_path / "in.png")
    result = CliRunner().invoke(
        app,
        ["translate", str(run), str(tmp_path / "in.png"), "--out", str(tmp_path / "out"),
         "--backend", "onnxruntime"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out" / "in.png").size == (50, 40)


def test_translating_with_a_cached_export_never_imports_torch(run: Path, tmp_path: Path):
    """`import torch` costs 2-3 s of every `i2i translate`; a CPU run whose export is cached
    needs only numpy and ONNX Runtime."""
    i2i.load(run, backend="onnxruntime")  # exports into this session's private cache
    Image.new("RGB", (40, 30), "red").save(tmp_path / "in.png")
    args = ["translate", str(run), str(tmp_path / "in.png"), "--out", str(tmp_path / "out"),
            "--device", "cpu", "--no-progress"]  # fmt: skip
    script = (
        "import sys\nfrom i2i.cli import app\n"
        f"app({args!r}, standalone_mode=False)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:3])"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert Image.open(tmp_path / "out" / "in.png").size == (40, 30)


def test_auto_backend_picks_onnxruntime_on_the_cpu_and_torch_on_cuda(monkeypatch):
    monkeypatch.setattr(translator_module, "GPU_DEVICE_FILES", ())  # a machine without a GPU
    assert fastest_backend("cpu") == fastest_backend("auto") == "onnxruntime"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(translator_module, "GPU_DEVICE_FILES", ("/",))  # a driver is there
    assert fastest_backend("auto") == fastest_backend("cuda") == "torch"
    assert fastest_backend("cpu") == "onnxruntime"


def local_net() -> Translator:
    """A generator whose outputs depend only on a ~47 px neighbourhood (no global norm), so tiles
    can reproduce the whole-image output exactly away from tile edges."""
    torch.manual_seed(0)
    cfg = GeneratorConfig(kind="resnet_6blocks", depth=1, ngf=8, norm="none", dropout=0.0)
    return Translator(build_generator(cfg, 3, 3))


def test_tiled_equals_untiled_away_from_tile_edges_and_shows_no_seam():
    t = local_net()
    rng = np.random.default_rng(1)
    # a smooth random image, so a seam would stand out against its small local changes
    small = rng.random((12, 14, 3))
    image = np.asarray(
        Image.fromarray((small * 255).astype(np.uint8)).resize((224, 224), Image.BICUBIC)
    )
    whole = t(image).astype(int)
    tiled = translate_tiled(t, image, tile=128, overlap=32).astype(int)  # tiles at 0 and 96
    assert tiled.shape == whole.shape
    mask = np.ones(image.shape[:2], bool)  # pixels over 24 px (the field's radius) from edges
    for axis, length in ((0, 224), (1, 224)):
        for start in tile_starts(length, 128, 32):
            for edge in (start, start + 128):
                if 0 < edge < length:
                    lo, hi = max(0, edge - 24), min(length, edge + 24)
                    if axis == 0:
                        mask[lo:hi] = False
                    else:
                        mask[:, lo:hi] = False
    assert mask.mean() > 0.3
    assert np.abs(tiled - whole)[mask].max() <= 1  # equal up to 8-bit rounding
    # no seam: across tile borders the output changes no more than it does elsewhere
    step = np.abs(np.diff(tiled, axis=1)).mean(axis=(0, 2))
    borders = [95, 127]  # where tile 2 starts and tile 1 ends
    assert step[borders].max() < 3 * np.median(step)


def instance_norm_net(backend: str) -> Translator:
    """A CycleGAN-style generator (ResNet, instance norm): each layer normalizes by the whole
    input's statistics, so a tile normalized by its own would differ from the whole image."""
    torch.manual_seed(0)
    cfg = GeneratorConfig(kind="resnet_9blocks", depth=3, ngf=8, norm="instance", dropout=0.0)
    net = build_generator(cfg, 3, 3).eval()
    if backend == "torch":
        return Translator(net)
    return Translator(OnnxGenerator(export_bytes(net, 3, {})), "cpu", 3, {})


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_tiles_of_an_instance_norm_generator_agree_with_the_whole_image(backend):
    t = instance_norm_net(backend)
    assert t.image_statistics
    small = np.random.default_rng(1).random((12, 14, 3))
    image = np.asarray(
        Image.fromarray((small * 255).astype(np.uint8)).resize((320, 224), Image.BICUBIC)
    )
    whole = t(image).astype(int)
    tiled = translate_tiled(t, image, tile=128, overlap=64).astype(int)  # 3 x 4 tiles
    assert np.abs(tiled - whole).max() <= 4  # within a few levels everywhere
    # stats="tile": each tile on its own statistics: tile-shaped blocks tens of levels off the
    # whole image, and each tile exactly as it would be translated alone
    alone = translate_tiled(t, image, tile=128, overlap=64, stats="tile").astype(int)
    assert np.abs(alone - whole).max() > 30
    strip = translate_tiled(t, image[:128, :256], tile=128, overlap=0, stats="tile").astype(int)
    for x in (0, 128):
        assert np.abs(strip[:, x : x + 128] - t(image[:128, x : x + 128]).astype(int)).max() <= 1
    with pytest.raises(ConfigError, match="--tile-stats 'own': use image .* or tile"):
        translate_tiled(t, image, tile=128, overlap=64, stats="own")  # type: ignore[arg-type]
    # the model's method gives what calling the model gives: a PIL image for a PIL image
    picture = t.translate_tiled(Image.fromarray(image), tile=128, overlap=64, stats="tile")
    assert isinstance(picture, Image.Image) and np.array_equal(np.asarray(picture), alone)
    assert np.array_equal(t.translate_tiled(image, 128, 64, "tile"), alone)


def test_statistics_of_large_images_come_from_a_box_averaged_copy(tmp_path):
    rng = np.random.default_rng(2)
    array = rng.integers(0, 255, (600, 90, 3), np.uint8)  # 600 rows: over 2 strips of 256
    np.save(tmp_path / "a.npy", array)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    small = overview(mapped, 3, 600 * 90 // 9)  # box-averaged by 3
    expected = (array / 255.0).reshape(200, 3, 30, 3, 3).mean(axis=(1, 3))
    assert small.shape == (200, 30, 3) and np.abs(small - expected).max() < 1e-5
    pil = overview(Image.fromarray(array), 3, 600 * 90 // 9)
    assert pil.shape == (200, 30, 3) and np.abs(pil - expected).max() <= 1 / 255 + 1e-6
    sixteen = Image.fromarray(array[..., 0].astype(np.uint16) * 257)
    assert overview(sixteen, 3, 600 * 90 // 9).shape == (200, 30, 3)
    assert overview(mapped, 3, 10**9).shape == (600, 90, 3)  # small enough: as it is
    t = instance_norm_net("torch")
    out = translate_tiled(t, mapped, tile=64, overlap=16, stats_pixels=600 * 90 // 4)
    assert out.shape == (600, 90, 3)


def test_tiles_bound_memory_and_cover_huge_images():
    t = local_net()
    image = np.full((64, 2000, 3), 128, np.uint8)  # wide strip: float buffers stay one tile tall
    out = np.lib.format.open_memmap("/dev/shm/i2i_tiles.npy", "w+", np.uint8, (64, 2000, 3))
    result = translate_tiled(t, image, tile=64, overlap=16, out=out)
    assert result is out and out.shape == (64, 2000, 3)
    inner = np.asarray(out[:, 100:1900])
    assert inner.std(axis=1).max() < 2  # a flat input gives a flat output, tile after tile


def test_tile_layout_and_ramps():
    assert tile_starts(100, 128, 32) == [0]
    assert tile_starts(300, 128, 32) == [0, 96, 172]
    w = ramp(8, 4, before=True, after=False)
    assert w[0] == pytest.approx(0.125) and w[-1] == 1.0 and (w > 0).all()
    with pytest.raises(ValueError, match="multiple of"):
        translate_tiled(local_net(), np.zeros((64, 64, 3), np.uint8), tile=30, overlap=4)


def test_translate_cli_tiles_a_large_image(run: Path, tmp_path: Path):
    big = Image.fromarray(np.random.default_rng(2).integers(0, 255, (300, 420, 3), np.uint8))
    big.save(tmp_path / "mosaic.png")
    result = CliRunner().invoke(
        app,
        ["translate", str(run), str(tmp_path / "mosaic.png"), "--out", str(tmp_path / "o"),
         "--tile", "128", "--overlap", "32"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "o" / "mosaic.png").size == (420, 300)


def test_crop_trained_models_translate_and_score_in_tiles_of_their_own_statistics(
    run: Path, synth_dir: Path, tmp_path: Path
):
    """--tile-stats tile: each tile as the model saw crops in training (and not as the whole
    image's statistics would have it); evaluate translates the same way when asked."""
    photo = np.random.default_rng(4).integers(0, 255, (64, 96, 3), np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    outs = {}
    for stats in ("image", "tile"):
        result = CliRunner().invoke(app, [
            "translate", str(run), str(tmp_path / "photo.png"), "--out", str(tmp_path / stats),
            "--tile", "32", "--overlap", "0", "--tile-stats", stats, "--no-progress"])  # fmt: skip
        assert result.exit_code == 0, result.output
        outs[stats] = np.asarray(Image.open(tmp_path / stats / "photo.png"), int)
    model = i2i.load(run)
    corner = np.asarray(model(Image.fromarray(photo[:32, :32])), int)  # a tile translated alone
    assert np.abs(outs["tile"][:32, :32] - corner).max() <= 1
    assert (
        np.abs(outs["tile"] - outs["image"]).max() > np.abs(outs["tile"][:32, :32] - corner).max()
    )
    scores = {}
    for args in ([], ["--tile", "32", "--tile-stats", "tile"]):
        out = tmp_path / f"eval{len(args)}"
        result = CliRunner().invoke(app, ["evaluate", str(run), "--data", str(synth_dir),
                                          "--metrics", "l1,rmse", "--out", str(out),
                                          "--no-progress", *args])  # fmt: skip
        assert result.exit_code == 0, result.output
        scores[len(args)] = json.loads((out / "metrics.json").read_text())
    assert scores[4]["source"]["tiling"] == {"tile": 32, "overlap": 8, "stats": "tile"}
    assert "tiling" not in scores[0]["source"]
    assert not any("--tile-stats" in note for note in scores[0]["notes"])  # trained on resizes
    assert "tiling: tile=32 overlap=8 stats=tile" in (tmp_path / "eval4" / "metrics.md").read_text()
    # the 32 px val images are one tile each: tiled on their own statistics = whole
    for metric in ("l1", "rmse"):
        assert scores[4]["metrics"][metric] == pytest.approx(scores[0]["metrics"][metric], abs=0.02)


def test_evaluate_says_how_to_score_a_model_trained_on_crops(synth_dir: Path, tmp_path: Path):
    cfg = tiny_config(synth_dir, tmp_path / "crops", max_steps=2)
    cfg.data.preprocess = "crop"
    run = train(cfg, progress=False).run_dir
    args = ["evaluate", str(run), "--data", str(synth_dir), "--metrics", "l1", "--no-progress"]
    whole = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "e1")])
    assert whole.exit_code == 0, whole.output
    hint = "note: trained on 32 px crops at the data's scale: --tile 32 --tile-stats tile scores"
    assert hint in whole.output
    tiled = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "e2"), "--tile", "32",
                                     "--tile-stats", "tile"])  # fmt: skip
    assert tiled.exit_code == 0 and "--tile-stats" not in tiled.output, tiled.output
    # without --out, tiled scores go beside the whole-image ones, not over them
    for extra in ([], ["--tile", "32", "--tile-stats", "tile"]):
        assert CliRunner().invoke(app, [*args, *extra]).exit_code == 0
    assert (run / "eval-val" / "metrics.json").is_file()
    tiled_json = json.loads((run / "eval-val-tiles32" / "metrics.json").read_text())
    assert tiled_json["source"]["tiling"]["stats"] == "tile"


def test_npy_mosaics_are_memory_mapped_in_and_out(run: Path, tmp_path: Path):
    rng = np.random.default_rng(3)
    array = rng.integers(0, 255, (160, 224, 3), np.uint8)
    np.save(tmp_path / "mosaic.npy", array)
    Image.fromarray(array).save(tmp_path / "mosaic.png")
    args = ["--tile", "64", "--overlap", "16"]
    for name in ("mosaic.npy", "mosaic.png"):
        result = CliRunner().invoke(
            app, ["translate", str(run), str(tmp_path / name), "--out", str(tmp_path / "o"), *args]
        )
        assert result.exit_code == 0, result.output
    from_npy = np.load(tmp_path / "o" / "mosaic.npy", mmap_mode="r")
    from_png = np.asarray(Image.open(tmp_path / "o" / "mosaic.png"))
    assert from_npy.shape == (160, 224, 3) and np.array_equal(from_npy, from_png)
    records = [json.loads(line) for line in (tmp_path / "o" / "_manifest.jsonl").open()]
    assert {r["output"]: r["bytes"] for r in records} == {
        name: (tmp_path / "o" / name).stat().st_size for name in ("mosaic.npy", "mosaic.png")
    }
    assert not list((tmp_path / "o").glob(".*"))  # the mosaic's temporary file moved in place


def test_bad_npy_mosaics_are_bad_files_and_folders_hold_arrays(run: Path, tmp_path: Path):
    """A truncated or float .npy is one bad input, named, that --skip-bad skips (it ended the
    run with a traceback, or stopped every input); a folder's arrays are translated with
    --tile (they were ignored), and without --tile a .npy says to add it."""
    folder = tmp_path / "in"
    folder.mkdir()
    good = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    np.save(folder / "good.npy", good)
    Image.fromarray(good).save(folder / "photo.png")
    (folder / "truncated.npy").write_bytes((folder / "good.npy").read_bytes()[:2000])
    np.save(folder / "floats.npy", good.astype(np.float32))
    args = ["translate", str(run), str(folder), "--tile", "32", "--overlap", "8", "--no-progress"]
    bad = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o1")])
    assert bad.exit_code == 1 and "Traceback" not in bad.output, bad.output
    assert "floats.npy: float32 pixels; save the array as uint8" in bad.output
    assert "2 of 4 inputs could not be translated; the others were written" in bad.output
    kept = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o2"), "--skip-bad"])
    assert kept.exit_code == 0, kept.output
    assert "truncated.npy (skipped, --skip-bad): not a readable .npy array" in kept.output
    records = {
        r["output"]: r for r in map(json.loads, (tmp_path / "o2" / "_manifest.jsonl").open())
    }
    assert {name: r["status"] for name, r in records.items()} == {
        "floats.npy": "failed", "good.npy": "written", "photo.png": "written",
        "truncated.npy": "failed",
    }  # fmt: skip
    assert np.array_equal(np.load(tmp_path / "o2" / "good.npy"),
                          np.asarray(Image.open(tmp_path / "o2" / "photo.png")))  # fmt: skip
    untiled = CliRunner().invoke(app, ["translate", str(run), str(folder / "good.npy"), "--out",
                                       str(tmp_path / "o3"), "--no-progress"])  # fmt: skip
    assert untiled.exit_code == 1
    assert "good.npy: .npy arrays are translated in tiles, memory-mapped; add --tile" in (
        untiled.output
    )
    assert "1 of 1 inputs could not be translated;" in untiled.output
    assert "the others were written" not in untiled.output


def test_a_killed_mosaic_leaves_no_temporary_file(run: Path, tmp_path: Path, monkeypatch):
    np.save(tmp_path / "mosaic.npy", np.zeros((96, 96, 3), np.uint8))
    Image.new("RGB", (32, 32)).save(tmp_path / "other.png")
    translator, out, tiling = i2i.load(run), tmp_path / "o", Tiling(64, 16)

    def killed(*args: object) -> None:  # after the mosaic is translated, before it is in place
        raise KeyboardInterrupt

    monkeypatch.setattr(ImageWriter, "append_text", killed)
    with pytest.raises(KeyboardInterrupt):
        translate_files(translator, [tmp_path / "mosaic.npy"], out, tiling=tiling, progress=False)
    assert len(list(out.glob(".*"))) == 1  # what the kill left
    monkeypatch.undo()
    translate_files(translator, [tmp_path / "other.png"], out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["_manifest.jsonl", "other.png"]


def test_onnx_exports_are_cached_per_checkpoint_contents(run: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("I2I_CACHE", str(tmp_path / "cache"))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8))
    first = i2i.load(run, backend="onnxruntime")
    (made,) = (tmp_path / "cache" / "onnx").glob("*.onnx")  # the first load exported and saved
    inode = made.stat().st_ino
    again = i2i.load(run, backend="onnxruntime")  # the second reads it, without writing it again
    assert made.stat().st_ino == inode and len(list(made.parent.iterdir())) == 1
    assert np.array_equal(np.asarray(first(image)), np.asarray(again(image)))
    # other weights under the same path make another export, with their own results
    copy = tmp_path / "ckpt"
    shutil.copytree(resolve_checkpoint(run), copy)
    weights = load_file(copy / "model.safetensors")
    save_file({k: v * 0.5 if k.endswith("weight") else v for k, v in weights.items()},
              copy / "model.safetensors")  # fmt: skip
    changed = i2i.load(copy, backend="onnxruntime")
    assert len(list(made.parent.glob("*.onnx"))) == 2
    assert not np.array_equal(np.asarray(first(image)), np.asarray(changed(image)))
    # the cache keeps the most recently used exports only
    monkeypatch.setattr(onnx_module, "CACHE_KEEP", 2)
    for i in range(2):  # two older exports of other checkpoints
        (old := tmp_path / "cache" / "onnx" / f"old{i}.onnx").write_bytes(b"")
        os.utime(old, (1e9 + i, 1e9 + i))
    i2i.load(run, backend="onnxruntime")  # a hit: now the most recently used
    save_file({k: v * 0.25 if k.endswith("weight") else v for k, v in weights.items()},
              copy / "model.safetensors")  # fmt: skip
    i2i.load(copy, backend="onnxruntime")  # a new export: prunes to the 2 most recent
    kept = sorted(made.parent.glob("*.onnx"))
    assert len(kept) == 2 and made in kept and not any(f.name.startswith("old") for f in kept)
