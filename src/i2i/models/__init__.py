"""Models: what one training step of each method does (one file per method), and
``build_model``, which makes the one a run's config names."""

from __future__ import annotations

from i2i.config import CUTConfig, CycleGANConfig, Pix2PixConfig, RunConfig
from i2i.models.base import Model
from i2i.models.cut import CUT
from i2i.models.cyclegan import CycleGAN
from i2i.models.dcgan import DCGAN
from i2i.models.pix2pix import Pix2Pix

# the kind of data each method learns from (see i2i.data.build)
DATA_KINDS = {
    "pix2pix": "paired",
    "cyclegan": "unpaired",
    "cut": "unpaired",
    "fastcut": "unpaired",
    "dcgan": "images",
}


AnyModel = Pix2Pix | CycleGAN | CUT | DCGAN


def build_model(cfg: RunConfig) -> AnyModel:
    m, d = cfg.model, cfg.data
    if isinstance(m, Pix2PixConfig):
        return Pix2Pix(m, d.input_nc, d.output_nc)
    if isinstance(m, CycleGANConfig):
        return CycleGAN(m, d.input_nc, d.output_nc)
    if isinstance(m, CUTConfig):
        return CUT(m, d.input_nc, d.output_nc)
    return DCGAN(m, d.output_nc, d.crop_size)


__all__ = [
    "CUT",
    "DATA_KINDS",
    "DCGAN",
    "AnyModel",
    "CycleGAN",
    "Model",
    "Pix2Pix",
    "build_model",
]
