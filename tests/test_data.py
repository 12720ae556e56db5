from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.config import DataConfig
from i2i.data import cache
from i2i.data.images import BadImageError, DataError, read_image
from i2i.data.paired import EpochBatchSampler, PairedDataset, locate, open_split


def save(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def side_by_side(folder: Path, n: int = 3, size: int = 16) -> Path:
    """Left half solid red, right half solid blue."""
    for i in range(n):
        img = np.zeros((size, 2 * size, 3), np.uint8)
        img[:, :size, 0] = 200
        img[:, size:, 2] = 100
        save(folder / f"{i}.png", img)
    return folder


def cfg(root: Path, **kw) -> DataConfig:
    return DataConfig(root=str(root), preprocess="none", flip=False, **kw)


# -- layouts ---------------------------------------------------------------------------------
def test_side_by_side_halves_and_direction(tmp_path):
    side_by_side(tmp_path / "train")
    item = PairedDataset(cfg(tmp_path), "train", train=False)[0]
    assert item["A"].shape == (3, 16, 16)
    assert item["A"][0].mean() == pytest.approx(200 / 255 * 2 - 1, abs=1e-6)
    assert item["B"][2].mean() == pytest.approx(100 / 255 * 2 - 1, abs=1e-6)
    swapped = PairedDataset(cfg(tmp_path, direction="BtoA"), "train", train=False)[0]
    assert torch.equal(swapped["A"], item["B"]) and torch.equal(swapped["B"], item["A"])


def test_ab_folders_match_by_name_across_extensions(tmp_path):
    save(tmp_path / "A" / "x.png", np.full((8, 8, 3), 10, np.uint8))
    save(tmp_path / "B" / "x.jpg", np.full((8, 8, 3), 250, np.uint8))
    save(tmp_path / "A" / "y.png", np.full((8, 8, 3), 20, np.uint8))
    save(tmp_path / "B" / "y.png", np.full((8, 8, 3), 240, np.uint8))
    ds = PairedDataset(cfg(tmp_path), None, train=False)
    assert ds.location.layout == "ab_folders" and len(ds) == 2
    assert ds[1]["A"].max() < ds[1]["B"].min()


def test_ab_folders_with_split_subfolders(tmp_path):
    for split in ("train", "val"):
        save(tmp_path / "A" / split / "p.png", np.zeros((8, 8, 3), np.uint8))
        save(tmp_path / "B" / split / "p.png", np.zeros((8, 8, 3), np.uint8))
    assert locate(tmp_path, "val").layout == "ab_folders"
    assert locate(tmp_path, "val").paths[0] == tmp_path / "A" / "val"


def test_npz_layout_and_custom_keys(tmp_path):
    src = np.random.default_rng(0).integers(0, 255, (5, 8, 8, 3), dtype=np.uint8)
    np.savez_compressed(tmp_path / "pairs.npz", arr_0=src, arr_1=255 - src)
    ds = PairedDataset(cfg(tmp_path / "pairs.npz"), "train", train=False)
    assert ds.location.layout == "npz" and len(ds) == 5
    assert torch.allclose(ds[2]["A"], -ds[2]["B"], atol=1e-6)
    np.savez_compressed(tmp_path / "named.npz", photo=src, sketch=src[..., 0])
    ds = PairedDataset(cfg(tmp_path / "named.npz", npz_keys=["sketch", "photo"]), None, False)
    assert ds[0]["A"].shape == (3, 8, 8)  # the gray sketch is repeated to 3 channels


def test_splits_and_a_root_without_them(tmp_path):
    side_by_side(tmp_path / "with" / "train")
    side_by_side(tmp_path / "with" / "val", n=1)
    assert len(open_split(cfg(tmp_path / "with"), "val", False)) == 1
    side_by_side(tmp_path / "flat")
    assert len(PairedDataset(cfg(tmp_path / "flat"), "train", True)) == 3
    assert open_split(cfg(tmp_path / "flat"), "val", False) is None


# -- preprocessing ---------------------------------------------------------------------------
def test_augmentation_is_identical_for_both_images(tmp_path):
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    save(tmp_path / "train" / "0.png", np.concatenate([noise, noise], axis=1))
    data = DataConfig(root=str(tmp_path), load_size=40, crop_size=24)
    ds = PairedDataset(data, "train", train=True)
    crops = set()
    for seed in range(12):
        item = ds[(0, seed)]
        assert item["A"].shape == (3, 24, 24)
        assert torch.equal(item["A"], item["B"])  # same crop and flip on both halves
        crops.add(item["A"].sum().item())
    assert len(crops) > 6  # and the crops really vary


def test_augmentation_is_a_function_of_its_seed(tmp_path):
    side_by_side(tmp_path / "train", size=40)
    ds = PairedDataset(DataConfig(root=str(tmp_path), load_size=40, crop_size=24), "train", True)
    torch.manual_seed(0)
    a = ds[(0, 7)]["A"]
    torch.manual_seed(123)  # the global RNG does not matter
    assert torch.equal(a, ds[(0, 7)]["A"])


def test_eval_resizes_deterministically_to_crop_size(tmp_path):
    side_by_side(tmp_path / "val", size=50)
    ds = PairedDataset(DataConfig(root=str(tmp_path), crop_size=32), "val", train=False)
    assert ds[0]["A"].shape == (3, 32, 32)
    assert torch.equal(ds[0]["A"], ds[0]["A"])
    assert ds[0]["A"].min() >= -1 and ds[0]["A"].max() <= 1


def test_batch_sampler_resumes_mid_epoch():
    full = list(EpochBatchSampler(10, 3, seed=3, start_step=0, total_steps=9))
    assert [len(b) for b in full] == [3, 3, 3, 1] * 2 + [3]  # each epoch ends with its own batch
    first_epoch = [i for batch in full[:4] for i, _ in batch]
    assert sorted(first_epoch) == list(range(10))
    assert list(EpochBatchSampler(10, 3, seed=3, start_step=5, total_steps=9)) == full[5:]
    second_epoch = [i for batch in full[4:8] for i, _ in batch]
    assert second_epoch != first_epoch  # a new order every epoch


# -- image modes -----------------------------------------------------------------------------
def test_grayscale_is_repeated_and_rgb_becomes_luma(tmp_path):
    gray = save(tmp_path / "g.png", np.full((4, 4), 100, np.uint8))
    rgb = read_image(gray, 3)
    assert rgb.shape == (4, 4, 3) and np.allclose(rgb, 100 / 255)
    red = save(tmp_path / "r.png", np.tile(np.array([255, 0, 0], np.uint8), (4, 4, 1)))
    assert np.allclose(read_image(red, 1), 0.299, atol=1e-3)


def test_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 3] = 0  # fully transparent black
    rgba[0, 0] = (0, 0, 0, 255)  # one opaque black pixel
    arr = read_image(save(tmp_path / "t.png", rgba), 3)
    assert np.allclose(arr[1, 1], 1.0) and np.allclose(arr[0, 0], 0.0)
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0])
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    assert np.allclose(read_image(tmp_path / "p.png", 3), 1.0)


