"""Inference: load a checkpoint and translate images of any size."""

from i2i.infer.translator import Translator, translate_files

__all__ = ["Translator", "translate_files"]
