"""CycleGAN and CUT on tiny synthetic unpaired data, the image pool, and `i2i data unpair`."""

import math
import statistics
import zipfile

import pytest
import torch
from PIL import Image
from torch import nn

import i2i
from i2i.config import (
    ConfigError,
    CUTConfig,
    CycleGANConfig,
    DataConfig,
    DiscriminatorConfig,
    GeneratorConfig,
    RunConfig,
    from_dict,
)
from i2i.data.paired import PairedDataset
from i2i.data.prepare import unpair
from i2i.data.unpaired import UnpairedDataset
from i2i.infer import translate_files
from i2i.losses import patch_nce_loss
from i2i.models import CUT, CycleGAN
from i2i.models.pool import ImagePool
from i2i.train.loop import train
from i2i.train.monitor import read_metrics

from .conftest import tiny_train


@pytest.fixture(scope="module")
def unpaired_dir(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("unpaired")
    unpair(synth_dir, out, progress=False)
    return out


class Shift(nn.Module):
    def forward(self, x):
        return x + 0.25


def tiny_unpaired(data, out, model, **train_kw) -> RunConfig:
    train_kw = {"batch_size": 2, "epochs": 100, **train_kw}
    model.generator = GeneratorConfig(kind="unet_256", depth=5, ngf=8, dropout=0.0)
    model.discriminator = DiscriminatorConfig(n_layers=2, ndf=8)
    return RunConfig(
        data=DataConfig(root=str(data), load_size=36, crop_size=32),
        model=model,
        train=tiny_train(out, **train_kw),
    )


# -- data --------------------------------------------------------------------------------------
def test_unpair_shuffles_train_and_keeps_val_pairs(synth_dir, unpaired_dir):
    names_a = sorted(p.name for p in (unpaired_dir / "trainA").iterdir())
    names_b = sorted(p.name for p in (unpaired_dir / "trainB").iterdir())
    assert len(names_a) == len(names_b) == 32
    assert not set(names_a) & set(names_b)  # nothing pairs train images by name any more
    # the val split is still paired, and equal to the original pairs
    original = PairedDataset(DataConfig(root=str(synth_dir), crop_size=32), "val", False)
    kept = PairedDataset(DataConfig(root=str(unpaired_dir), crop_size=32), "val", False)
    assert kept.location.layout == "ab_folders" and len(kept) == 8
    assert torch.allclose(original[3]["B"], kept[3]["B"], atol=1e-6)


def test_unpaired_sampling_is_random_per_epoch_or_serial(unpaired_dir):
    cfg = DataConfig(root=str(unpaired_dir), load_size=36, crop_size=32)
    ds = UnpairedDataset(cfg, "train", train=True)
    partners = {ds[(0, seed)]["B"].sum().item() for seed in range(20)}
    assert len(partners) > 5  # A[0] meets many B images
    assert torch.equal(ds[(0, 3)]["B"], ds[(0, 3)]["B"])  # but the seed fixes the draw
    cfg.serial = True
    serial = UnpairedDataset(cfg, "train", train=False)
    assert torch.equal(serial[(5, 1)]["B"], serial[(5, 2)]["B"])


def test_domains_of_different_sizes(tmp_path):
    for side, n in (("A", 3), ("B", 5)):
        (tmp_path / f"train{side}").mkdir()
        for i in range(n):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / f"train{side}" / f"{i}.png")
    ds = UnpairedDataset(DataConfig(root=str(tmp_path), preprocess="none"), "train", False)
    assert len(ds) == 5
    assert ds[4]["A"].shape == (3, 8, 8)


def test_missing_unpaired_folders_are_named(tmp_path):
    with pytest.raises(Exception, match="expected folders trainA/ and trainB/"):
        UnpairedDataset(DataConfig(root=str(tmp_path)), "train", True)


# -- CycleGAN ----------------------------------------------------------------------------------
def test_image_pool_returns_past_images_half_the_time_once_full():
    torch.manual_seed(0)
    pool = ImagePool(size=10)
    first = pool.query(torch.arange(10.0).view(10, 1, 1, 1))
    assert first.flatten().tolist() == list(range(10))  # filling: the inputs come back
    old = 0
    for i in range(2000):
        value = 100.0 + i
        out = pool.query(torch.full((1, 1, 1, 1), value))
        old += int(out.item() != value)
    assert 0.45 < old / 2000 < 0.55
    assert ImagePool(size=0).query(torch.ones(2, 1, 1, 1)).shape == (2, 1, 1, 1)


def test_identity_loss_is_zero_for_identity_generators():
    model = CycleGAN(tiny_unpaired("x", "y", CycleGANConfig()).model)  # type: ignore[arg-type]
    model.G, model.F = nn.Identity(), nn.Identity()
    a, b = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert all(v.item() == 0 for v in model.identity_losses(a, b).values())
    model.F = Shift()
    assert model.identity_losses(a, b)["idt_A"].item() == pytest.approx(0.25)


@pytest.mark.parametrize(("kind", "expected"), [("l1", 2.0), ("l2", 4.0), ("l1+l2", 3.0)])
def test_cycle_loss_variants_on_known_inputs(kind, expected):
    cfg = tiny_unpaired("x", "y", CycleGANConfig(cycle_loss=kind)).model
    model = CycleGAN(cfg)  # type: ignore[arg-type]
    assert model.cycle(torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 2.0)).item() == expected


