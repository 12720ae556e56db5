import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

import i2i
from i2i.config import RunConfig, to_dict
from i2i.data.paired import PairedDataset
from i2i.errors import TrainingDiverged
from i2i.infer import Translator
from i2i.metrics.evaluate import evaluate_translator
from i2i.models import Pix2Pix
from i2i.runs.card import ModelCard
from i2i.runs.checkpoint import load_weights, resolve_checkpoint, save_checkpoint
from i2i.runs.layout import LATEST
from i2i.train.accel import loader_workers
from i2i.train.loop import lr_factor, train
from i2i.train.monitor import read_metrics
from i2i.train.options import load_run_config

from .conftest import tiny_config

CARD = ModelCard("pix2pix", {})  # what the atomic-write tests save beside their tensors


def test_pix2pix_learns_on_held_out_pairs(synth_dir, tmp_path):
    """A tiny pix2pix must measurably beat its starting L1 on pairs it never saw."""
    cfg = tiny_config(synth_dir, tmp_path / "run", max_steps=150, log_every=10)
    val = PairedDataset(cfg.data, "val", train=False)
    torch.manual_seed(cfg.train.seed)
    before = evaluate_translator(Translator(Pix2Pix(cfg.model).G), val, ["l1"])
    result = train(cfg, progress=False)
    after = evaluate_translator(i2i.load(result.run_dir), val, ["l1"])
    assert after["l1"] < 0.5 * before["l1"], (before, after)
    losses = [m["G_L1"] for m in read_metrics(result.run_dir / "metrics.jsonl")]
    assert sum(losses[-3:]) < 0.6 * sum(losses[:3])


