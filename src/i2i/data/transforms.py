"""Paired preprocessing with torchvision transforms v2.

v2 transforms called on two ``tv_tensors.Image`` draw one set of random parameters and apply it
to both, so a pair stays aligned under crop and flip. Training (as in the pix2pix paper):
resize to ``load_size``, random ``crop_size`` crop, random horizontal flip. Evaluation and
translation: a deterministic resize to ``crop_size``, no flip.

``preprocess``: ``resize_and_crop`` (the above), ``resize`` (straight to ``crop_size``, no crop),
``none`` (images keep their size; only the flip applies).
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from i2i.config import DataConfig


def paired_transform(cfg: DataConfig, train: bool) -> v2.Transform:
    size = (cfg.crop_size, cfg.crop_size)
    ops: list[v2.Transform] = []
    if cfg.preprocess == "resize_and_crop" and train:
        ops += [v2.Resize((cfg.load_size, cfg.load_size), antialias=True), v2.RandomCrop(size)]
    elif cfg.preprocess in ("resize_and_crop", "resize"):
        ops.append(v2.Resize(size, antialias=True))
    if train and cfg.flip:
        ops.append(v2.RandomHorizontalFlip())
    return v2.Compose(ops) if ops else v2.Identity()


def apply_joint(
    transform: v2.Transform, images: tuple[torch.Tensor, ...], seed: int | None
) -> tuple[torch.Tensor, ...]:
    """Apply one draw of ``transform`` to all ``images``; ``seed`` fixes that draw.

    v2 draws its random parameters from torch's global generator; forking it keeps a seeded
    draw from disturbing (or depending on) the training loop's own random stream.
    """
    wrapped = tuple(tv_tensors.Image(im) for im in images)
    if seed is None:
        out = transform(wrapped)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out = transform(wrapped)
    return tuple(o.as_subclass(torch.Tensor) for o in out)
