"""Damaged or hostile checkpoints are refused in one line naming the file, before anything
large is allocated: the model card is checked against the weights' header; non-finite
weights are never written and never used; the ONNX cache follows the card."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import i2i
from i2i.cli import main
from i2i.errors import CheckpointError, TrainingDiverged
from i2i.models import Pix2Pix
from i2i.runs.checkpoint import load_weights, resolve_checkpoint
from i2i.serve.app import load_models
from i2i.train.loop import train

from .conftest import tiny_config


@pytest.fixture(scope="module")
def ckpt(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "run"
    train(tiny_config(synth_dir, out, max_steps=1), progress=False)
    return resolve_checkpoint(out)


def edited(ckpt: Path, tmp_path: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    """A copy of ``ckpt`` whose model.json went through ``edit(card_dict)``."""
    copy = tmp_path / "edited"
    shutil.copytree(ckpt, copy)
    card = json.loads((copy / "model.json").read_text())
    edit(card)
    (copy / "model.json").write_text(json.dumps(card))
    return copy


def set_g(key: str, value: object):  # type: ignore[no-untyped-def]
    def edit(card: dict) -> None:
        card["nets"]["G"]["config"][key] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "words"),
    [(set_g("ngf", 1000), "G.down.0.0.weight is [16, 3, 4, 4] in the weights, but the card's"),
     (set_g("depth", 6), "the card's G needs G.down.5"),
     (set_g("kind", "resnet_6blocks"), "the card's G needs G.blocks.0"),
     (set_g("ngf", {"nested": [1, 2]}), "expected a whole number"),
     (set_g("ngf", -3), "ngf must be at least 1"),
     (lambda c: c["nets"]["G"].update(in_channels=4), "G.down.0.0.weight is [16, 3, 4, 4]"),
     (lambda c: c.pop("nets"), "nets: expected a mapping"),
     (lambda c: c["translate"]["nets"].update(AtoB="D"), "no generator 'D'"),
     (lambda c: c.update(format="other"), "not an i2i checkpoint description")],
)  # fmt: skip
def test_edited_cards_are_refused_before_allocating(ckpt, tmp_path, edit, words):
    bad = edited(ckpt, tmp_path, edit)
    with pytest.raises(CheckpointError, match=words.replace("[", r"\[").replace("]", r"\]")):
        i2i.load(bad, device="cpu")
    with pytest.raises(CheckpointError):
        load_models([f"m={bad}"], device="cpu")


def test_a_huge_width_costs_no_memory(ckpt, tmp_path):
    """Case rel-05: the check builds the card's network on the meta device; a real build of
    ngf=1000 would take about 13 GB."""
    import resource

    bad = edited(ckpt, tmp_path, set_g("ngf", 1000))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError):
        i2i.load(bad, device="cpu")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB


def test_cards_nested_beyond_reason_or_huge_are_refused(ckpt, tmp_path):
    deep = edited(ckpt, tmp_path, lambda c: None)
    (deep / "model.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="model.json: unreadable"):
        i2i.load(deep)


@pytest.mark.parametrize("damage", ["truncated", "foreign", "garbage", "integers"])
def test_damaged_weights_are_one_line(ckpt, tmp_path, damage, capsys):
    bad = edited(ckpt, tmp_path, lambda c: None)
    weights = bad / "model.safetensors"
    if damage == "integers":  # the right names and shapes, but not numbers a net computes with
        tensors = load_file(str(weights))
        save_file({k: v.to(torch.int64) for k, v in tensors.items()}, str(weights))
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "foreign":
        save_file({"layer.weight": torch.zeros(3, 3)}, str(weights))
    else:
        weights.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    with pytest.raises(CheckpointError, match="model.safetensors|the weights lack|stored as I64"):
        i2i.load(bad, device="cpu")
    Image.new("RGB", (32, 32)).save(tmp_path / "in.png")
    code = main(["translate", str(bad), str(tmp_path / "in.png"), "--out", str(tmp_path / "o"),
                 "--backend", "torch", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and str(bad) in err[0], err


def test_the_onnx_cache_follows_the_card(ckpt, tmp_path, monkeypatch):
    """An edit that keeps every weight's shape (instance norm -> none) must not reuse the
    export made from the first card."""
    monkeypatch.setenv("I2I_CACHE", str(tmp_path / "cache"))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8))
    first = np.asarray(i2i.load(ckpt, backend="onnxruntime")(image))
    other = edited(ckpt, tmp_path, set_g("norm", "none"))
    shutil.copy(ckpt / "model.safetensors", other / "model.safetensors")
    second = np.asarray(i2i.load(other, backend="onnxruntime")(image))
    assert len(list((tmp_path / "cache" / "onnx").glob("*.onnx"))) == 2
    assert not np.array_equal(first, second)


def test_nan_weights_are_never_saved_and_never_used(synth_dir, tmp_path, monkeypatch):
    """Case rel-01: the loss of a step is finite but its update ruins the weights; the
    checkpoint of that step is not written, `latest` keeps the last good one, and a
    checkpoint that holds NaN anyway is refused by translate."""
    real_step = Pix2Pix.training_step
    calls = {"n": 0}

    def step_then_ruin(self, batch, update):  # type: ignore[no-untyped-def]
        losses = real_step(self, batch, update)
        calls["n"] += 1
        if calls["n"] == 6:
            with torch.no_grad():
                self.G.down[0][0].weight.fill_(float("inf"))
        return losses

    monkeypatch.setattr(Pix2Pix, "training_step", step_then_ruin)
    cfg = tiny_config(synth_dir, tmp_path / "run", max_steps=10, save_every=2, log_every=100)
    message = r"weights .* NaN or infinite by step 6.*step_00000004"
    with pytest.raises(TrainingDiverged, match=message):
        train(cfg, progress=False)
    latest = resolve_checkpoint(tmp_path / "run")
    assert latest.name == "step_00000004"
    assert all(torch.isfinite(t).all() for t in load_weights(latest).values())
    ruined = load_file(latest / "model.safetensors")
    ruined["G.up.0.1.weight"][0, 0, 0, 0] = float("nan")
    save_file(ruined, str(latest / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"G\.up\.0\.1\.weight holds NaN or infinite"):
        i2i.load(tmp_path / "run", device="cpu")
