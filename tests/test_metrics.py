"""Metrics on known answers, the evaluate command, and evaluation during training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from typer.testing import CliRunner

import i2i
from i2i.cli import app
from i2i.config import ConfigError
from i2i.data.synth import write_synthetic
from i2i.infer.tiles import Tiling
from i2i.metrics import distribution as dist
from i2i.metrics import features as feats
from i2i.metrics.evaluate import EvalConfig, evaluate_checkpoint, evaluate_folders
from i2i.metrics.features import Features
from i2i.metrics.paired import l1, pixel_accuracy, psnr, rmse, ssim
from i2i.metrics.scorer import Scorer
from i2i.train.loop import train

from .conftest import tiny_config


class PoolFeatures:
    """A small deterministic extractor: 4x4 average-pooled pixels (48-d) and fixed logits."""

    name = "pool4"
    input_size = 16

    def __init__(self) -> None:
        self.proj = torch.randn(48, 10, generator=torch.Generator().manual_seed(0))

    def __call__(self, images: torch.Tensor) -> Features:
        x = torch.nn.functional.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1)
        return Features(x, x @ self.proj * 5)


def noise_images(n: int, seed: int, size: int = 32, offset: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 120, (n, 3, size, size), generator=g) + offset
    return x.clamp(0, 255).to(torch.uint8)


# -- distribution metrics ---------------------------------------------------------------------
def test_frechet_distance_of_two_gaussians_has_its_closed_form():
    # diagonal covariances: FD = |mu1 - mu2|^2 + sum (s1 - s2)^2 with s the standard deviations
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 1.0, 0.5])
    expected = ((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum()  # 10 + 5 = 15
    got = dist.frechet_from_statistics(mu1, np.diag(s1**2), mu2, np.diag(s2**2))
    assert got == pytest.approx(expected, rel=1e-9)
    assert expected == 15.0


def test_frechet_distance_matches_an_independent_computation():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + np.eye(6), b @ b.T + np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    reference = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)
    assert dist.frechet_from_statistics(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-6)


def test_fid_from_samples_approaches_the_closed_form():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, 2, generator=g)
    y = torch.randn(20000, 2, generator=g) * 2 + torch.tensor([3.0, 0.0])
    # |mu|^2 = 9, sum (1 - 2)^2 = 2
    assert dist.frechet_distance(x, y) == pytest.approx(11.0, rel=0.03)


def test_identical_sets_give_zero_distance_and_full_precision_recall():
    f = torch.randn(200, 16, generator=torch.Generator().manual_seed(1))
    assert abs(dist.frechet_distance(f, f.clone())) < 1e-6
    assert dist.precision_recall(f, f.clone()) == (1.0, 1.0)
    kid, _ = dist.kernel_distance(f, f.clone(), subset_size=100)
    far, _ = dist.kernel_distance(f + 10, f, subset_size=100)
    assert abs(kid) < 0.05 * far


def test_disjoint_sets_give_zero_precision_and_recall():
    f = torch.randn(100, 8, generator=torch.Generator().manual_seed(2))
    assert dist.precision_recall(f + 100, f) == (0.0, 0.0)


def test_inception_score_known_answers():
    uniform = torch.zeros(100, 10)
    assert dist.inception_score(uniform)[0] == pytest.approx(1.0)
    confident = torch.full((100, 10), -50.0)
    confident[torch.arange(100), torch.arange(100) % 10] = 50.0  # sure, and all 10 classes
    assert dist.inception_score(confident, splits=1)[0] == pytest.approx(10.0, rel=1e-6)


def test_mifid_grows_when_fakes_copy_training_images():
    g = torch.Generator().manual_seed(3)
    train_f = torch.randn(300, 16, generator=g)
    fresh = torch.randn(300, 16, generator=g)
    fid = 2.0
    assert dist.mifid(fid, fresh, train_f, eps=0.1) == fid  # far from memorized: plain FID
    copies = train_f + 1e-4 * torch.randn(300, 16, generator=g)
    assert dist.memorization_distance(copies, train_f) < 1e-6
    assert dist.mifid(fid, copies, train_f, eps=0.1) > 1000 * fid


# -- paired metrics -----------------------------------------------------------------------------
def test_paired_metrics_on_crafted_images():
    target = torch.full((1, 3, 8, 8), 100, dtype=torch.uint8)
    output = target.clone()
    output[..., :4, :] += 10  # half the pixels off by 10 levels in every channel
    assert pixel_accuracy(output, target).item() == pytest.approx(0.5)
    assert pixel_accuracy(output, target, threshold=11).item() == pytest.approx(1.0)
    assert rmse(output, target).item() == pytest.approx(np.sqrt(0.5 * 3 * 100))
    assert l1(output, target).item() == pytest.approx(5 / 255)
    shifted = target + 10  # MSE 100 -> PSNR = 10 log10(255^2 / 100)
    assert psnr(shifted, target).item() == pytest.approx(10 * np.log10(255**2 / 100))


def test_ssim_is_one_for_identical_images_and_falls_with_noise():
    images = noise_images(2, 0, size=32)
    assert ssim(images, images).tolist() == pytest.approx([1.0, 1.0])
    noisy = (images.int() + torch.randint(-40, 40, images.shape)).clamp(0, 255).to(torch.uint8)
    assert (ssim(noisy, images) < 0.9).all()


# -- scorer, evaluate ---------------------------------------------------------------------------
def test_scorer_on_identical_and_on_different_sets():
    same, other = noise_images(40, 0), noise_images(40, 1, offset=100)
    scorer = Scorer(["psnr", "fid", "precision", "recall", "is"], PoolFeatures())
    scorer.add_pairs(same, same.clone())
    scores = scorer.compute()
    assert scores["psnr"] == float("inf")
    assert abs(scores["fid"]) < 1e-6
    assert scores["precision"] == scores["recall"] == 1.0
    assert scores["is"] >= 1.0
    scorer = Scorer(["fid", "precision"], PoolFeatures())
    scorer.add_fakes(other)
    scorer.add_reals(same)
    scores = scorer.compute()
    assert scores["fid"] > 0.1 and scores["precision"] == 0.0


def write_folder(folder: Path, images: torch.Tensor) -> Path:
    folder.mkdir(parents=True)
    for i, im in enumerate(images):
        Image.fromarray(im.permute(1, 2, 0).numpy()).save(folder / f"img_{i:03d}.png")
    return folder


def test_evaluate_folders_paired_by_name(tmp_path):
    real = write_folder(tmp_path / "real", noise_images(12, 0))
    fake = write_folder(tmp_path / "fake", noise_images(12, 0))
    cfg = EvalConfig(metrics=["l1", "ssim", "fid", "kid", "precision", "recall"])
    report = evaluate_folders(real, fake, cfg, extractor=PoolFeatures(), progress=False)
    assert report.count == 12
    assert report.metrics["l1"] == 0.0 and report.metrics["ssim"] == pytest.approx(1.0)
    assert abs(report.metrics["fid"]) < 1e-6
    assert report.metrics["precision"] == report.metrics["recall"] == 1.0
    out = report.write(tmp_path / "eval")
    assert json.loads(out.read_text())["metrics"]["l1"] == 0.0
    assert "| ssim |" in (tmp_path / "eval" / "metrics.md").read_text()


def test_evaluate_folders_without_pairs_gives_distribution_metrics_only(tmp_path):
    real = write_folder(tmp_path / "real", noise_images(10, 0))
    fake = write_folder(tmp_path / "fake", noise_images(10, 1, offset=100))
    for p in fake.iterdir():
        p.rename(p.with_name("x" + p.name))
    report = evaluate_folders(real, fake, EvalConfig(), extractor=PoolFeatures(), progress=False)
    distribution = {"fid", "kid", "kid_std", "is", "is_std", "precision", "recall"}
    assert set(report.metrics) == distribution | {"colorfulness", "colorfulness_real"}
    assert report.metrics["fid"] > 0.1
    with pytest.raises(ConfigError, match="ground-truth pairs"):
        evaluate_folders(real, fake, EvalConfig(metrics=["psnr"]), progress=False)


def test_missing_inception_weights_say_which_file_and_where(tmp_path, monkeypatch):
    monkeypatch.delenv(feats.INCEPTION_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(feats.FeatureWeightsMissing) as err:
        feats.build_extractor("inception")
    message = str(err.value)
    assert feats.INCEPTION_FILE in message and "--inception-weights" in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    with pytest.raises(feats.FeatureWeightsMissing, match="nothing.pth"):
        feats.inception_weights_path(str(tmp_path / "nothing.pth"))


def test_inception_weights_that_are_not_plain_tensors_are_refused(tmp_path):
    evil = tmp_path / "evil.pth"
    torch.save({"weights": object.__new__(EvalConfig)}, evil)  # an arbitrary pickled object
    with pytest.raises(feats.FeatureWeightsMissing, match="plain PyTorch state dict"):
        feats.InceptionFeatures(str(evil))


def test_evaluate_checkpoint_and_cli(synth_dir, tmp_path):
    run = train(tiny_config(synth_dir, tmp_path / "run", max_steps=4), progress=False).run_dir
    report = evaluate_checkpoint(
        run,
        synth_dir,
        EvalConfig(metrics=["l1", "psnr", "fid", "mifid"]),
        extractor=PoolFeatures(),
        progress=False,
    )
    assert report.count == 8
    assert report.metrics["mifid"] >= report.metrics["fid"] > 0
    result = CliRunner().invoke(
        app,
        ["evaluate", str(run), "--data", str(synth_dir), "--metrics", "l1,ssim,pixel_acc"],
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "eval-val" / "metrics.json").read_text())
    assert set(saved["metrics"]) == {"l1", "ssim", "pixel_acc"}
    assert "| l1 |" in result.output
    bad = CliRunner().invoke(
        app, ["evaluate", str(run), "--data", str(synth_dir), "--metrics", "x"]
    )
    assert bad.exit_code == 1 and "unknown metric" in bad.output


def test_eval_every_logs_scores_and_keeps_the_best_checkpoint(synth_dir, tmp_path):
    cfg = tiny_config(synth_dir, tmp_path / "run", max_steps=12, eval_every=4, keep=1)
    cfg.train.eval_metric = "psnr"
    result = train(cfg, progress=False)
    rows = [json.loads(line) for line in (result.run_dir / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [4, 8, 12]
    best = max(rows, key=lambda r: r["psnr"])
    ckpts = result.run_dir / "checkpoints"
    assert (ckpts / "best").read_text() == f"step_{best['step']:08d}"
    assert json.loads((ckpts / "best.json").read_text())["value"] == pytest.approx(best["psnr"])
    model = i2i.load(ckpts / "best")  # the pointer file works as a checkpoint path
    assert model.description["step"] == best["step"]


def test_eval_every_scores_a_crop_trained_run_in_tiles_as_evaluate_does(tmp_path, caplog):
    """Trained on 32 px crops of 64 px images with instance norm: the score that picks the best
    checkpoint is `i2i evaluate --tile 32 --tile-stats tile`'s, not the whole images'."""
    data = write_synthetic(tmp_path / "data", 8, 4, 64, seed=1, progress=False)
    cfg = tiny_config(data, tmp_path / "run", max_steps=3, eval_every=3)
    cfg.data.preprocess, cfg.train.eval_metric = "crop", "psnr"
    with caplog.at_level("INFO", logger="i2i"):
        run = train(cfg, progress=False).run_dir
    assert "--eval-every scores val in 32 px tiles, each on its own statistics" in caplog.text
    logged = json.loads((run / "eval.jsonl").read_text().splitlines()[-1])["psnr"]
    ckpt = run / "checkpoints" / "step_00000003"
    tiles = EvalConfig(metrics=["psnr"], tiling=Tiling(32, 8, "tile"))
    tiled = evaluate_checkpoint(ckpt, data, tiles, progress=False).metrics["psnr"]
    whole = evaluate_checkpoint(ckpt, data, EvalConfig(metrics=["psnr"]), progress=False)
    assert logged == pytest.approx(tiled, abs=1e-4)
    assert abs(logged - whole.metrics["psnr"]) > 1e-3  # whole images would score otherwise


def test_eval_metric_is_checked_before_training(synth_dir, tmp_path):
    cfg = tiny_config(synth_dir, tmp_path / "run", eval_every=2)
    cfg.train.eval_metric = "accuracy"
    with pytest.raises(ConfigError, match="unknown metric"):
        train(cfg, progress=False)


def test_evaluate_says_when_it_resized_outputs_and_shows_a_gallery(tmp_path):
    """Case 09: outputs of 99x99 against 100x100 targets are not resized silently."""
    rng = np.random.default_rng(0)
    for folder in ("real", "fake"):
        (tmp_path / folder).mkdir()
    for i in range(3):
        a = rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)
        Image.fromarray(a).save(tmp_path / "real" / f"{i}.png")
        Image.fromarray(a[:99, :99]).save(tmp_path / "fake" / f"{i}.png")
    report = evaluate_folders(tmp_path / "real", tmp_path / "fake", EvalConfig(metrics=["psnr"]))
    assert any("3 output(s) (99x99) differ in size from their targets (100x100)" in n
               for n in report.notes)  # fmt: skip
    written = report.write(tmp_path / "ev")
    assert "differ in size" in written.read_text()
    gallery = Image.open(tmp_path / "ev" / "gallery.png")
    assert gallery.size[1] > gallery.size[0]  # three rows of output | target


def test_evaluate_names_the_outputs_without_a_target(tmp_path):
    for folder in ("real", "fake"):
        (tmp_path / folder).mkdir()
    for i in range(5):
        Image.new("RGB", (8, 8)).save(tmp_path / "real" / f"{i}.png")
        Image.new("RGB", (8, 8)).save(tmp_path / "fake" / f"{i if i < 3 else i + 10}.png")
    with pytest.raises(ConfigError, match=r"3 of 5 outputs in .*fake have a real image .*13\.png"):
        evaluate_folders(tmp_path / "real", tmp_path / "fake", EvalConfig(metrics=["l1"]))


def test_per_class_iou_on_crafted_maps(tmp_path):
    """Two classes, crafted: the output gets half of the road right and paints one land column
    as road; IoU_road = 8 / (16 + 8) and IoU_land = 40 / (48 + 8) over the 8x8 image."""
    from i2i.metrics.palette import Palette

    palette_file = tmp_path / "p.yaml"
    palette_file.write_text("land: [232, 228, 220]\nroad: [255, 255, 255]\n")
    palette = Palette.read(palette_file)
    target = np.full((8, 8, 3), (232, 228, 220), np.uint8)
    target[:, :2] = 250  # a road two columns wide (near white, as JPEG noise leaves it)
    output = np.full((8, 8, 3), (230, 230, 218), np.uint8)
    output[:, :1] = 255  # half of the road
    output[:, 7:] = 254  # and a road where there is land
    as_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None]  # noqa: E731
    scorer = Scorer(["miou", "pixel_acc"], palette=palette)
    scorer.add_pairs(as_tensor(output), as_tensor(target))
    got = scorer.compute()
    assert got["iou_road"] == pytest.approx(8 / 24)
    assert got["iou_land"] == pytest.approx(40 / 56)
    assert got["miou"] == pytest.approx((8 / 24 + 40 / 56) / 2)
    with pytest.raises(ConfigError, match="--palette"):
        Scorer(["miou"])
    (tmp_path / "bad.yaml").write_text("land: [300, 0, 0]\nroad: [1, 2, 3]\n")
    with pytest.raises(ConfigError, match="land: color must be"):
        Palette.read(tmp_path / "bad.yaml")
