"""Winograd's minimal filtering for the CPU kernels (:mod:`i2i.kernels.conv`).

oneDNN has no Winograd kernel for AVX2 CPUs, and the ResNet generator's residual blocks (3x3,
256 channels, 64x64 maps at 256 px) and the 70 px PatchGAN's 4x4 stride-1 layer are most of a
CycleGAN's and a pix2pix step's FLOPs. F(4x4, 3x3) and F(3x3, 4x4) need 4x and 3.5x fewer
multiplications than the direct sum. Hand-written because neither PyTorch nor a maintained
library offers it for these CPUs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


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
