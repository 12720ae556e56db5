"""Normalization layers and weight initialization shared by every network."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
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
        return InstanceNorm2d
    if kind == "batch":
        return lambda c: nn.BatchNorm2d(c, affine=True, track_running_stats=True)
    if kind == "none":
        return lambda c: nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; use instance, batch or none")


class InstanceNorm2d(nn.InstanceNorm2d):
    """Instance norm without affine parameters or running statistics, as in pix2pix/CycleGAN,
    that ``torch.compile`` fuses in either memory layout.

    Compiled, the stock op becomes ``x.contiguous().view(1, N * C, H, W)`` and a batch norm,
    which copies every channels_last activation to NCHW and back: on an H100 a bf16 CycleGAN
    step ran at 99 img/s with it and 117 with the moments below. Uncompiled, the stock kernel
    is the faster one and stays (docs/performance.md, "CycleGAN on the H100")."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, affine=False, track_running_stats=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():
            return instance_norm_by_moments(x, self.eps)
        return super().forward(x)


def instance_norm_by_moments(x: torch.Tensor, eps: float) -> torch.Tensor:
    """``F.instance_norm(x)`` as per-image, per-channel moments over H and W, in float32
    whatever ``x``'s precision (as the stock kernel computes them), in ``x``'s layout."""
    x32 = x.float()
    var, mean = torch.var_mean(x32, dim=(2, 3), keepdim=True, correction=0)
    return ((x32 - mean) * torch.rsqrt(var + eps)).to(x.dtype)


def conv_bias(kind: Norm) -> bool:
    """A conv followed by batch norm needs no bias (the norm's shift replaces it)."""
    return kind != "batch"


# Defaults of the CPU kernels below (a benchmark switches them off and back)
MATMUL_MAX_PIXELS = 64  # per image, into a transposed convolution
MATMUL_MAX_ROWS = 128  # output pixels of the whole batch, out of a convolution
# convolutions with fewer output channels than an AVX2 register holds floats; see Conv2d
FOLD_MAX_OUT_CHANNELS = 8
FOLD_MIN_IN_CHANNELS, FOLD_MIN_KERNEL = 128, 4
WINOGRAD_MIN_CHANNELS = 128
# input maps (padding included) where Winograd beats the stock kernel; see Conv2d
WINOGRAD_MIN_PIXELS, WINOGRAD_MAX_PIXELS = 32 * 32, 100 * 100


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
            padding = cast(tuple[int, int], self.padding)
            return transposed_conv_by_fold(x, self.weight, self.stride, padding, self.bias)
        return super().forward(x, output_size)


