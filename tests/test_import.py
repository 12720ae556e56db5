"""Generators saved by the reference pix2pix/CycleGAN code become i2i checkpoints: the same
outputs (against the reference code's own, tests/fixtures/official), every architecture field
inferred from the weights alone, options that override or contradict them, and files that are
not plain weights refused without being unpickled."""

from __future__ import annotations

import importlib.util
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import i2i
from i2i.cli import app
from i2i.errors import CheckpointError, ConfigError
from i2i.nets.colorizer import l_ab_to_rgb, rgb_to_l_ab
from i2i.runs.checkpoint import read_card
from i2i.runs.importer import ImportConfig, import_reference, infer_architecture

ROOT = Path(__file__).parent.parent
OFFICIAL = Path(__file__).parent / "fixtures" / "official"  # saved by the reference code
PARITY = 1e-4  # max |difference| of network outputs in [-1, 1]

REFERENCE_NETS = ROOT / "benchmarks" / "reference_nets.py"
spec = importlib.util.spec_from_file_location("reference_nets", REFERENCE_NETS)
assert spec and spec.loader
reference_nets = importlib.util.module_from_spec(spec)
sys.modules["reference_nets"] = reference_nets
spec.loader.exec_module(reference_nets)


def fixture(name: str) -> tuple[Path, dict, torch.Tensor, torch.Tensor]:
    meta = json.loads((OFFICIAL / f"{name}.json").read_text())
    x = torch.from_numpy(np.load(OFFICIAL / f"{name}.input.npy"))
    y = torch.from_numpy(np.load(OFFICIAL / f"{name}.output.npy"))
    return OFFICIAL / f"{name}.pth", meta, x, y


@pytest.mark.parametrize("name", ["cyclegan_resnet9_instance", "pix2pix_unet256_batch"])
@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_outputs_match_the_reference_code(name, backend, tmp_path):
    """The reference network in eval mode (running statistics, dropout off): within 1e-4."""
    pth, meta, x, expected = fixture(name)
    ckpt = import_reference(pth, tmp_path / "g", ImportConfig(batch_stats="running"))
    got = i2i.load(ckpt, device="cpu", backend=backend).translate_tensor(x)
    assert (got - expected).abs().max().item() < PARITY
    arch = read_card(ckpt).source["architecture"]  # type: ignore[index]
    netg = {"unet": {7: "unet_128", 8: "unet_256"}, "resnet": {6: "resnet_6blocks",
            9: "resnet_9blocks"}}[arch["kind"]][arch["depth"]]  # fmt: skip
    assert netg == meta["netG"] and arch["norm"] == meta["norm"] and arch["ngf"] == meta["ngf"]
    assert (arch["input_nc"], arch["output_nc"]) == (meta["input_nc"], meta["output_nc"])


def test_the_layout_helper_is_the_reference_codes():
    """benchmarks/reference_nets.py, which the tests below build reference files with, loads the
    reference code's files as they are and reproduces their outputs."""
    for name in ("cyclegan_resnet9_instance", "pix2pix_unet256_batch"):
        pth, meta, x, expected = fixture(name)
        net = reference_nets.define_g(meta["netG"], meta["input_nc"], meta["output_nc"],
                                      meta["ngf"], meta["norm"], meta["dropout"])  # fmt: skip
        net.load_state_dict(torch.load(pth, map_location="cpu", weights_only=True))
        with torch.no_grad():
            assert (net.eval()(x) - expected).abs().max().item() < 1e-5


def reference_file(tmp_path: Path, netg: str, nc: tuple[int, int], ngf: int, norm: str,
                   dropout: bool, seed: int = 0) -> tuple[Path, torch.nn.Module]:  # fmt: skip
    """A reference-format generator with random weights (biases and batch-norm statistics too,
    so that every tensor carries signal), saved as the reference code saves one."""
    torch.manual_seed(seed)
    net = reference_nets.define_g(netg, nc[0], nc[1], ngf, norm, dropout)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
        layers = torch.nn.Conv2d | torch.nn.ConvTranspose2d | torch.nn.BatchNorm2d
        if isinstance(m, layers) and m.bias is not None:
            m.bias.data.uniform_(-0.2, 0.2)
    path = tmp_path / f"{netg}_{norm}.pth"
    torch.save(net.state_dict(), path)
    return path, net.eval()


