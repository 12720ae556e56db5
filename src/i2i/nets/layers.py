"""Normalization layers and weight initialization shared by every network."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

import torch
import torch.nn.functional as F
from torch import nn

from i2i.config import Init, Norm


def norm_layer(kind: Norm) -> Callable[[int], nn.Module]:
    """A constructor ``f(channels) -> module`` for the normalization ``kind``.

    Instance norm keeps no running statistics (as in pix2pix/CycleGAN), so a network behaves the
    same in train and eval mode; batch norm switches to running statistics in eval mode.
    """
    if kind == "instance":
        return lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)
    if kind == "batch":
        return lambda c: nn.BatchNorm2d(c, affine=True, track_running_stats=True)
    if kind == "none":
        return lambda c: nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; use instance, batch or none")


def conv_bias(kind: Norm) -> bool:
    """A conv followed by batch norm needs no bias (the norm's shift replaces it)."""
    return kind != "batch"


class ConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` (same parameters, same results) that computes small CPU feature
    maps as one matrix product plus ``fold`` (col2im).

    Why: on the CPU, oneDNN re-lays-out the whole weight on every call, and the U-Net's innermost
    decoder levels carry 1024x512x4x4 weights (32 MiB) over 1x1 to 8x8 maps, so the layout work
    outweighs the arithmetic: profiled at 2-3x the time of the plain product, forward plus
    backward (``benchmarks/train_speed.py``). Larger maps, CUDA, tracing (ONNX export) and
    ``torch.compile`` take the stock path. Only the summation order differs (outputs agree to
    about 1e-6).
    """

    def __init__(self, *args: object, matmul_max_pixels: int = 64, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.matmul_max_pixels = matmul_max_pixels  # 0 always takes the stock path

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if (
            x.device.type == "cpu"
            and x.dim() == 4
            and x.shape[-2] * x.shape[-1] <= self.matmul_max_pixels
            and output_size is None
            and self.groups == 1
            and self.dilation == (1, 1)
            and self.output_padding == (0, 0)
            and not torch.jit.is_tracing()
            and not torch.compiler.is_compiling()
        ):
            return self._matmul_forward(x)
        return super().forward(x, output_size)

    def _matmul_forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c_in, h, w = x.shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        ph, pw = cast(tuple[int, int], self.padding)
        c_out = self.weight.shape[1]
        # every input pixel scatters a c_out x kh x kw patch; fold sums the overlapping patches
        patches = self.weight.reshape(c_in, c_out * kh * kw).t() @ x.reshape(b, c_in, h * w)
        size = ((h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw)
        y = F.fold(patches, size, (kh, kw), padding=(ph, pw), stride=(sh, sw))
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


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