def transposed_conv_by_fold(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """``F.conv_transpose2d(x, weight, bias, stride, padding)`` as one product and ``fold``
    (col2im); ``weight`` is c_in x c_out x kh x kw."""
    b, c_in, h, w = x.shape
    c_out, kh, kw = weight.shape[1:]
    (sh, sw), (ph, pw) = stride, padding
    # every input pixel scatters a c_out x kh x kw patch; fold sums the overlapping patches.
    # The weight is read in its memory order, never copied (a channels_last one is
    # c_in x kh x kw x c_out in memory: its patches are reordered for fold, a few MiB)
    x = x.reshape(b, c_in, h * w)
    if weight.is_contiguous():
        patches = weight.reshape(c_in, -1).t() @ x
    else:
        patches = weight.permute(0, 2, 3, 1).reshape(c_in, -1).t() @ x
        patches = patches.view(b, kh * kw, c_out, h * w).transpose(1, 2).flatten(1, 2)
    size = ((h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw)
    y = F.fold(patches, size, (kh, kw), padding=(ph, pw), stride=(sh, sw))
    return y if bias is None else y + bias.view(1, -1, 1, 1)


@dataclass(frozen=True)
class WinogradTiles:
    """Winograd's minimal filtering F(m x m, r x r) (Lavin & Gray 2016): an m x m output tile
    of an r x r convolution from one (m + r - 1)^2 input tile, with (m + r - 1)^2 channel
    products instead of (m r)^2. The transforms act on row-major flattened tiles as Kronecker
    products; they are kept in float64 and cast at use, so each fraction rounds once."""

    m: int
    r: int
    input: torch.Tensor  # B^T (x) B^T: alpha^2 x alpha^2, alpha = m + r - 1
    filter: torch.Tensor  # G (x) G: alpha^2 x r^2
    output: torch.Tensor  # A^T (x) A^T: m^2 x alpha^2

    @property
    def alpha(self) -> int:
        return self.m + self.r - 1

    def tiles(self, h: int, w: int) -> tuple[int, int]:
        """Output tiles over an h x w input (the last may reach past the edge: the input is
        zero-padded there and those outputs are cropped)."""
        return -(-(h - self.r + 1) // self.m), -(-(w - self.r + 1) // self.m)


def winograd_tiles(m: int, r: int) -> WinogradTiles:
    """F(m x m, r x r) by Toom-Cook with the interpolation points 0, 1, -1, 2, -2 and infinity,
    which keep fp32 results within about 1e-5 of the direct sum for 6x6 input tiles. In exact
    arithmetic: row j of B^T holds the coefficients of prod_{i != j} (x - p_i) (for infinity,
    of prod_i (x - p_i)); G divides by prod_{i != j} (p_j - p_i); A^T evaluates powers."""
    points = [Fraction(p) for p in (0, 1, -1, 2, -2)]
    if m + r - 2 != len(points):
        raise ValueError(f"F({m}x{m}, {r}x{r}) needs {m + r - 2} points; only 6x6 tiles are set up")

    def coefficients(roots: list[Fraction]) -> list[Fraction]:  # of prod (x - root), ascending
        c = [Fraction(1)]
        for q in roots:  # times (x - q)
            c = [a - q * b for a, b in zip([Fraction(0), *c], [*c, Fraction(0)], strict=True)]
        return c

    def others(p: Fraction) -> list[Fraction]:
        return [q for q in points if q != p]

    bt = [[*coefficients(others(p)), Fraction(0)] for p in points] + [coefficients(points)]
    g = [[p**k / math.prod(p - q for q in others(p)) for k in range(r)] for p in points]
    g.append([Fraction(int(k == r - 1)) for k in range(r)])
    at = [[p**i for p in points] + [Fraction(int(i == m - 1))] for i in range(m)]

    def kron(rows: list[list[Fraction]]) -> torch.Tensor:
        t = torch.tensor([[float(v) for v in row] for row in rows], dtype=torch.float64)
        return torch.kron(t, t)

    return WinogradTiles(m, r, kron(bt), kron(g), kron(at))


# the output tile for each kernel size: 6x6 input tiles (36 products) either way
WINOGRAD = {3: winograd_tiles(4, 3), 4: winograd_tiles(3, 4)}


def _filter_transform(weight: torch.Tensor, t: WinogradTiles) -> torch.Tensor:
    """G g G^T of every k x c filter: alpha^2 x k x c."""
    k, c = weight.shape[:2]
    g = weight.reshape(k, c, t.r * t.r).permute(2, 0, 1).reshape(t.r * t.r, k * c)
    return (t.filter.to(weight.dtype) @ g).view(t.alpha**2, k, c)


def _input_transforms(x: torch.Tensor, t: WinogradTiles) -> Iterator[torch.Tensor]:
    """B^T d B of every overlapping input tile, one image at a time: alpha^2 x c x tiles."""
    c, (th, tw) = x.shape[1], t.tiles(*x.shape[-2:])
    x = F.pad(x, (0, t.m * tw + t.r - 1 - x.shape[3], 0, t.m * th + t.r - 1 - x.shape[2]))
    b = t.input.to(x.dtype)
    for tiles in F.unfold(x, t.alpha, stride=t.m):  # (c * alpha^2) x tiles
        d = tiles.view(c, t.alpha**2, th * tw).transpose(0, 1).reshape(t.alpha**2, c * th * tw)
        yield (b @ d).view(t.alpha**2, c, th * tw)


class WinogradConv(torch.autograd.Function):
    """``F.conv2d(x, weight)`` for a square kernel with an entry in ``WINOGRAD`` (3x3 or
    4x4), stride 1, no padding: 36 channel products per output tile instead of 144. Like the
    stock convolution it keeps only ``x`` and ``weight`` for the backward pass, which
    recomputes the tile transforms (keeping them would add about 20 MiB per 256-channel layer
    at 64x64)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        t = WINOGRAD[weight.shape[-1]]
        (n, _, h, w), k, m = x.shape, weight.shape[0], t.m
        th, tw = t.tiles(h, w)
        u, a = _filter_transform(weight, t), t.output.to(x.dtype)
        y = x.new_empty(n, k, m * th, m * tw)
        for i, v in enumerate(_input_transforms(x, t)):
            products = torch.bmm(u, v)  # each summed over channels
            y[i] = (
                (a @ products.view(t.alpha**2, -1))
                .view(m, m, k, th, tw)
                .permute(2, 3, 0, 4, 1)
                .reshape(k, m * th, m * tw)
            )  # A^T M A: the m x m outputs of every tile, in place
        return y[..., : h - t.r + 1, : w - t.r + 1]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, weight = ctx.saved_tensors
        t = WINOGRAD[weight.shape[-1]]
        (_, c, h, w), k, m, a2 = x.shape, weight.shape[0], t.m, t.alpha**2
        th, tw = t.tiles(h, w)
        grad = F.pad(grad, (0, m * tw - grad.shape[3], 0, m * th - grad.shape[2]))
        a, b = t.output.to(x.dtype), t.input.to(x.dtype)
        # the transformed filter carries the gradient to the input, the transformed input tiles
        # the one to the weight: each is made only when its gradient is needed (a critic
        # judging the generator's output needs no weight gradient)
        u = _filter_transform(weight, t) if ctx.needs_input_grad[0] else None
        tiles = _input_transforms(x, t) if ctx.needs_input_grad[1] else (None for _ in grad)
        grad_u: torch.Tensor | None = None
        grad_tiles = []
        for g, v in zip(grad, tiles, strict=True):
            g = g.view(k, th, m, tw, m).permute(2, 4, 0, 1, 3).reshape(m * m, k * th * tw)
            gm = (a.t() @ g).view(a2, k, th * tw)
            if v is not None:  # summed over the images, without a zeroed start
                vt = v.transpose(1, 2)
                grad_u = torch.bmm(gm, vt) if grad_u is None else grad_u.baddbmm_(gm, vt)
            if u is not None:
                gd = (b.t() @ torch.bmm(u.transpose(1, 2), gm).view(a2, -1)).view(a2, c, -1)
                grad_tiles.append(gd.transpose(0, 1).reshape(c * a2, th * tw))
        grad_x = grad_w = None
        if u is not None:
            size = (m * th + t.r - 1, m * tw + t.r - 1)
            grad_x = F.fold(torch.stack(grad_tiles), size, t.alpha, stride=m)[..., :h, :w]
        if grad_u is not None:  # G^T (.) G, in the weight's own layout (no copy to make it so)
            grad_w = (grad_u.view(a2, k * c).t() @ t.filter.to(x.dtype)).view(k, c, t.r, t.r)
        return grad_x, grad_w


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters, same results up to rounding) with three CPU paths: tiny
    output maps as one matrix product, few output channels as a product and ``fold``, and wide
    3x3 and 4x4 stride-1 convolutions over mid-sized maps with Winograd's minimal filtering,
    F(4x4, 3x3) and F(3x3, 4x4).

    Tiny maps: the U-Net's innermost encoder levels convolve 2x2 to 16x16 maps with 512x512x4x4
    weights (16 MiB), where oneDNN's per-call work on the weight outweighs the arithmetic. Up
    to ``MATMUL_MAX_ROWS`` output pixels in the batch, ``unfold`` plus one product is faster.
    Measured forward + backward on a 2-core AVX2 CPU, one image, against the stock kernel, at
    1 thread: 4.6x on a 2x2 input, 1.7x on 4x4 and 8x8, 1.3x on 16x16, 0.9-1.0x on 32x32 (256
    rows, so the stock kernel); at 2 threads: 2.7x, 1.0-1.1x, 1.1-1.2x, 1.0-1.1x, 0.85x.

    Winograd: oneDNN has no Winograd kernel for AVX2 CPUs. The ResNet generator's residual blocks
    (3x3, 256 channels, 64x64 maps for 256 px images) are most of CycleGAN's and CUT's FLOPs,
    and the 70 px PatchGAN's 4x4 256->512 convolution over 32x32 maps is 37% of a pix2pix step's.
    Winograd needs 4x (3x3) or 3.5x (4x4, with the cropped edge tiles) fewer multiplications,
    but transforming the filters and tiles costs memory traffic, so it pays only for wide
    layers over mid-sized maps (input, padding included, from 32x32 to 100x100). Measured on a
    2-core AVX2 CPU, one image, forward + backward against the stock kernel: 3x3 with 256
    channels 0.4x at 16x16, 0.7x at 24x24, 1.0x at 32x32 and 40x40, 1.2-1.6x at 64x64 and
    96x96, 0.8-0.9x at 128x128 and 256x256, 0.45x at 64 channels; 4x4 256->512 0.6x at 18x18,
    0.9x at 26x26, 1.0-1.2x at 34x34 (the 70 px PatchGAN's at 256 px), 1.6-1.9x at 42x42 to
    66x66, 1.5x at 98x98, 1.0x at 130x130. Other layers, CUDA (cuDNN picks its own
    algorithms), autocast, tracing (ONNX export) and ``torch.compile`` take the stock path.
    Outputs and gradients agree with the direct sum to about 1e-5 relative.

    Few output channels: oneDNN's direct kernels compute output channels in blocks of 8 or 16,
    so the PatchGAN's last layer (512 -> 1, 4x4) leaves most of each block idle: profiled at
    4-6 GFLOP/s against 70-80 for wide layers. Below ``fold_max_out_channels`` outputs, with
    at least 128 inputs and a 4x4 kernel or larger, at stride 1, the convolution is computed as
    the transpose of a transposed convolution: one product with the flipped weight turns each
    input pixel into its c_out x kh x kw contributions, and ``fold`` sums them. Measured forward
    + backward against the stock kernel on a 2-core AVX2 CPU: 2.4-4.4x for 512 -> 1 at 4x4
    over 32x32 to 128x128 maps, 1.1-2.8x for 3 outputs, at 1 and 2 threads. With 64 inputs
    (the ResNet generator's 7x7 output layer), or a 3x3 kernel, it is not reliably faster.
    """

    def __init__(
        self,
        *args: object,
        matmul_max_rows: int = MATMUL_MAX_ROWS,
        fold_max_out_channels: int = FOLD_MAX_OUT_CHANNELS,
        winograd_min_channels: int = WINOGRAD_MIN_CHANNELS,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # 0 turns a path off
        self.matmul_max_rows, self.winograd_min_channels = matmul_max_rows, winograd_min_channels
        self.fold_max_out_channels = fold_max_out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._plain_on_cpu(x):
            out_size = self._matmul_output_size(x)
            if out_size is not None:
                return self._matmul_forward(x, *out_size)
            if self._few_outputs():
                return self._fold_forward(x)
            pad = self._winograd_padding(x)
            if pad is not None:
                y = WinogradConv.apply(F.pad(x, (pad,) * 4) if pad else x, self.weight)
                return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)
        return super().forward(x)

    def _plain_on_cpu(self, x: torch.Tensor) -> bool:
        """What both CPU paths need: eager CPU maps, zero padding given in pixels, no dilation,
        no groups."""
        return (
            eager_cpu_maps(x)
            and isinstance(self.padding, tuple)
            and self.padding_mode == "zeros"
            and self.dilation == (1, 1)
            and self.groups == 1
        )

    def _matmul_output_size(self, x: torch.Tensor) -> tuple[int, int] | None:
        """The output's height and width when a plain call takes the matmul path (see the class
        docstring); None when it does not."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        ph, pw = cast(tuple[int, int], self.padding)
        h, w = (x.shape[-2] + 2 * ph - kh) // sh + 1, (x.shape[-1] + 2 * pw - kw) // sw + 1
        return (h, w) if x.shape[0] * h * w <= self.matmul_max_rows else None

    def _matmul_forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        n, padding = x.shape[0], cast(tuple[int, int], self.padding)
        cols = F.unfold(x, self.kernel_size, padding=padding, stride=self.stride)
        # one contiguous row per output pixel, the weight on the right: on thin products MKL
        # is 3-10x slower with the weight on the left or a transposed pixel matrix, and
        # autograd's backward products keep the orientation of the forward one. Each row
        # lists its patch in the weight's memory order, so the weight is never copied
        # (c_in x kh x kw, or kh x kw x c_in for a channels_last weight).
        if self.weight.is_contiguous():
            rows, weight = cols.transpose(1, 2), self.weight.flatten(1)
        else:
            rows = cols.view(n, self.in_channels, -1, h * w).permute(0, 3, 2, 1)
            weight = self.weight.permute(0, 2, 3, 1).flatten(1)
        rows = rows.reshape(n * h * w, -1).contiguous()
        weight = weight.t()
        y = rows @ weight if self.bias is None else torch.addmm(self.bias, rows, weight)
        y = y.view(n, h, w, -1).permute(0, 3, 1, 2)  # channels_last strides
        # in the input's memory format, as the stock kernel's output
        return y if x.is_contiguous(memory_format=torch.channels_last) else y.contiguous()

    def _few_outputs(self) -> bool:
        """Whether a plain call takes the fold path (see the class docstring)."""
        (kh, kw), (ph, pw) = self.kernel_size, cast(tuple[int, int], self.padding)
        return (
            self.out_channels < self.fold_max_out_channels
            and self.in_channels >= FOLD_MIN_IN_CHANNELS
            and min(kh, kw) >= FOLD_MIN_KERNEL
            and self.stride == (1, 1)
            and ph < kh
            and pw < kw
        )

    def _fold_forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (ph, pw) = self.kernel_size, cast(tuple[int, int], self.padding)
        # a stride-1 convolution is the transposed convolution with the flipped kernel (c_in
        # and c_out swapped: a copy of a few KiB) and the complementary padding
        weight = self.weight.transpose(0, 1).flip((2, 3)).contiguous()
        y = transposed_conv_by_fold(x, weight, (1, 1), (kh - 1 - ph, kw - 1 - pw), self.bias)
        # in the input's memory format, as the stock kernel's output
        if x.is_contiguous(memory_format=torch.channels_last):
            return y.contiguous(memory_format=torch.channels_last)
        return y

    def _winograd_padding(self, x: torch.Tensor) -> int | None:
        """The zero padding on each side when a plain call takes the Winograd path (see the
        class docstring); None when it takes the stock one."""
        r, pad = self.kernel_size[0], cast(tuple[int, int], self.padding)
        pixels = (x.shape[-2] + 2 * pad[0]) * (x.shape[-1] + 2 * pad[0])
        fits = (
            self.winograd_min_channels > 0
            and min(self.in_channels, self.out_channels) >= self.winograd_min_channels
            and x.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu")
            and self.kernel_size == (r, r)
            and r in WINOGRAD
            and pad[0] == pad[1]
            and WINOGRAD_MIN_PIXELS <= pixels <= WINOGRAD_MAX_PIXELS
            and self.stride == (1, 1)
        )
        return pad[0] if fits else None


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
