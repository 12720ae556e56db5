"""Models: what one training step of each method does (one file per method)."""

from i2i.models.pix2pix import Pix2Pix

__all__ = ["Pix2Pix"]