CASES = [  # netG, (input_nc, output_nc), ngf, norm, dropout, side
    ("unet_128", (1, 3), 4, "instance", True, 128),  # one input channel
    ("unet_256", (3, 3), 2, "none", False, 256),
    ("resnet_6blocks", (3, 1), 4, "batch", True, 32),
    ("resnet_9blocks", (4, 3), 3, "none", False, 24),
]


@pytest.mark.parametrize(("netg", "nc", "ngf", "norm", "dropout", "side"), CASES)
def test_every_field_is_inferred_and_outputs_match(netg, nc, ngf, norm, dropout, side, tmp_path):
    pth, net = reference_file(tmp_path, netg, nc, ngf, norm, dropout)
    ckpt = import_reference(pth, tmp_path / "g", ImportConfig(batch_stats="running"))
    card = read_card(ckpt)
    arch = card.source["architecture"]  # type: ignore[index]
    kind, depth = netg.split("_")
    expected_depth = {"128": 7, "256": 8, "6blocks": 6, "9blocks": 9}[depth]
    assert (arch["kind"], arch["depth"], arch["ngf"], arch["norm"]) == (
        kind, expected_depth, ngf, norm)  # fmt: skip
    assert (arch["input_nc"], arch["output_nc"]) == nc
    if kind == "resnet":  # a U-Net's dropout leaves no weights: it is assumed (the card says)
        assert arch["dropout"] == dropout
    assert card.nets["G"].config.kind == netg and card.model == (
        "pix2pix" if kind == "unet" else "cyclegan")  # fmt: skip
    x = torch.rand(2, nc[0], side, side) * 2 - 1
    with torch.no_grad():
        expected = net(x)
    got = i2i.load(ckpt, device="cpu").translate_tensor(x)
    assert (got - expected).abs().max().item() < PARITY


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_reference_colorization_generators_become_colorizers(backend, tmp_path):
    """The reference's colorization model is a U-Net from L (1 channel) to ab (2): imported, it
    colours RGB images as i2i's colorization does, the reference network inside the Lab
    conversions, within 1e-4."""
    pth, net = reference_file(tmp_path, "unet_128", (1, 2), 4, "instance", True)
    ckpt = import_reference(pth, tmp_path / "g")
    card = read_card(ckpt)
    assert card.model == "colorization" and card.nets["G"].config.kind == "colorizer"
    assert "L / 50 - 1" in card.normalization
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    lightness, _ = rgb_to_l_ab(x)
    with torch.no_grad():
        expected = l_ab_to_rgb(lightness, net(lightness))
    got = i2i.load(ckpt, device="cpu", backend=backend).translate_tensor(x)
    assert (got - expected).abs().max().item() < PARITY


def test_the_import_command_names_a_batch_norm_colorizer(tmp_path):
    pth, _ = reference_file(tmp_path, "unet_128", (1, 2), 4, "batch", True)
    result = CliRunner().invoke(app, ["import", str(pth), "--out", str(tmp_path / "g")])
    assert result.exit_code == 0, result.output
    assert "a colorization generator" in result.output and "on image statistics" in result.output


def test_only_an_l_to_ab_generator_imports_as_colorization(tmp_path):
    pth, _ = reference_file(tmp_path, "unet_128", (3, 3), 4, "instance", True)
    args = ["import", str(pth), "--out", str(tmp_path / "g"), "--model", "colorization"]
    result = CliRunner().invoke(app, args)
    code, output = result.exit_code, " ".join(result.output.split())
    assert code == 1 and "from L (1 channel) to ab (2 channels)" in output
    assert "maps 3 to 3" in output and "Traceback" not in output


def test_per_image_batch_statistics_are_the_reference_test_scripts_default(tmp_path):
    """The reference test script runs batch-norm generators in train mode at batch size 1: each
    image normalized by its own statistics. That is the import's default; --eval's running
    statistics are the other choice, and they differ."""
    pth, meta, x, expected_eval = fixture("pix2pix_unet256_batch")
    net = reference_nets.define_g("unet_256", 3, 3, meta["ngf"], "batch", True)
    net.load_state_dict(torch.load(pth, weights_only=True))
    net.train()
    for m in net.modules():
        if isinstance(m, torch.nn.Dropout):
            m.eval()  # i2i keeps dropout off unless asked
    with torch.no_grad():
        expected_image = net(x)
    ckpt = import_reference(pth, tmp_path / "g")
    assert read_card(ckpt).nets["G"].config.batch_stats == "image"  # type: ignore[union-attr]
    for backend in ("torch", "onnxruntime"):
        got = i2i.load(ckpt, device="cpu", backend=backend).translate_tensor(x)
        assert (got - expected_image).abs().max().item() < PARITY
        assert (got - expected_eval).abs().max().item() > 0.1


