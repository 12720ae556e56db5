"""Inference: load a checkpoint and translate images of any size."""

from i2i.infer.batch import translate_files
from i2i.infer.translator import Translator

__all__ = ["Translator", "translate_files"]
