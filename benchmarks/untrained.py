"""An untrained pix2pix checkpoint for speed benchmarks (speed does not depend on the weights)."""

from __future__ import annotations

from pathlib import Path

import torch

from i2i.config import DataConfig, GeneratorConfig, GeneratorKind, Pix2PixConfig, RunConfig
from i2i.models import Pix2Pix, model_card
from i2i.runs.checkpoint import save_checkpoint


def untrained_checkpoint(out: Path, generator: GeneratorKind = "unet_256", ngf: int = 64) -> Path:
    torch.manual_seed(0)
    model_cfg = Pix2PixConfig(generator=GeneratorConfig(kind=generator, ngf=ngf))
    cfg = RunConfig(data=DataConfig(crop_size=256), model=model_cfg)
    model = Pix2Pix(model_cfg)
    return save_checkpoint(out, "step_00000000", model.state_dict(), model_card(model, cfg, 0))