def test_sixteen_bit_keeps_its_precision(tmp_path):
    arr = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    out = read_image(tmp_path / "d.png", 1)[0, :, 0]
    assert np.allclose(out, arr[0] / 65535, atol=1e-6)  # 257 survives; 8 bits would round it


def test_float_images_are_refused(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(BadImageError, match=r"f\.tif: 32-bit float"):
        read_image(tmp_path / "f.tif", 3)


# -- bad data --------------------------------------------------------------------------------
def test_corrupt_image_is_named(tmp_path):
    side_by_side(tmp_path)
    (tmp_path / "9.png").write_bytes(b"this is not an image")
    with pytest.raises(BadImageError, match=r"9\.png: not a readable image.*--skip-bad"):
        PairedDataset(cfg(tmp_path), None, False)


def test_empty_file_is_named(tmp_path):
    side_by_side(tmp_path)
    (tmp_path / "9.png").write_bytes(b"")
    with pytest.raises(BadImageError, match=r"9\.png: the file is empty"):
        PairedDataset(cfg(tmp_path), None, False)


def test_truncated_image_fails_on_load_with_its_name(tmp_path):
    side_by_side(tmp_path, size=64)
    img = np.random.default_rng(0).integers(0, 255, (64, 128, 3), dtype=np.uint8)
    save(tmp_path / "9.png", img)
    data = (tmp_path / "9.png").read_bytes()
    (tmp_path / "9.png").write_bytes(data[: len(data) // 2])
    ds = PairedDataset(cfg(tmp_path), None, False)  # the header is intact
    with pytest.raises(BadImageError, match=r"9\.png: corrupt or truncated.*--skip-bad"):
        ds[len(ds) - 1]


def test_skip_bad_skips_and_counts(tmp_path):
    side_by_side(tmp_path, size=64)
    (tmp_path / "7.png").write_bytes(b"junk")
    good = (tmp_path / "0.png").read_bytes()
    (tmp_path / "8.png").write_bytes(good[: len(good) // 2])
    with pytest.warns(UserWarning, match=r"skipped 2 bad image\(s\) of 5"):
        ds = PairedDataset(cfg(tmp_path, skip_bad=True), None, False)
    assert len(ds) == 3
    assert all(ds[i]["A"].shape == (3, 64, 64) for i in range(3))


def test_halves_of_different_size(tmp_path):
    save(tmp_path / "odd.png", np.zeros((8, 17, 3), np.uint8))
    with pytest.raises(BadImageError, match=r"odd\.png: width 17 is odd"):
        PairedDataset(cfg(tmp_path), None, False)
    save(tmp_path / "ab" / "A" / "p.png", np.zeros((8, 8, 3), np.uint8))
    save(tmp_path / "ab" / "B" / "p.png", np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(BadImageError, match=r"B/p\.png: size 9x8 differs from its partner"):
        PairedDataset(cfg(tmp_path / "ab"), None, False)


def test_unmatched_files_in_ab_folders(tmp_path):
    save(tmp_path / "A" / "p.png", np.zeros((8, 8, 3), np.uint8))
    save(tmp_path / "B" / "p.png", np.zeros((8, 8, 3), np.uint8))
    save(tmp_path / "A" / "lonely.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DataError, match="no partner of the same name.*lonely"):
        PairedDataset(cfg(tmp_path), None, False)
    with pytest.warns(UserWarning, match="unmatched"):
        assert len(PairedDataset(cfg(tmp_path, skip_bad=True), None, False)) == 1


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DataError, match="nowhere: dataset not found"):
        PairedDataset(cfg(tmp_path / "nowhere"), None, False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no paired data found"):
        PairedDataset(cfg(tmp_path / "empty"), None, False)
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    with pytest.raises(DataError, match="A: no images found"):
        PairedDataset(cfg(tmp_path), None, False)


def test_unreadable_and_malformed_npz(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match=r"bad\.npz: not a readable \.npz"):
        PairedDataset(cfg(tmp_path / "bad.npz"), None, False)
    np.savez(tmp_path / "keys.npz", x=np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(DataError, match=r"no array named \['arr_0', 'arr_1'\].*--npz-keys"):
        PairedDataset(cfg(tmp_path / "keys.npz"), None, False)
    np.savez(tmp_path / "f.npz", arr_0=np.zeros((2, 4, 4, 3)), arr_1=np.zeros((2, 4, 4, 3)))
    with pytest.raises(DataError, match="dtype float64.*expected uint8 or uint16"):
        PairedDataset(cfg(tmp_path / "f.npz"), None, False)
    np.savez(
        tmp_path / "n.npz",
        arr_0=np.zeros((2, 4, 4, 3), np.uint8),
        arr_1=np.zeros((3, 4, 4, 3), np.uint8),
    )
    with pytest.raises(DataError, match="same number of images"):
        PairedDataset(cfg(tmp_path / "n.npz"), None, False)


def test_a_cache_shared_with_workers_must_fit_in_shared_memory(tmp_path, monkeypatch):
    """Rather than a SIGBUS mid-epoch (a full /dev/shm), a named error with what to do."""
    side_by_side(tmp_path / "train")  # 3 pairs: 3 x 6 x 16 x 16 bytes of cache
    monkeypatch.setattr(cache, "SHARED_MEMORY", tmp_path)
    free = 1000
    monkeypatch.setattr(cache.shutil, "disk_usage", lambda _: SimpleNamespace(free=free))
    data = DataConfig(root=str(tmp_path), load_size=16, crop_size=16, num_workers=2)
    with pytest.raises(DataError, match=r"needs 0 MiB of shared memory.*--num-workers 0"):
        PairedDataset(data, "train", train=True)
    assert PairedDataset(replace(data, num_workers=0), "train", train=True).cache is not None
    free = 3 * 6 * 16 * 16
    assert PairedDataset(data, "train", train=True).cache is not None