def test_dataparallel_prefix_old_files_and_wrapped_state_dicts(tmp_path):
    """``module.`` prefixes (DataParallel), the running statistics PyTorch before 0.4 saved for
    instance norms, batch norms without num_batches_tracked, a {"state_dict": ...} wrapper."""
    pth, _, x, expected = fixture("cyclegan_resnet9_instance")
    state = torch.load(pth, weights_only=True)
    old = {f"module.{k}": v for k, v in state.items()}
    old["module.model.2.running_mean"] = torch.zeros(8)  # instance norm stats: ignored
    old["module.model.2.running_var"] = torch.ones(8)
    torch.save({"state_dict": old}, tmp_path / "old.pth")
    got = i2i.load(tmp_path / "old.pth", device="cpu").translate_tensor(x)
    assert (got - expected).abs().max().item() < PARITY
    pth, _, x, expected = fixture("pix2pix_unet256_batch")
    state = torch.load(pth, weights_only=True)
    no_counts = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(no_counts, tmp_path / "no_counts.pth")
    ckpt = import_reference(tmp_path / "no_counts.pth", tmp_path / "g", ImportConfig(
        batch_stats="running"))  # fmt: skip
    got = i2i.load(ckpt, device="cpu").translate_tensor(x)
    assert (got - expected).abs().max().item() < PARITY


def test_a_pth_loads_directly_and_is_imported_once(tmp_path, monkeypatch):
    monkeypatch.setenv("I2I_CACHE", str(tmp_path / "cache"))
    pth, _, x, expected = fixture("cyclegan_resnet9_instance")
    got = i2i.load(pth, device="cpu").translate_tensor(x)
    assert (got - expected).abs().max().item() < PARITY
    (made,) = (tmp_path / "cache" / "imported").iterdir()
    stamp = (made / "imported" / "model.safetensors").stat().st_mtime_ns
    i2i.load(str(pth), device="cpu")
    assert (made / "imported" / "model.safetensors").stat().st_mtime_ns == stamp
    assert len(list((tmp_path / "cache" / "imported").iterdir())) == 1
    running = i2i.import_model(OFFICIAL / "pix2pix_unet256_batch.pth", batch_stats="running")
    assert running.parent.parent == made.parent  # in the cache too


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"ngf": 16}, r"model.1.weight is \[8, 3, 7, 7\], but a resnet_9blocks, ngf 16.*--ngf 16"),
        ({"norm": "batch"}, r"model.2.weight is missing.*batch norm.*--norm batch"),
        ({"norm": "none"}, r"model.1.bias is not part of a resnet_9blocks.*none norm"),
        ({"generator": "resnet_6blocks"}, r"model.16.weight is missing.*--netG resnet_6blocks"),
        ({"generator": "unet_256"}, r"--netG unet_256, but the file holds a ResNet"),
        ({"input_nc": 1}, r"model.1.weight is \[8, 3, 7, 7\].*--input-nc 1"),
        ({"dropout": True}, r"model.10.conv_block.6.weight is missing.*with --dropout;"),
    ],
)
def test_an_impossible_option_names_the_key_that_disagrees(options, words, tmp_path):
    pth, *_ = fixture("cyclegan_resnet9_instance")
    with pytest.raises(CheckpointError, match=words):
        import_reference(pth, tmp_path / "g", ImportConfig(**options))
    assert not (tmp_path / "g").exists()


def test_options_that_agree_are_taken(tmp_path):
    pth, *_ = fixture("pix2pix_unet256_batch")
    state = torch.load(pth, weights_only=True)
    arch = infer_architecture(state, "f", ImportConfig(generator="unet_256", ngf=4, norm="batch",
                                                       dropout=False))  # fmt: skip
    assert (arch.depth, arch.dropout) == (8, False)  # a U-Net's dropout: as told
    ckpt = import_reference(pth, tmp_path / "g", ImportConfig(direction="BtoA", model="pix2pix",
                            load_size=143, crop_size=128))  # fmt: skip
    card = read_card(ckpt)
    assert card.translate is not None and card.translate.default == "BtoA"
    assert card.scale is not None and card.scale.side == 143 and card.translate.train_size == 128
    with pytest.raises(ConfigError, match="--crop-size 300 is larger than --load-size 286"):
        ImportConfig(crop_size=300)


