"""The seam between models and the loop: ``update(names, loss)`` steps exactly the named
parameter groups, clips when asked, scales fp16 losses, and saves what resume needs."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from i2i.config import TrainConfig
from i2i.runs.checkpoint import load_trainer_state, resolve_checkpoint
from i2i.train.loop import train
from i2i.train.step import Updater

from .conftest import tiny_config


def two_groups() -> tuple[nn.Linear, nn.Linear, dict[str, torch.optim.Optimizer]]:
    torch.manual_seed(0)
    g, d = nn.Linear(4, 4), nn.Linear(4, 1)
    opts = {"G": torch.optim.SGD(g.parameters(), lr=0.1), "D": torch.optim.SGD(d.parameters())}
    return g, d, opts


def test_an_update_steps_only_the_named_group():
    g, d, opts = two_groups()
    update = Updater(opts, TrainConfig(), torch.device("cpu"))
    before_g, before_d = g.weight.clone(), d.weight.clone()
    update("G", d(g(torch.randn(8, 4))).pow(2).mean())
    assert not torch.equal(g.weight, before_g)
    assert torch.equal(d.weight, before_d)  # D's gradient was computed, not applied
    update(("G", "D"), d(g(torch.randn(8, 4))).pow(2).mean())
    assert not torch.equal(d.weight, before_d)


def test_clipping_bounds_the_gradient_norm():
    g, d, opts = two_groups()
    update = Updater(opts, TrainConfig(clip_grad_norm=0.01), torch.device("cpu"))
    update("G", 1000 * d(g(torch.randn(8, 4))).sum())
    norm = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in g.parameters()]))
    assert norm.item() == pytest.approx(0.01, rel=1e-3)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_reduced_precision_trains_and_resumes(synth_dir, tmp_path, precision):
    """fp16 keeps one loss scaler per update, saved with the optimizers for resume."""
    cfg = tiny_config(synth_dir, tmp_path / "run", max_steps=3, precision=precision)
    result = train(cfg, progress=False)
    assert all(torch.isfinite(torch.tensor(v)) for v in result.last_losses.values())
    state = load_trainer_state(resolve_checkpoint(result.run_dir))
    assert set(state["scalers"]) == ({"D", "G"} if precision == "fp16" else set())
    cfg.train.max_steps = 5
    assert train(cfg, resume=True, progress=False).step == 5
    meta = json.loads((resolve_checkpoint(result.run_dir) / "trainer.json").read_text())
    assert meta["step"] == 5
