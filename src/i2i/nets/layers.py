"""Normalization layers and weight initialization shared by every network.

Two kinds of layer normalize each image by its own per-channel statistics (mean and variance
over H and W): instance norm, and batch norm with ``batch_stats="image"``. Tiled translation
must give every tile the statistics of the whole image, or each tile is normalized differently
and the result shows tile-shaped blocks; :func:`measure_statistics` and
:func:`fixed_statistics` let a caller measure them on one pass and impose them on others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from i2i.config import BatchStats, Init, Norm

# (mean, variance) of one image-statistics layer's input, each 1xCx1x1 (or NxCx1x1)
Moments = tuple[torch.Tensor, torch.Tensor]


def norm_layer(kind: Norm, batch_stats: BatchStats = "running") -> Callable[[int], nn.Module]:
    """A constructor ``f(channels) -> module`` for the normalization ``kind``.

    Instance norm keeps no running statistics (as in pix2pix/CycleGAN), so a network behaves the
    same in train and eval mode. Batch norm switches to running statistics in eval mode, or,
    with ``batch_stats="image"``, always normalizes each image by its own statistics (what the
    pix2pix paper does at test time, section 3.3: batch norm on the test batch, of one image).
    """
    if kind == "instance":
        return InstanceNorm2d
    if kind == "batch":
        if batch_stats == "image":
            return ImageStatsBatchNorm2d
        return lambda c: nn.BatchNorm2d(c, affine=True, track_running_stats=True)
    if kind == "none":
        return lambda c: nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; use instance, batch or none")


class ImageStatistics(nn.Module):
    """A layer that normalizes each image by its own per-channel moments over H and W. When
    ``record`` is set it keeps the moments it used (``recorded``); within
    :func:`fixed_statistics` it uses the moments it is given instead of computing them."""

    eps: float
    record: bool = False
    recorded: Moments | None = None
    fixed: Moments | None = None

    def scale_shift(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(scale, shift) applied after normalizing, or (None, None)."""
        return None, None

    def stock(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's usual computation (PyTorch's instance-norm kernel)."""
        weight, bias = self.scale_shift()
        return F.instance_norm(x, weight=weight, bias=bias, eps=self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.record and self.fixed is None:
            return self.stock(x)
        if self.fixed is not None:
            mean, var = self.fixed
        else:
            x32 = x.float()
            var, mean = torch.var_mean(x32, dim=(2, 3), keepdim=True, correction=0)
        if self.record:
            self.recorded = (mean, var)
        y = (x.float() - mean) * torch.rsqrt(var + self.eps)
        weight, bias = self.scale_shift()
        if weight is not None and bias is not None:
            y = y * weight[:, None, None] + bias[:, None, None]
        return y.to(x.dtype)


class ImageStatsBatchNorm2d(ImageStatistics, nn.BatchNorm2d):
    """Batch norm that normalizes each image by its own statistics, in training and in eval mode
    alike (batch norm on a batch of one image); its learned scale and shift apply as usual. It
    keeps the running statistics of the weights it was given (the state dict is batch norm's)
    but never uses or updates them."""

    def __init__(self, channels: int) -> None:
        nn.BatchNorm2d.__init__(self, channels, affine=True, track_running_stats=True)

    def scale_shift(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return self.weight, self.bias


def image_statistics_layers(net: nn.Module) -> list[ImageStatistics]:
    """The layers of ``net`` that normalize each image by its own statistics, in call order
    (the order of ``net.modules()``, which i2i's generators call them in)."""
    return [m for m in net.modules() if isinstance(m, ImageStatistics)]


def measure_statistics(net: nn.Module, x: torch.Tensor) -> list[Moments]:
    """The (mean, variance) each image-statistics layer of ``net`` normalizes with on a pass of
    ``x``, in :func:`image_statistics_layers` order (what :func:`fixed_statistics` takes)."""
    layers = image_statistics_layers(net)
    for layer in layers:
        layer.record = True
    try:
        net(x)
        found = [layer.recorded for layer in layers]
    finally:
        for layer in layers:
            layer.record, layer.recorded = False, None
    return [m for m in found if m is not None]


@contextmanager
def fixed_statistics(net: nn.Module, moments: list[Moments]) -> Iterator[None]:
    """Within the block, ``net``'s image-statistics layers normalize with ``moments`` (one
    (mean, variance) per layer, as :func:`measure_statistics` gives them) rather than their
    input's own."""
    layers = image_statistics_layers(net)
    if len(moments) != len(layers):
        raise ValueError(f"{len(moments)} moments for {len(layers)} image-statistics layers")
    for layer, m in zip(layers, moments, strict=True):
        layer.fixed = m
    try:
        yield
    finally:
        for layer in layers:
            layer.fixed = None


class InstanceNorm2d(ImageStatistics, nn.InstanceNorm2d):
    """Instance norm without affine parameters or running statistics, as in pix2pix/CycleGAN,
    that ``torch.compile`` fuses in either memory layout.

    Compiled, the stock op becomes ``x.contiguous().view(1, N * C, H, W)`` and a batch norm,
    which copies every channels_last activation to NCHW and back: on an H100 a bf16 CycleGAN
    step ran at 99 img/s with it and 117 with the moments below. Uncompiled, the stock kernel
    is the faster one and stays (docs/performance.md, "CycleGAN on the H100")."""

    def __init__(self, channels: int) -> None:
        nn.InstanceNorm2d.__init__(self, channels, affine=False, track_running_stats=False)

    def stock(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():
            return instance_norm_by_moments(x, self.eps)
        return nn.InstanceNorm2d.forward(self, x)


def instance_norm_by_moments(x: torch.Tensor, eps: float) -> torch.Tensor:
    """``F.instance_norm(x)`` as per-image, per-channel moments over H and W, in float32
    whatever ``x``'s precision (as the stock kernel computes them), in ``x``'s layout."""
    x32 = x.float()
    var, mean = torch.var_mean(x32, dim=(2, 3), keepdim=True, correction=0)
    return ((x32 - mean) * torch.rsqrt(var + eps)).to(x.dtype)


def conv_bias(kind: Norm) -> bool:
    """A conv followed by batch norm needs no bias (the norm's shift replaces it)."""
    return kind != "batch"


M = TypeVar("M", bound=nn.Module)


def init_weights(net: M, kind: Init = "normal", gain: float = 0.02) -> M:
    """Initialize conv/linear weights as in the pix2pix paper (N(0, 0.02)) or by ``kind``."""

    def init(m: nn.Module) -> None:
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            if kind == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif kind == "orthogonal":
                nn.init.orthogonal_(m.weight, gain=gain)
            else:
                raise ValueError(f"unknown init {kind!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)

    net.apply(init)
    return net
