"""Normalization layers and weight initialization shared by every network."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

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


# Defaults of the CPU kernels below (a benchmark switches them off and back)
MATMUL_MAX_PIXELS = 64
WINOGRAD_MIN_CHANNELS = 128


def eager_cpu_maps(x: torch.Tensor) -> bool:
    """Whether the hand-written CPU kernels below may run on ``x``: a 4-D CPU tensor in eager
    mode. Tracing (ONNX export) and ``torch.compile`` need the stock ops they know."""
    return (
        x.device.type == "cpu"
        and x.dim() == 4
        and not torch.jit.is_tracing()
        and not torch.compiler.is_compiling()
    )


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

    def __init__(
        self, *args: object, matmul_max_pixels: int = MATMUL_MAX_PIXELS, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.matmul_max_pixels = matmul_max_pixels  # 0 always takes the stock path

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if (
            eager_cpu_maps(x)
            and x.shape[-2] * x.shape[-1] <= self.matmul_max_pixels
            and output_size is None
            and self.groups == 1
            and self.dilation == (1, 1)
            and self.output_padding == (0, 0)
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


def _winograd_matrices() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """F(4x4, 3x3) with interpolation points 0, +-1, +-2, inf (Lavin & Gray 2016, eq. 8-10),
    as Kronecker products that act on row-major flattened tiles: input 6x6 -> 36, filter 3x3 ->
    36, products 36 -> output 4x4 (16). Kept in float64 and cast at use, so 1/6 and 1/24 round
    once, to the input's precision."""
    bt = torch.tensor(
        [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
         [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        dtype=torch.float64,
    )  # fmt: skip
    g = torch.tensor(
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
         [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        dtype=torch.float64,
    )  # fmt: skip
    at = torch.tensor(
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
        dtype=torch.float64,
    )
    return torch.kron(bt, bt), torch.kron(g, g), torch.kron(at, at)


WINOGRAD_INPUT, WINOGRAD_FILTER, WINOGRAD_OUTPUT = _winograd_matrices()


def _tiles(h: int, w: int) -> tuple[int, int]:
    """4x4 output tiles of a 3x3 convolution over an h x w input (the last may reach past the
    edge: the input is zero-padded there and those outputs are cropped)."""
    return -(-(h - 2) // 4), -(-(w - 2) // 4)


def _filter_transform(weight: torch.Tensor) -> torch.Tensor:
    """G g G^T of every k x c filter: 36 x k x c."""
    k, c = weight.shape[:2]
    g = weight.reshape(k, c, 9).permute(2, 0, 1).reshape(9, k * c)
    return (WINOGRAD_FILTER.to(weight.dtype) @ g).view(36, k, c)


def _input_transforms(x: torch.Tensor, th: int, tw: int) -> Iterator[torch.Tensor]:
    """B^T d B of every overlapping 6x6 input tile, one image at a time: 36 x c x tiles."""
    c = x.shape[1]
    x = F.pad(x, (0, 4 * tw + 2 - x.shape[3], 0, 4 * th + 2 - x.shape[2]))
    for tiles in F.unfold(x, 6, stride=4):  # (c * 36) x tiles
        d = tiles.view(c, 36, th * tw).transpose(0, 1).reshape(36, c * th * tw)
        yield (WINOGRAD_INPUT.to(x.dtype) @ d).view(36, c, th * tw)


class WinogradConv3x3(torch.autograd.Function):
    """``F.conv2d(x, weight)`` for a 3x3 kernel, stride 1, no padding, as Winograd F(4x4, 3x3):
    each 4x4 output tile takes 36 channel products instead of 144. Like the stock convolution it
    keeps only ``x`` and ``weight`` for the backward pass, which recomputes the tile transforms
    (keeping them would add about 20 MiB per 256-channel layer at 64x64)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        (n, _, h, w), k = x.shape, weight.shape[0]
        th, tw = _tiles(h, w)
        u, a = _filter_transform(weight), WINOGRAD_OUTPUT.to(x.dtype)
        y = x.new_empty(n, k, 4 * th, 4 * tw)
        for i, v in enumerate(_input_transforms(x, th, tw)):
            m = torch.bmm(u, v)  # the 36 products, each summed over channels
            y[i] = (
                (a @ m.view(36, -1))
                .view(4, 4, k, th, tw)
                .permute(2, 3, 0, 4, 1)
                .reshape(k, 4 * th, 4 * tw)
            )  # A^T m A: the 4x4 outputs of every tile, in place
        return y[..., : h - 2, : w - 2]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, weight = ctx.saved_tensors
        (_, c, h, w), k = x.shape, weight.shape[0]
        th, tw = _tiles(h, w)
        grad = F.pad(grad, (0, 4 * tw - grad.shape[3], 0, 4 * th - grad.shape[2]))
        u, a, b = _filter_transform(weight), WINOGRAD_OUTPUT.to(x.dtype), WINOGRAD_INPUT.to(x.dtype)
        grad_u = torch.zeros_like(u)
        grad_tiles = []
        for g, v in zip(grad, _input_transforms(x, th, tw), strict=True):
            g = g.view(k, th, 4, tw, 4).permute(2, 4, 0, 1, 3).reshape(16, k * th * tw)
            gm = (a.t() @ g).view(36, k, th * tw)
            if ctx.needs_input_grad[1]:
                grad_u += torch.bmm(gm, v.transpose(1, 2))
            if ctx.needs_input_grad[0]:
                gd = (b.t() @ torch.bmm(u.transpose(1, 2), gm).view(36, -1)).view(36, c, -1)
                grad_tiles.append(gd.transpose(0, 1).reshape(c * 36, th * tw))
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            size = (4 * th + 2, 4 * tw + 2)
            grad_x = F.fold(torch.stack(grad_tiles), size, 6, stride=4)[..., :h, :w]
        if ctx.needs_input_grad[1]:
            g9 = WINOGRAD_FILTER.to(x.dtype).t() @ grad_u.view(36, k * c)
            grad_w = g9.view(3, 3, k, c).permute(2, 3, 0, 1)
        return grad_x, grad_w


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters, same results up to rounding) that computes wide 3x3
    stride-1 convolutions over small maps on the CPU with Winograd's minimal filtering,
    F(4x4, 3x3).

    Why: oneDNN has no Winograd kernel for AVX2 CPUs, and the ResNet generator's residual blocks
    (3x3, 256 channels, 64x64 maps for 256 px images) are most of CycleGAN's and CUT's FLOPs.
    Winograd needs 4x fewer multiplications, but its transformed tiles cost memory traffic, so
    it pays only for wide layers over maps that keep them in cache. Measured on a 2-core AVX2
    CPU, 256 channels, forward + backward: 1.2-1.6x at 64x64 and 96x96, 0.8-0.9x at 128x128 and
    256x256; 0.45x at 64 channels (``benchmarks/train_speed.py``). Other layers, CUDA (cuDNN
    picks its own algorithms), autocast, tracing (ONNX export) and ``torch.compile`` take the
    stock path. Outputs and gradients agree with the direct sum to about 1e-5 relative.
    """

    def __init__(
        self,
        *args: object,
        winograd_min_channels: int = WINOGRAD_MIN_CHANNELS,
        winograd_max_pixels: int = 100 * 100,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.winograd_min_channels = winograd_min_channels  # 0 always takes the stock path
        self.winograd_max_pixels = winograd_max_pixels  # of an input map, padding included

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            self.winograd_min_channels > 0
            and min(self.in_channels, self.out_channels) >= self.winograd_min_channels
            and eager_cpu_maps(x)
            and x.dtype == torch.float32
            and x.shape[-2] * x.shape[-1] <= self.winograd_max_pixels
            and self.kernel_size == (3, 3)
            and self.stride == (1, 1)
            and self.dilation == (1, 1)
            and self.padding == (0, 0)
            and self.groups == 1
            and not torch.is_autocast_enabled("cpu")
        ):
            y = WinogradConv3x3.apply(x, self.weight)
            return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)
        return super().forward(x)


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
