"""Models: what one training step of each method does (one file per method), registered by
kind in ``MODELS``; ``build_model`` makes the one a run's config names."""

from __future__ import annotations

from i2i.models.base import MODELS, Model, Update, build_model, data_kind, model_card
from i2i.models.colorization import Colorization
from i2i.models.cut import CUT
from i2i.models.cyclegan import CycleGAN
from i2i.models.dcgan import DCGAN
from i2i.models.pix2pix import Pix2Pix

__all__ = [
    "CUT",
    "DCGAN",
    "MODELS",
    "Colorization",
    "CycleGAN",
    "Model",
    "Pix2Pix",
    "Update",
    "build_model",
    "data_kind",
    "model_card",
]
