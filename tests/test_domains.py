"""Any two folders as the domains of unpaired data (``--domain-a``/``--domain-b``, the same keys in
YAML): training, evaluation, ``i2i data unpair``; and evaluation of CycleGAN-layout data that has
testA/ testB/ but no val split."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from i2i.cli import app
from i2i.config import ConfigError, RunConfig, from_dict
from i2i.metrics.evaluate import EvalConfig, evaluate_checkpoint

from .test_metrics import PoolFeatures

TINY = ["--generator", "unet_256", "--depth", "5", "--ngf", "8", "--ndf", "8"]
TINY += ["--disc-layers", "2", "--load-size", "36", "--crop-size", "32", "--batch-size", "2"]
TINY += ["--no-progress"]


def run(*args: object, ok: bool = True):
    result = CliRunner().invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory) -> tuple[Path, Path]:
    """Kaggle's photo -> Monet data in miniature: two folders named as Kaggle names them."""
    root = tmp_path_factory.mktemp("kaggle")
    rng = np.random.default_rng(0)
    for folder, tint, n in (("photo_jpg", (0, 0, 80), 6), ("monet_jpg", (80, 40, 0), 4)):
        (root / folder).mkdir()
        for i in range(n):
            pixels = np.clip(rng.integers(0, 150, (32, 32, 3)) + tint, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / folder / f"{folder[:2]}{i}.jpg")
    return root / "photo_jpg", root / "monet_jpg"


def test_cyclegan_trains_on_two_folders_and_is_evaluated_on_them(kaggle, tmp_path):
    photo, monet = kaggle
    out = tmp_path / "run"
    done = run("train", "--model", "cyclegan", "--domain-a", photo, "--domain-b", monet,
               "--out", out, "--max-steps", 2, *TINY)  # fmt: skip
    assert "trained 2 steps" in done.output and (out / "samples.png").is_file()
    saved = yaml.safe_load((out / "config.yaml").read_text())["data"]
    assert (saved["root"], saved["domain_a"], saved["domain_b"]) == ("", str(photo), str(monet))
    # the same keys in YAML start the same run
    again = run("train", "--config", out / "config.yaml", "--out", tmp_path / "run2",
                "--max-steps", 1, "--no-progress")  # fmt: skip
    assert "trained 1 steps" in again.output

    scores = EvalConfig(metrics=["fid", "kid"])
    report = evaluate_checkpoint(
        out, None, scores, extractor=PoolFeatures(), progress=False, domains=(photo, monet)
    )
    assert report.count == 6 and report.metrics["fid"] > 0
    assert report.source["domain_a"] == str(photo) and "unpaired" in report.notes[-1]

    # CycleGAN archives hold trainA/B and testA/B only: evaluate scores test
    h2z = tmp_path / "h2z"
    for split in ("train", "test"):
        shutil.copytree(photo, h2z / f"{split}A")
        shutil.copytree(monet, h2z / f"{split}B")
    report = evaluate_checkpoint(out, h2z, EvalConfig(metrics=["fid"]), extractor=PoolFeatures(),
                                 progress=False)  # fmt: skip
    assert report.source["split"] == "test" and report.count == 6


def test_domains_are_checked_and_named(kaggle, tmp_path):
    photo, monet = kaggle
    data = {"data": {"domain_a": str(photo), "domain_b": str(monet)}}
    assert from_dict(RunConfig, data).data.domain_b == str(monet)
    with pytest.raises(ConfigError, match="data.domain_a and data.domain_b .* go together"):
        from_dict(RunConfig, {"data": {"domain_a": str(photo)}})
    with pytest.raises(ConfigError, match="data.root .* and data.domain_a/domain_b both"):
        from_dict(RunConfig, {"data": {**data["data"], "root": "x"}})
    pix2pix = run("train", "--domain-a", photo, "--domain-b", monet, "--out", tmp_path / "r",
                  *TINY, ok=False)  # fmt: skip
    assert pix2pix.exit_code == 1
    assert pix2pix.output.strip().splitlines()[-1] == (
        "error: --domain-a/--domain-b name the two domains of unpaired data (cyclegan, cut, "
        "fastcut); pix2pix reads pairs from --data DIR"
    )
    missing = run("train", "--model", "cyclegan", "--domain-a", photo, "--domain-b",
                  tmp_path / "no", "--out", tmp_path / "r", *TINY, ok=False)  # fmt: skip
    assert f"error: {tmp_path / 'no'}: folder not found (given as --domain-b" in missing.output


def test_unpair_gathers_two_folders_into_the_cyclegan_layout(kaggle, tmp_path):
    photo, monet = kaggle
    done = run("data", "unpair", "--domain-a", photo, "--domain-b", monet, "--out", tmp_path / "u")
    assert "copied 6 + 4 images" in done.output
    assert sorted(p.name for p in (tmp_path / "u" / "trainB").iterdir()) == sorted(
        p.name for p in monet.iterdir()
    )
    assert (tmp_path / "u" / "trainA" / "ph0.jpg").read_bytes() == (photo / "ph0.jpg").read_bytes()
    both = run("data", "unpair", photo, "--domain-a", photo, "--domain-b", monet, "--out",
               tmp_path / "v", ok=False)  # fmt: skip
    assert "give a paired SOURCE, or --domain-a DIR --domain-b DIR (not both)" in both.output


def test_unpair_of_pairs_says_per_split_what_it_wrote(synth_dir, tmp_path):
    done = run("data", "unpair", synth_dir, "--out", tmp_path / "u")
    assert (
        f"split the pairs into halves: 32 train (to trainA/ trainB/), 8 val (to valA/ valB/) "
        f"in {tmp_path / 'u'}"
    ) in done.output
    assert len(list((tmp_path / "u" / "valB").iterdir())) == 8
