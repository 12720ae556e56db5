"""DCGAN on synthetic MNIST-like digits stored as IDX, `i2i sample`, and the IDX reader."""

import gzip
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from i2i.cli import app
from i2i.config import DataConfig, DCGANConfig, RunConfig
from i2i.data.images import DataError
from i2i.data.unconditional import ImageDataset, read_idx
from i2i.infer.sample import load_generator
from i2i.models import DCGAN
from i2i.train.loop import train

from .conftest import NO_TORCH, tiny_train


def write_idx(path, images: np.ndarray, gz: bool = True) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, images.ndim) + struct.pack(
        f">{images.ndim}I", *images.shape
    )
    raw = header + images.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def fake_digits(n: int, seed: int = 0) -> np.ndarray:
    """28x28 'digits': a bright ring of random radius near the centre on black, like a zero."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    out = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(11, 17, 2)
        r = rng.uniform(5, 9)
        dist = np.hypot(yy - cy, xx - cx)
        out[i] = (np.clip(2.0 - np.abs(dist - r), 0, 1) * 255).astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    path = tmp_path_factory.mktemp("mnist") / "train-images-idx3-ubyte.gz"
    write_idx(path, fake_digits(512))
    return path


def dcgan_config(data, out, **kw) -> RunConfig:
    return RunConfig(
        data=DataConfig(root=str(data), preprocess="none", flip=False, output_nc=1, crop_size=28),
        model=DCGANConfig(latent_dim=32, ngf=64, ndf=32),  # a weaker D lets G keep up
        train=tiny_train(out, **{"batch_size": 32, "lr": 2e-4, "log_every": 5, **kw}),
    )


def test_idx_reader(tmp_path, digits):
    arr = read_idx(digits)
    assert arr.shape == (512, 28, 28) and arr.dtype == np.uint8
    write_idx(tmp_path / "plain-idx3-ubyte", arr[:3], gz=False)
    assert np.array_equal(read_idx(tmp_path / "plain-idx3-ubyte"), arr[:3])
    raw = (tmp_path / "plain-idx3-ubyte").read_bytes()
    (tmp_path / "cut-idx3-ubyte").write_bytes(raw[:-10])
    with pytest.raises(DataError, match="cut-idx3-ubyte: truncated"):
        read_idx(tmp_path / "cut-idx3-ubyte")
    (tmp_path / "junk-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DataError, match="junk-idx3-ubyte: not an IDX file"):
        read_idx(tmp_path / "junk-idx3-ubyte")


def test_image_dataset_from_idx_and_folder(tmp_path, digits):
    ds = ImageDataset(DataConfig(root=str(digits), preprocess="none", output_nc=1), train=False)
    item = ds[0]["image"]
    assert item.shape == (1, 28, 28) and item.min() >= -1 and item.max() <= 1
    for i in range(3):
        Image.new("RGB", (40, 40), (i * 50, 10, 10)).save(tmp_path / f"{i}.png")
    folder = ImageDataset(DataConfig(root=str(tmp_path), preprocess="resize", crop_size=32), False)
    assert len(folder) == 3 and folder[2]["image"].shape == (3, 32, 32)


def test_dcgan_samples_move_toward_the_data(digits, tmp_path):
    """The mean generated image gets measurably closer to the mean training image."""
    cfg = dcgan_config(digits, tmp_path / "run", max_steps=250)
    data_mean = torch.from_numpy(read_idx(digits) / 127.5 - 1).float().mean(0)

    def distance(model: DCGAN) -> float:
        model.eval()
        samples = model.sample(256, torch.Generator().manual_seed(1))[:, 0]
        return (samples.mean(0) - data_mean).abs().mean().item()

    torch.manual_seed(cfg.train.seed)
    before = distance(DCGAN(cfg.model, 1, 28))  # type: ignore[arg-type]
    result = train(cfg, progress=False)
    trained = DCGAN(cfg.model, 1, 28)  # type: ignore[arg-type]
    trained.G = load_generator(result.run_dir, device="cpu")
    after = distance(trained)
    assert after < 0.7 * before, (before, after)
    width, height = Image.open(result.run_dir / "samples.png").size
    assert height < 1.5 * width  # one 8x8 grid of the 64 fixed latents, not one per example


def test_sample_command_writes_n_images(digits, tmp_path):
    run = train(dcgan_config(digits, tmp_path / "run", max_steps=2), progress=False).run_dir
    runner = CliRunner()
    result = runner.invoke(app, ["sample", str(run), "-n", "70", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "s").glob("sample_*.png"))
    assert len(files) == 70 and Image.open(files[0]).size == (28, 28)
    assert (tmp_path / "s" / "grid.png").is_file()
    result = runner.invoke(app, ["sample", str(run), "-n", "5", "--out", str(tmp_path / "s.zip")])
    assert result.exit_code == 0, result.output
    assert len(zipfile.ZipFile(tmp_path / "s.zip").namelist()) == 5
    wrong = runner.invoke(app, ["translate", str(run), str(files[0]), "--out", str(tmp_path)])
    assert wrong.exit_code == 1 and "use `i2i sample`" in wrong.output


def test_sample_refuses_a_translation_model_before_loading_torch(tmp_path):
    pix2pix = Path(__file__).parent / "fixtures" / "v1" / "pix2pix"
    args = ["sample", str(pix2pix), "-n", "2", "--out", str(tmp_path / "s")]
    done = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "False", done  # no torch: answered at once
    error = f"error: {pix2pix}: a pix2pix model translates images; use `i2i translate`"
    assert error in done.stderr.splitlines(), done.stderr
    assert not (tmp_path / "s").exists()


def test_dcgan_sizes():
    with pytest.raises(ValueError, match="not 4 or 7 times a power of two"):
        DCGAN(DCGANConfig(), 1, 30)
    assert DCGAN(DCGANConfig(ngf=8, ndf=8), 3, 64).G(torch.randn(2, 100)).shape == (2, 3, 64, 64)


def test_evaluate_scores_samples_against_the_data(digits, tmp_path):
    from i2i.metrics.evaluate import EvalConfig, evaluate_checkpoint

    from .test_metrics import PoolFeatures

    run = train(dcgan_config(digits, tmp_path / "run", max_steps=2), progress=False).run_dir
    cfg = EvalConfig(metrics=["fid", "kid", "is", "mifid"], limit=64)
    report = evaluate_checkpoint(run, digits, cfg, extractor=PoolFeatures(), progress=False)
    assert report.count == 64
    assert report.metrics["fid"] > 0 and report.metrics["is"] >= 1.0
    assert {"kid", "kid_std", "mifid"} <= set(report.metrics)
    with pytest.raises(Exception, match="ground-truth pairs"):
        evaluate_checkpoint(run, digits, EvalConfig(metrics=["psnr"]), progress=False)
