"""Checkpoints in object storage, against a real S3-compatible server (moto) on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import i2i
from i2i.cli import app
from i2i.runs.storage import fetch_checkpoint
from i2i.train.loop import train

from .conftest import tiny_config


def test_train_to_s3_translate_from_s3_and_resume(s3: str, synth_dir: Path, tmp_path: Path):
    import s3fs

    url = "s3://i2i-test/runs/maps"
    cfg = tiny_config(synth_dir, tmp_path / "unused", max_steps=4, save_every=2)
    cfg.train.out = url
    result = train(cfg, progress=False)
    fs = s3fs.S3FileSystem()
    listing = {p.split("runs/maps/")[1] for p in fs.find("i2i-test/runs/maps")}
    assert {"config.yaml", "metrics.jsonl", "checkpoints/latest"} <= listing
    assert "checkpoints/step_00000004/model.safetensors" in listing
    assert fs.cat_file("i2i-test/runs/maps/checkpoints/latest").decode() == "step_00000004"

    # the same weights come back through the URL, for the Python API and the CLI
    local = i2i.load(result.checkpoint, device="cpu")
    remote = i2i.load(url, device="cpu")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(local.translate_tensor(x), remote.translate_tensor(x))
    assert fetch_checkpoint(url).name != ""  # cached path

    # a new run at the same URL is refused; resuming continues from step 4
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(cfg, progress=False)
    resumed = CliRunner().invoke(
        app, ["train", "--resume", url, "--max-steps", "6", "--no-progress"]
    )
    assert resumed.exit_code == 0, resumed.output
    assert fs.cat_file("i2i-test/runs/maps/checkpoints/latest").decode() == "step_00000006"
    lines = fs.cat_file("i2i-test/runs/maps/metrics.jsonl").decode().splitlines()
    steps = [json.loads(line)["step"] for line in lines]
    assert steps == sorted(steps) and steps[-1] == 6


def test_serve_loads_a_model_from_s3(s3: str, synth_dir: Path, tmp_path: Path):
    from i2i.serve.app import load_models

    cfg = tiny_config(synth_dir, tmp_path / "unused", max_steps=1)
    cfg.train.out = "s3://i2i-test/runs/serve"
    train(cfg, progress=False)
    models = load_models(["maps=s3://i2i-test/runs/serve"], device="cpu")
    image = np.zeros((32, 32, 3), np.uint8)
    assert models["maps"].translator(image).shape == (32, 32, 3)


def test_missing_remote_checkpoint_is_a_clear_error(s3: str):
    from i2i.errors import CheckpointError

    with pytest.raises(CheckpointError, match="no checkpoint there"):
        i2i.load("s3://i2i-test/nothing/here")


def test_the_mirror_holds_tensorboard_events_and_step_grids(s3: str, synth_dir: Path, tmp_path):
    import s3fs

    cfg = tiny_config(synth_dir, tmp_path / "unused", max_steps=4, image_every=2)
    cfg.train.out = "s3://i2i-test/runs/pictures"
    train(cfg, progress=False)
    listing = {
        p.split("runs/pictures/")[1] for p in s3fs.S3FileSystem().find("i2i-test/runs/pictures")
    }
    assert {"samples/step_00000002.png", "samples/step_00000004.png"} <= listing
    assert any(name.startswith("tensorboard/events.out.tfevents") for name in listing)