def test_run_folder_holds_everything(synth_dir, tmp_path):
    cfg = tiny_config(synth_dir, tmp_path / "run", max_steps=6, save_every=3, image_every=3)
    result = train(cfg, progress=False)
    run = result.run_dir
    assert load_run_config(run) == cfg
    assert (run / "samples.png").is_file() and (run / "loss_curves.png").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step_00000003.png",
        "step_00000006.png",
    ]
    assert any((run / "tensorboard").iterdir())
    assert "finished at step 6" in (run / "train.log").read_text()
    assert [m["step"] for m in read_metrics(run / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
    desc = json.loads((resolve_checkpoint(run) / "model.json").read_text())
    assert desc["model"] == "pix2pix" and desc["step"] == 6
    assert desc["translate"] == {"nets": {"AtoB": "G"}, "default": "AtoB", "train_size": 32}
    assert desc["nets"]["G"]["config"]["depth"] == 5
    with pytest.raises(FileExistsError, match="already holds a run.*--resume"):
        train(cfg, progress=False)


def test_every_gan_mode_and_recon_loss_trains(synth_dir, tmp_path):
    for i, (gan, recon) in enumerate([("lsgan", "l2"), ("hinge", "l1+l2"), ("wgan-gp", "l1")]):
        cfg = tiny_config(synth_dir, tmp_path / str(i), max_steps=2)
        cfg.model.gan_mode, cfg.model.recon_loss = gan, recon  # type: ignore[assignment]
        losses = train(cfg, progress=False).last_losses
        assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
        assert ("D_GP" in losses) == (gan == "wgan-gp")
        assert {"l1": "G_L1", "l2": "G_L2", "l1+l2": "G_L1L2"}[recon] in losses


def test_lr_is_constant_then_decays_linearly():
    assert lr_factor(0, 10, epochs=2, epochs_decay=3) == 1.0
    assert lr_factor(20, 10, epochs=2, epochs_decay=3) == 1.0
    assert lr_factor(30, 10, epochs=2, epochs_decay=3) == pytest.approx(0.75)
    assert lr_factor(49, 10, epochs=2, epochs_decay=3) == pytest.approx(1 - 2.9 / 4)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "i2i", *args]


def test_resume_after_sigkill_continues_the_same_trajectory(synth_dir, tmp_path):
    """Kill a run with SIGKILL mid-way, resume it: the losses match an uninterrupted run."""
    steps = 120
    cfg = tiny_config(synth_dir, tmp_path / "straight", max_steps=steps, save_every=10)
    train(cfg, progress=False)
    reference = read_metrics(tmp_path / "straight" / "metrics.jsonl")

    cfg.train.out = str(tmp_path / "killed")
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(to_dict(cfg)))
    proc = subprocess.Popen(
        _cli("train", "--config", str(tmp_path / "cfg.yaml"), "--no-progress"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    latest = tmp_path / "killed" / "checkpoints" / LATEST
    deadline = time.time() + 120
    while not (latest.exists() and latest.read_text().strip() >= "step_00000020"):
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.time() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    stopped_at = int(latest.read_text().strip().split("_")[1])
    assert stopped_at < steps  # it really was cut short

    done = subprocess.run(
        _cli("train", "--resume", str(tmp_path / "killed"), "--no-progress"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    resumed = read_metrics(tmp_path / "killed" / "metrics.jsonl")
    assert [m["step"] for m in resumed] == list(range(1, steps + 1))  # no gaps, no repeats
    for ref, got in zip(reference, resumed, strict=True):
        for name in ("D", "G_GAN", "G_L1"):
            assert got[name] == pytest.approx(ref[name], rel=1e-5, abs=1e-7), (ref["step"], name)
    a = load_weights(resolve_checkpoint(tmp_path / "straight"))
    b = load_weights(resolve_checkpoint(tmp_path / "killed"))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_a_failed_checkpoint_write_leaves_the_previous_one(tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    good = save_checkpoint(root, "step_00000001", {"w": torch.ones(3)}, CARD)

    import safetensors.torch  # save_checkpoint imports save_file from it when it runs

    real_save = safetensors.torch.save_file

    def crash_on_trainer(tensors, path, metadata=None):
        if "trainer" in str(path):
            raise OSError("disk full")
        real_save(tensors, path, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", crash_on_trainer)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(
            root,
            "step_00000002",
            {"w": torch.zeros(3)},
            CARD,
            trainer_state={"step": 2, "t": torch.zeros(1)},
        )
    assert resolve_checkpoint(root) == good
    assert torch.equal(load_weights(good)["w"], torch.ones(3))
    assert not (root / "step_00000002").exists()
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []


def test_a_half_written_checkpoint_from_a_kill_is_ignored(tmp_path):
    root = tmp_path / "checkpoints"
    good = save_checkpoint(root, "step_00000001", {"w": torch.ones(3)}, CARD)
    partial = root / ".tmp-step_00000002-deadbeef"  # what SIGKILL mid-write leaves behind
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"\x00" * 10)
    assert resolve_checkpoint(root) == good
    save_checkpoint(root, "step_00000003", {"w": torch.ones(3)}, CARD, keep=1)
    assert sorted(p.name for p in root.glob("step_*")) == ["step_00000003"]


@pytest.mark.parametrize("log_every", [1, 100])
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(
    synth_dir, tmp_path, monkeypatch, log_every
):
    """Losses are read at logging and saving steps only (reading waits for the device); the
    NaN of step 5 must still be named, and found before step 6's checkpoint is written."""
    real_step = Pix2Pix.training_step
    calls = {"n": 0}

    def step_then_nan(self, batch, opt):
        calls["n"] += 1
        losses = real_step(self, batch, opt)
        if calls["n"] == 5:
            losses["G_GAN"] = torch.tensor(float("nan"))
        return losses

    monkeypatch.setattr(Pix2Pix, "training_step", step_then_nan)
    cfg = tiny_config(synth_dir, tmp_path / "run", max_steps=10, save_every=2, log_every=log_every)
    with pytest.raises(TrainingDiverged, match=r"G_GAN=nan at step 5.*step_00000004.*untouched"):
        train(cfg, progress=False)
    ckpt = resolve_checkpoint(tmp_path / "run")
    assert ckpt.name == "step_00000004"
    assert all(torch.isfinite(t).all() for t in load_weights(ckpt).values())


def test_training_images_that_do_not_fit_the_generator(synth_dir, tmp_path):
    cfg = tiny_config(synth_dir, tmp_path / "run")
    cfg.model.generator.depth = 6  # needs multiples of 64; the crops are 32
    with pytest.raises(Exception, match="multiples of 64"):
        train(cfg, progress=False)


def test_config_defaults_match_the_paper():
    cfg = RunConfig()
    assert (cfg.train.lr, cfg.train.beta1, cfg.train.beta2) == (2e-4, 0.5, 0.999)
    assert (cfg.data.load_size, cfg.data.crop_size) == (286, 256)
    assert cfg.model.lambda_recon == 100 and cfg.model.discriminator.n_layers == 3


def test_loader_workers_default_to_none_on_the_cpu_and_a_few_per_gpu(monkeypatch):
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert (loader_workers(None, cpu), loader_workers(None, gpu)) == (0, 4)
    assert loader_workers(3, cpu) == loader_workers(3, gpu) == 3  # asked for: as asked
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # 4 GPU processes share the 16 cores
    assert loader_workers(None, gpu) == 2
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert loader_workers(None, gpu) == 0
