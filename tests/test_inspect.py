"""``i2i data inspect`` on every kind of data i2i reads: counts, sizes, modes, bad files named
with their reason, duplicates within and across splits, colours per domain, the report files,
and ``--strict`` for CI."""

from __future__ import annotations

import gzip
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from i2i.cli import app
from i2i.data.inspect import inspect_dataset
from i2i.errors import DataError

from .conftest import NO_TORCH


def picture(seed: int, size: int = 32, tint: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """A smooth random picture (blurred noise: phash sees structure, not grain), tinted."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 160, (4, 4, 3), np.uint8)
    img = Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(img, np.int16) + np.array(tint), 0, 255).astype(np.uint8)


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def paired(tmp_path: Path) -> Path:
    """Side-by-side pairs in train/ and val/ with every kind of trouble: a truncated file, an
    empty file, an odd width, a val pair copied from train (leakage) and a near copy."""
    root = tmp_path / "maps"
    for split, n in (("train", 6), ("val", 3)):
        for i in range(n):
            pair = np.concatenate([picture(10 * i + len(split)), picture(100 + 10 * i)], axis=1)
            save(root / split / f"{i}.png", pair)
    shutil.copy(root / "train" / "2.png", root / "val" / "leak.png")
    near = np.asarray(Image.open(root / "train" / "4.png"), np.int16) + 3  # a touch brighter
    save(root / "train" / "4b.png", np.clip(near, 0, 255).astype(np.uint8))
    (root / "train" / "empty.png").write_bytes(b"")
    data = (root / "train" / "0.png").read_bytes()
    (root / "train" / "cut.png").write_bytes(data[: len(data) // 2])
    save(root / "val" / "odd.png", np.zeros((32, 63, 3), np.uint8))
    return root


def test_a_paired_dataset_is_counted_checked_and_drawn(paired, tmp_path):
    report = inspect_dataset(paired, samples=2, progress=False, workers=2)
    assert report.kind == "paired" and set(report.layouts) == {"train", "val"}
    rows = {(s.split, s.domain): s for s in report.stats}
    assert rows[("train", "A")].images == 7 and rows[("train", "A")].bad == 2
    assert rows[("val", "B")].images == 4 and rows[("val", "B")].bad == 1
    assert dict(rows[("train", "B")].sizes) == {"32x32": 7}  # halves, from 64 x 32 files
    assert dict(rows[("train", "A")].modes) == {"RGB 8-bit": 7}
    problems = {b.name: b.problem for b in report.bad}
    assert problems["train/empty.png"] == "the file is empty (0 bytes)"
    assert "truncated" in problems["train/cut.png"]
    assert problems["val/odd.png"].startswith("width 63 is odd")
    assert len(report.bad) == 3
    exact = [d for d in report.duplicates if d.exact]
    assert {(d.domain, d.across_splits) for d in exact} == {("A", True), ("B", True)}
    assert sorted(exact[0].members) == [("train", "train/2.png"), ("val", "val/leak.png")]
    near = [d for d in report.duplicates if not d.exact]
    assert {tuple(sorted(n for _, n in d.members)) for d in near} == {
        ("train/4.png", "train/4b.png")
    }
    assert len(report.samples) == 2 and set(report.samples[0].images) == {"A", "B"}
    path = report.write(tmp_path / "report")
    text = path.read_text()
    assert "| train | A | 7 | 2 | 32x32 | RGB 8-bit |" in text
    assert "`train/cut.png` (train): corrupt or truncated" in text
    assert "**across splits**: `train/2.png`, `val/leak.png`" in text
    for fig in ("sizes.png", "colours.png", "samples.png"):
        assert f"]({fig})" in text
        with Image.open(tmp_path / "report" / fig) as im:
            assert im.size[0] > 400
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["images"] == report.images and len(saved["bad"]) == 3


def test_unpaired_domains_colours_and_arbitrary_folder_names(tmp_path):
    photo, monet = tmp_path / "photo_jpg", tmp_path / "monet_jpg"
    for i in range(5):
        save(photo / f"p{i}.jpg", picture(i, tint=(0, 0, 90)))  # bluish
        save(monet / f"m{i}.jpg", picture(50 + i, 48, tint=(90, 40, 0)))  # reddish, 48 px
    report = inspect_dataset(domains=(photo, monet), samples=3, progress=False)
    assert report.kind == "unpaired" and report.labels == {"A": "photo_jpg/", "B": "monet_jpg/"}
    a, b = report.domain_total("A"), report.domain_total("B")
    assert (a.images, b.images) == (5, 5) and dict(b.sizes) == {"48x48": 5}
    assert a.mean_colour[2] > a.mean_colour[0] + 50 and b.mean_colour[0] > b.mean_colour[2] + 50
    assert sum(len(s.images) for s in report.samples) == 6  # 3 per domain
    captions = {s.caption for s in report.samples}  # where each sample is, no invented train/
    assert captions <= {f"{d}/{p}{i}.jpg" for d, p in (("photo_jpg", "p"), ("monet_jpg", "m"))
                        for i in range(5)}, captions  # fmt: skip
    # the CycleGAN layout: trainA/ trainB/ testA/ testB/ with unrelated names
    root = tmp_path / "h2z"
    shutil.copytree(photo, root / "trainA")
    shutil.copytree(monet, root / "trainB")
    save(root / "testA" / "t.jpg", picture(7))
    save(root / "testB" / "p1.jpg", np.asarray(Image.open(photo / "p1.jpg")))  # an A image in B
    report = inspect_dataset(root, progress=False)
    assert report.kind == "unpaired" and report.labels["A"] == "trainA/, testA/"
    assert not report.duplicates  # duplicates are looked for within a domain


def test_ab_folders_partners_of_another_size_and_without_a_partner(tmp_path):
    for i in range(3):
        save(tmp_path / "A" / f"{i}.png", picture(i))
        save(tmp_path / "B" / f"{i}.jpg", picture(9 + i, 32 if i else 40))
    save(tmp_path / "A" / "lonely.png", picture(5))
    report = inspect_dataset(tmp_path, progress=False)
    assert report.layouts == {"train": "A and B folders paired by file name"}
    problems = {b.name: b.problem for b in report.bad}
    assert problems["B/0.jpg"].startswith("size 40x40 differs from its partner's (32x32)")
    assert problems["A/lonely.png"] == "no partner of the same name in B/"
    assert (report.domain_total("A").images, report.domain_total("A").bad) == (2, 2)


def write_idx(path: Path, images: np.ndarray, cut: int = 0) -> Path:
    raw = b"\x00\x00\x08\x03" + struct.pack(">3I", *images.shape) + images.tobytes()
    path.write_bytes(gzip.compress(raw[: len(raw) - cut]))
    return path


def test_idx_npz_and_gray_or_16_bit_images(tmp_path):
    digits = np.stack([picture(i)[..., 0] for i in range(6)] + [picture(0)[..., 0]])
    report = inspect_dataset(write_idx(tmp_path / "d-idx3-ubyte.gz", digits), progress=False)
    (stats,) = report.stats
    assert report.kind == "images" and stats.images == 7 and dict(stats.modes) == {"L 8-bit": 7}
    assert stats.gray == 7 and np.array_equal(stats.histogram[0], stats.histogram[2])
    (dup,) = report.duplicates
    assert dup.exact and [n for _, n in dup.members] == ["d-idx3-ubyte.gz[0]", "d-idx3-ubyte.gz[6]"]
    broken = inspect_dataset(write_idx(tmp_path / "c-idx3-ubyte.gz", digits, 50), progress=False)
    assert "truncated" in broken.bad[0].problem
    assert (broken.stats[0].images, broken.stats[0].bad) == (0, 1)

    a = np.stack([picture(i) for i in range(4)])
    (tmp_path / "npz").mkdir()
    np.savez(tmp_path / "npz" / "train.npz", a, a[:, ::-1])
    np.savez(tmp_path / "npz" / "val.npz", a[:2].astype(np.float32), a[:2])
    report = inspect_dataset(tmp_path / "npz", progress=False)
    assert report.layouts == {"train": ".npz arrays (A, B)", "val": ".npz arrays (A, B)"}
    assert report.domain_total("B").images == 4
    assert report.bad[0].name == "val.npz" and "dtype float32" in report.bad[0].problem

    save(tmp_path / "gray" / "g.png", picture(1)[..., 0])
    deep = Image.fromarray(picture(2)[..., 0].astype(np.uint16) * 257).convert("I;16")
    deep.save(tmp_path / "gray" / "d.png")
    report = inspect_dataset(tmp_path / "gray", progress=False)
    assert dict(report.domain_total("images").modes) == {"L 8-bit": 1, "I;16 16-bit": 1}


def test_strict_fails_on_bad_files_only(paired, tmp_path):
    runner = CliRunner()
    out = tmp_path / "r"
    result = runner.invoke(
        app, ["data", "inspect", str(paired), "--out", str(out), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "bad files: 3" in result.output and (out / "report.md").is_file()
    strict = runner.invoke(app, ["data", "inspect", str(paired), "--out", str(out), "--strict",
                                 "--no-progress"])  # fmt: skip
    assert strict.exit_code == 1
    assert strict.output.strip().splitlines()[-1].startswith(f"error: 3 bad file(s) in {paired}")
    shutil.rmtree(paired / "val")
    for name in ("empty.png", "cut.png"):
        (paired / "train" / name).unlink()
    clean = runner.invoke(app, ["data", "inspect", str(paired), "--out", str(out), "--strict",
                                "--no-progress"])  # fmt: skip
    assert clean.exit_code == 0, clean.output


def test_what_is_not_data_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="dataset not found"):
        inspect_dataset(tmp_path / "nothing", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no paired data found"):
        inspect_dataset(tmp_path / "empty", progress=False)
    with pytest.raises(DataError, match="--domain-b"):
        inspect_dataset(domains=(tmp_path, tmp_path / "missing"), progress=False)


def test_inspect_starts_without_torch(paired, tmp_path):
    """It uses the readers' layout rules without importing torch (seconds of start)."""
    args = ["data", "inspect", str(paired), "--out", str(tmp_path / "r"), "--no-progress"]
    done = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "False", done.stdout + done.stderr
    assert (tmp_path / "r" / "report.md").is_file()


def test_a_flat_folder_s_samples_are_named_by_file_alone(tmp_path):
    for i in range(3):
        save(tmp_path / "faces" / f"f{i}.png", picture(i))
    report = inspect_dataset(tmp_path / "faces", samples=3, progress=False)
    assert {s.caption for s in report.samples} == {"f0.png", "f1.png", "f2.png"}