def test_cyclegan_cycle_loss_falls_and_both_directions_translate(unpaired_dir, tmp_path):
    cfg = tiny_unpaired(unpaired_dir, tmp_path / "run", CycleGANConfig(), max_steps=60)
    result = train(cfg, progress=False)
    rows = read_metrics(result.run_dir / "metrics.jsonl")
    cycle = [r["cycle_A"] + r["cycle_B"] for r in rows]
    assert sum(cycle[-5:]) < 0.6 * sum(cycle[:5]), cycle
    assert {"G_GAN", "F_GAN", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B"} <= set(rows[0])
    for direction, folder in (("AtoB", "valA"), ("BtoA", "valB")):
        model = i2i.load(result.run_dir, direction=direction)
        out = translate_files(model, [unpaired_dir / folder], tmp_path / direction, progress=False)
        assert len(out) == 8


def test_cyclegan_resume_restores_the_image_pools(unpaired_dir, tmp_path):
    straight = tiny_unpaired(unpaired_dir, tmp_path / "a", CycleGANConfig(pool_size=4), max_steps=8)
    train(straight, progress=False)
    split = tiny_unpaired(unpaired_dir, tmp_path / "b", CycleGANConfig(pool_size=4), max_steps=4)
    train(split, progress=False)
    split.train.max_steps = 8
    train(split, resume=True, progress=False)
    a = read_metrics(tmp_path / "a" / "metrics.jsonl")
    b = read_metrics(tmp_path / "b" / "metrics.jsonl")
    assert [r["step"] for r in b] == list(range(1, 9))
    for ra, rb in zip(a, b, strict=True):
        assert rb["D_A"] == pytest.approx(ra["D_A"], rel=1e-5, abs=1e-7), ra["step"]


def test_identity_loss_needs_matching_channels():
    cfg = tiny_unpaired("x", "y", CycleGANConfig()).model
    with pytest.raises(ConfigError, match="lambda_identity=0"):
        CycleGAN(cfg, 1, 3)  # type: ignore[arg-type]


# -- CUT ---------------------------------------------------------------------------------------
def test_patch_nce_known_answer():
    """Orthonormal patch embeddings matched to themselves: each logit row is 1/tau on the
    diagonal and 0 elsewhere, so the loss is log(1 + (P - 1) exp(-1/tau))."""
    p, tau = 4, 0.5  # a temperature at which float32 resolves the answer (~0.34)
    q = torch.eye(p)
    expected = math.log(1 + (p - 1) * math.exp(-1 / tau))
    assert patch_nce_loss(q, q, 1, tau).item() == pytest.approx(expected, rel=1e-4)
    rolled = q.roll(1, dims=0)  # every query's positive is now the wrong patch
    wrong = math.log(math.exp(1 / tau) + p - 1)  # the positive now scores 0, one negative 1/tau
    assert patch_nce_loss(q, rolled, 1, tau).item() == pytest.approx(wrong, rel=1e-4)
    random_keys = torch.nn.functional.normalize(torch.randn(2 * 16, 8), dim=1)
    matched = patch_nce_loss(random_keys, random_keys, 2, 0.07).item()
    shuffled = patch_nce_loss(random_keys, random_keys[torch.randperm(32)], 2, 0.07).item()
    assert matched < shuffled


def test_fastcut_settings_follow_the_paper():
    cut, fast = CUTConfig(kind="cut"), CUTConfig(kind="fastcut")
    assert (cut.lambda_nce, cut.nce_identity, cut.flip_equivariance) == (1.0, True, False)
    assert (fast.lambda_nce, fast.nce_identity, fast.flip_equivariance) == (10.0, False, True)
    assert CUTConfig(kind="fastcut", lambda_nce=3.0).lambda_nce == 3.0
    assert from_dict(RunConfig, {"model": {"kind": "fastcut"}}).model == fast


@pytest.mark.parametrize("kind", ["cut", "fastcut"])
def test_cut_patch_nce_falls_in_training(unpaired_dir, tmp_path, kind):
    model = CUTConfig(kind=kind, nce_layers=[0, 1, 2, 3], num_patches=64)
    cfg = tiny_unpaired(unpaired_dir, tmp_path / "run", model, max_steps=100)
    rows = read_metrics(train(cfg, progress=False).run_dir / "metrics.jsonl")
    nce = [r["NCE"] for r in rows]
    # medians: single adversarial steps spike; over 100 steps it falls by 22-40% (seeds 0-3)
    assert statistics.median(nce[-10:]) < 0.85 * statistics.median(nce[:10]), nce
    assert ("NCE_Y" in rows[0]) == (kind == "cut")


def test_cut_layers_must_exist():
    cfg = tiny_unpaired("x", "y", CUTConfig(nce_layers=[0, 9])).model
    with pytest.raises(ConfigError, match="nce_layers: level 9 does not exist"):
        CUT(cfg)  # type: ignore[arg-type]


# -- zip output ---------------------------------------------------------------------------------
def test_zip_output_holds_exactly_n_readable_images(unpaired_dir, tmp_path):
    cfg = tiny_unpaired(unpaired_dir, tmp_path / "run", CycleGANConfig(), max_steps=1)
    model = i2i.load(train(cfg, progress=False).run_dir)
    names = translate_files(
        model,
        [unpaired_dir / "trainA"],
        tmp_path / "sub.zip",
        suffix=".jpg",
        limit=7,
        progress=False,
    )
    with zipfile.ZipFile(tmp_path / "sub.zip") as zf:
        assert sorted(zf.namelist()) == sorted(names) and len(names) == 7
        for name in zf.namelist():
            with zf.open(name) as f:
                img = Image.open(f)
                img.load()
                assert img.format == "JPEG" and img.size == (32, 32)
