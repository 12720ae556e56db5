import numpy as np
import pytest
import torch
from PIL import Image

import i2i
from i2i.errors import BadImageError, CheckpointError
from i2i.infer import translate_files
from i2i.kernels import use_cpu_kernels
from i2i.models import Pix2Pix, model_card
from i2i.runs.checkpoint import save_checkpoint
from i2i.train.step import Updater, make_optimizers

from .conftest import tiny_config


@pytest.fixture(scope="module")
def trained(synth_dir, tmp_path_factory):
    """A pix2pix after a few real steps, kept in memory and saved as a checkpoint."""
    cfg = tiny_config(synth_dir, tmp_path_factory.mktemp("ckpt"))
    torch.manual_seed(0)
    model = Pix2Pix(cfg.model)
    use_cpu_kernels(model)  # as CPU training and i2i.load run it
    update = Updater(make_optimizers(model, cfg.train), cfg.train, torch.device("cpu"))
    batch = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    for _ in range(3):
        model.training_step(batch, update)
    save_checkpoint(
        __import__("pathlib").Path(cfg.train.out) / "checkpoints",
        "step_00000003",
        model.state_dict(),
        model_card(model, cfg, 3),
    )
    return model.eval(), cfg.train.out


def test_load_round_trip_reproduces_outputs_exactly(trained):
    model, run = trained
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = model.G(x)
    loaded = i2i.load(run, device="cpu")
    assert torch.equal(loaded.translate_tensor(x), expected)


def test_any_size_is_padded_and_cropped_back(trained):
    _, run = trained
    loaded = i2i.load(run)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (37, 53, 3), np.uint8))
    out = loaded(img)
    assert isinstance(out, Image.Image) and out.size == (53, 37) and out.mode == "RGB"
    tiny = loaded(Image.new("RGB", (5, 3)))  # smaller than the padding: replicated, not reflected
    assert tiny.size == (5, 3)


def test_numpy_tensor_and_list_inputs(trained):
    _, run = trained
    loaded = i2i.load(run)
    arr = np.random.default_rng(1).integers(0, 255, (32, 32, 3), np.uint8)
    out = loaded(arr)
    assert out.dtype == np.uint8 and out.shape == (32, 32, 3)
    t = torch.from_numpy(arr).permute(2, 0, 1).float() / 255
    assert torch.allclose(loaded(t), torch.from_numpy(out).permute(2, 0, 1) / 255, atol=1 / 255)
    assert loaded(t[None]).shape == (1, 3, 32, 32)
    batch = loaded([arr, Image.fromarray(arr), arr[:16, :24]])
    assert [type(b).__name__ for b in batch] == ["ndarray", "Image", "ndarray"]
    # within one 8-bit level: a GPU may pick another convolution algorithm for a batch of 3
    assert np.abs(batch[0].astype(int) - out).max() <= 1 and batch[2].shape == (16, 24, 3)
    with pytest.raises(TypeError, match="cannot translate a str"):
        loaded("image.png")


def test_grayscale_and_rgba_inputs(trained):
    _, run = trained
    loaded = i2i.load(run)
    assert loaded(Image.new("L", (32, 32), 128)).mode == "RGB"
    assert loaded(Image.new("RGBA", (32, 32), (0, 0, 0, 0))).size == (32, 32)
    assert loaded(np.zeros((32, 32), np.uint16)).shape == (32, 32, 3)


def test_translate_files_with_a_half_and_bad_files(trained, synth_dir, tmp_path):
    _, run = trained
    loaded = i2i.load(run)
    written = translate_files(
        loaded, [synth_dir / "val"], tmp_path / "out", batch_size=3, half="left", progress=False
    )
    assert len(written) == 8
    assert all(Image.open(tmp_path / "out" / name).size == (32, 32) for name in written)
    (tmp_path / "bad.png").write_bytes(b"oops")
    with pytest.raises(ValueError, match=r"bad\.png: not a readable image.*--skip-bad"):
        translate_files(loaded, [tmp_path / "bad.png"], tmp_path / "o2", progress=False)
    kept = translate_files(
        loaded,
        [tmp_path / "bad.png", tmp_path / "out" / written[0]],
        tmp_path / "o3",
        skip_bad=True,
        progress=False,
    )
    assert kept == [written[0]]


def test_load_errors_say_what_is_expected(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        i2i.load(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="no checkpoint here"):
        i2i.load(tmp_path)


def test_pixel_ranges_are_never_clipped_silently(trained):
    """Kind 9: a float array in 0..255 is an error; a uint8 tensor is read as 0..255."""
    _, run = trained
    loaded = i2i.load(run, device="cpu")
    pixels = np.random.default_rng(2).integers(0, 255, (32, 32, 3)).astype(np.uint8)
    with pytest.raises(BadImageError, match="float pixels must lie in \\[0, 1\\].*uint8"):
        loaded(pixels.astype(np.float32))
    as_uint8 = torch.from_numpy(pixels).permute(2, 0, 1)
    expected = loaded(as_uint8.float() / 255)
    torch.testing.assert_close(loaded(as_uint8), expected)
    torch.testing.assert_close(loaded(as_uint8[None]), loaded(as_uint8[None].float() / 255))
    with pytest.raises(BadImageError, match="float pixels"):
        loaded(as_uint8.float())