def test_files_that_are_not_plain_weights_are_refused_unopened(tmp_path):
    """Nothing is unpickled: a pickled module, a pickled object, a plain pickle, an image, a
    discriminator's weights, NaN weights: each one line naming the file."""
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pth")
    torch.save({"opt": Image.new("RGB", (2, 2)), "w": torch.zeros(1)}, tmp_path / "object.pth")
    (tmp_path / "plain.pth").write_bytes(pickle.dumps({"a": [1, 2]}))
    Image.new("RGB", (8, 8)).save(tmp_path / "image.pth", "PNG")
    (tmp_path / "empty.pth").write_bytes(b"")
    torch.save({"model.0.weight": torch.zeros(8, 3, 4, 4)}, tmp_path / "critic.pth")
    state = torch.load(OFFICIAL / "cyclegan_resnet9_instance.pth", weights_only=True)
    state["model.4.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pth")
    expected = {
        "module.pth": "it holds a pickled torch.nn.modules.linear.Linear",
        "object.pth": "it holds a pickled PIL.Image.Image",
        "plain.pth": "not a PyTorch weights file",
        "image.pth": "not a PyTorch weights file",
        "empty.pth": "unreadable",
        "critic.pth": "not a generator of the reference pix2pix/CycleGAN code",
        "nan.pth": "model.4.weight holds NaN or infinite values",
    }
    for name, words in expected.items():
        with pytest.raises(CheckpointError, match=words):
            import_reference(tmp_path / name, tmp_path / "out")
        result = CliRunner().invoke(app, ["import", str(tmp_path / name), "--out", "unused"])
        assert result.exit_code == 1 and words.split(" ")[0] in result.output
        assert result.output.startswith("error: ") and len(result.output.splitlines()) == 1


def test_cli_import_translate_export_and_evaluate(tmp_path, synth_dir):
    """The imported checkpoint is an ordinary one: translate, export and evaluate use it (no
    run config needed)."""
    pth, *_ = fixture("cyclegan_resnet9_instance")
    out = tmp_path / "h2z"
    result = CliRunner().invoke(app, ["import", str(pth), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "resnet_9blocks, ngf 8, instance norm, 3 -> 3 channels" in result.output
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 56, 3), np.uint8)).save(
        tmp_path / "photo.png")  # fmt: skip
    for args in (
        ["translate", str(out), str(tmp_path / "photo.png"), "--out", str(tmp_path / "t")],
        ["export", str(out), "--onnx", str(tmp_path / "g.onnx")],
        ["evaluate", str(out), "--data", str(synth_dir), "--metrics", "l1,psnr",
         "--out", str(tmp_path / "eval")],
    ):  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "t" / "photo.png").size == (56, 40)
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["count"] == 8 and metrics["source"]["size"] == 256
    result = CliRunner().invoke(app, ["import", str(pth), "--out", str(tmp_path / "t")])
    assert result.exit_code == 1 and "holds other files" in result.output
    (out / ".tmp-imported-0a1b2c3d").mkdir()  # what a killed import leaves: no obstacle
    assert CliRunner().invoke(app, ["import", str(pth), "--out", str(out)]).exit_code == 0


def test_dropout_is_off_unless_asked(tmp_path):
    pth, _, x, _ = fixture("pix2pix_unet256_batch")
    ckpt = import_reference(pth, tmp_path / "g")
    quiet = i2i.load(ckpt, device="cpu")
    assert torch.equal(quiet.translate_tensor(x), quiet.translate_tensor(x))
    noisy = i2i.load(ckpt, device="cpu", dropout=True)
    assert not torch.equal(noisy.translate_tensor(x), noisy.translate_tensor(x))
    with pytest.raises(ConfigError, match="no dropout layers"):
        i2i.load(OFFICIAL / "cyclegan_resnet9_instance.pth", device="cpu", dropout=True)
    with pytest.raises(ConfigError, match="--dropout runs on PyTorch"):
        i2i.load(ckpt, backend="onnxruntime", dropout=True)
