"""CPU convolution kernels that PyTorch's CPU backend (oneDNN on AVX2) lacks or runs slowly for
the shapes of pix2pix/CycleGAN networks: tiny maps as one matrix product, few output channels as
a product plus ``fold``, wide 3x3 and 4x4 layers by Winograd (:mod:`i2i.kernels.winograd`).

Each class is a stock layer with another ``forward``: same parameters, same results up to
rounding. ``i2i.kernels.use_cpu_kernels`` turns a network's stock layers into these; a layer
whose input does not fit a path (CUDA, autocast, tracing for ONNX, ``torch.compile``, other
shapes) runs the stock kernel.
"""

from __future__ import annotations

import os
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from i2i.kernels.winograd import WINOGRAD, WinogradConv

# Where each path pays, by measurement (see the classes' docstrings)
MATMUL_MAX_PIXELS = 64  # input pixels of the whole batch, into a transposed convolution
MATMUL_MAX_ROWS = 128  # output pixels of the whole batch, out of a convolution
# convolutions with fewer output channels than an AVX2 register holds floats; see CPUConv2d
FOLD_MAX_OUT_CHANNELS = 8
FOLD_MIN_IN_CHANNELS, FOLD_MIN_KERNEL = 128, 4
WINOGRAD_MIN_CHANNELS = 128
# input maps (padding included) where Winograd beats the stock kernel; see CPUConv2d
WINOGRAD_MIN_PIXELS, WINOGRAD_MAX_PIXELS = 32 * 32, 100 * 100
WINOGRAD_MAX_BATCH = 2  # images; more amortize the stock kernel's weight re-layout
# CPUs where oneDNN's direct convolution is AVX2 code, which Winograd beats; its AVX-512 code
# ran the same layers 1.7-2.0x faster and beat Winograd at every measured shape (CPUConv2d)
WINOGRAD_ISAS = ("AVX2",)


def vector_isa() -> str:
    """The vector instructions oneDNN's convolutions use on this CPU: ATen's reading of it
    (``torch.backends.cpu.get_cpu_capability()``: DEFAULT, AVX2, AVX512 ...), AVX2 where the
    ``ONEDNN_MAX_CPU_ISA`` environment variable caps oneDNN below AVX-512."""
    isa = torch.backends.cpu.get_cpu_capability()
    capped = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper().startswith("AVX2")
    return "AVX2" if isa.startswith("AVX512") and capped else isa


WINOGRAD_HERE = vector_isa() in WINOGRAD_ISAS  # read at each call: tests switch it


def eager_cpu_maps(x: torch.Tensor) -> bool:
    """Whether the hand-written CPU kernels may run on ``x``: a 4-D CPU tensor in eager
    mode. Tracing (ONNX export) and ``torch.compile`` need the stock ops they know."""
    return (
        x.device.type == "cpu"
        and x.dim() == 4
        and not torch.jit.is_tracing()
        and not torch.compiler.is_compiling()
    )


class CPUConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` (same parameters, same results) that computes small CPU feature
    maps as one matrix product plus ``fold`` (col2im). Made by :func:`i2i.kernels.use_cpu_kernels`
    from a stock layer, never built directly.

    Why: on the CPU, oneDNN re-lays-out the whole weight on every call, and the U-Net's innermost
    decoder levels carry 1024x512x4x4 weights (32 MiB) over 1x1 to 8x8 maps, so the layout work
    outweighs the arithmetic: profiled at 2-3x the time of the plain product, forward plus
    backward (``benchmarks/train_speed.py``). Larger maps, and batches whose maps hold more
    than ``MATMUL_MAX_PIXELS`` pixels together (at batch 4 the 8x8 level cost a pix2pix step
    0.06 s), CUDA, tracing (ONNX export) and ``torch.compile`` take the stock path. Only the
    summation order differs (outputs agree to about 1e-6).
    """

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if (
            eager_cpu_maps(x)
            and x.shape[0] * x.shape[-2] * x.shape[-1] <= MATMUL_MAX_PIXELS
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


class CPUConv2d(nn.Conv2d):
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

    Winograd (on AVX2 CPUs, ``WINOGRAD_ISAS``): oneDNN has no Winograd kernel for them. The
    ResNet generator's residual blocks
    (3x3, 256 channels, 64x64 maps for 256 px images) are most of CycleGAN's and CUT's FLOPs,
    and the 70 px PatchGAN's 4x4 256->512 convolution over 32x32 maps is 37% of a pix2pix step's.
    Winograd needs 4x (3x3) or 3.5x (4x4, with the cropped edge tiles) fewer multiplications,
    but transforming the filters and tiles costs memory traffic, so it pays only for wide
    layers over mid-sized maps (input, padding included, from 32x32 to 100x100). Measured on a
    2-core AVX2 CPU, one image, forward + backward against the stock kernel: 3x3 with 256
    channels 0.4x at 16x16, 0.7x at 24x24, 1.0x at 32x32 and 40x40, 1.2-1.6x at 64x64 and
    96x96, 0.8-0.9x at 128x128 and 256x256, 0.45x at 64 channels; 4x4 256->512 0.6x at 18x18,
    0.9x at 26x26, 1.0-1.2x at 34x34 (the 70 px PatchGAN's at 256 px), 1.6-1.9x at 42x42 to
    66x66, 1.5x at 98x98, 1.0x at 130x130. Over a batch the stock kernel's weight re-layout is
    shared by its images: at batch 4 Winograd cost a pix2pix step 0.07 s, so it takes at most
    ``WINOGRAD_MAX_BATCH`` images (the discriminator's real and fake at batch 1). On a CPU
    with AVX-512 (a 2-core AMD EPYC), oneDNN's own kernels ran these layers 1.7-2.0x faster
    than with oneDNN capped to AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2``, where Winograd won 1.0-1.7x
    as above), and Winograd lost at every shape: 0.62-0.99x for 4x4 256->512 over 34x34 to
    66x66 at one or two images, 0.70-0.82x for 3x3 256->256 over 66x66; whole training steps
    at 256 px went 1.08x (pix2pix) and 1.38x (CycleGAN) faster without it
    (``docs/bench/kernels_avx512_cpu.json``). So it runs only where oneDNN runs AVX2 code
    (``vector_isa``). Other layers,
    CUDA (cuDNN picks its own algorithms), autocast, tracing (ONNX export) and
    ``torch.compile`` take the stock path.
    Outputs and gradients agree with the direct sum to about 1e-5 relative.

    Few output channels: oneDNN's direct kernels compute output channels in blocks of 8 or 16,
    so the PatchGAN's last layer (512 -> 1, 4x4) leaves most of each block idle: profiled at
    4-6 GFLOP/s against 70-80 for wide layers. Below ``FOLD_MAX_OUT_CHANNELS`` outputs, with
    at least 128 inputs and a 4x4 kernel or larger, at stride 1, the convolution is computed as
    the transpose of a transposed convolution: one product with the flipped weight turns each
    input pixel into its c_out x kh x kw contributions, and ``fold`` sums them. Measured forward
    + backward against the stock kernel on a 2-core AVX2 CPU: 2.4-4.4x for 512 -> 1 at 4x4
    over 32x32 to 128x128 maps, 1.1-2.8x for 3 outputs, at 1 and 2 threads. With 64 inputs
    (the ResNet generator's 7x7 output layer), or a 3x3 kernel, it is not reliably faster.
    Made by :func:`i2i.kernels.use_cpu_kernels` from a stock layer, never built directly.
    """

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
        return (h, w) if x.shape[0] * h * w <= MATMUL_MAX_ROWS else None

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
            self.out_channels < FOLD_MAX_OUT_CHANNELS
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
            min(self.in_channels, self.out_channels) >= WINOGRAD_MIN_CHANNELS
            and x.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu")
            and self.kernel_size == (r, r)
            and r in WINOGRAD
            and pad[0] == pad[1]
            and WINOGRAD_MIN_PIXELS <= pixels <= WINOGRAD_MAX_PIXELS
            and x.shape[0] <= WINOGRAD_MAX_BATCH
            and self.stride == (1, 1)
            and WINOGRAD_HERE
        )
        return pad[0] if fits else None
