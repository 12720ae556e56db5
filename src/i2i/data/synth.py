"""A built-in synthetic paired dataset: flat label maps -> shaded, textured renderings.

A (input) is a label map: a few circles, rectangles and triangles painted in flat class colours
on a flat background. B (target) renders the same scene: lit spheres, bevelled brick rectangles
with mortar lines, triangles with a vertical gradient, drop shadows on a striped sand background,
and a little sensor noise. Mapping A to B needs context (shading depends on where a pixel sits in
its shape, shadows on neighbouring shapes), so it is a real translation task, yet a small U-Net
learns it in minutes on a CPU. Every pair is a pure function of (seed, split, index).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

LABEL_COLOURS = {
    "background": (40, 40, 140),
    "circle": (230, 60, 60),
    "rect": (60, 200, 60),
    "triangle": (240, 220, 50),
}
_LIGHT = np.array([-1.0, -1.0, 1.5]) / np.linalg.norm([-1.0, -1.0, 1.5])


def make_pair(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One (label map, rendering) pair, uint8 HxWx3 each."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    label = np.empty((size, size, 3))
    label[:] = LABEL_COLOURS["background"]
    stripes = 0.06 * np.sin((xx + yy) * (2 * np.pi / 8.0))
    render = np.empty((size, size, 3))
    render[:] = np.array([205.0, 190.0, 150.0]) * (1.0 + stripes)[..., None]

    shapes = []
    for _ in range(int(rng.integers(2, 6))):
        kind = ("circle", "rect", "triangle")[int(rng.integers(0, 3))]
        cx, cy = rng.uniform(0.15, 0.85, size=2) * size
        r = rng.uniform(0.1, 0.22) * size
        shapes.append((kind, cx, cy, r, rng.uniform(0.6, 1.4)))

    shadow = np.zeros((size, size), dtype=bool)
    for kind, cx, cy, r, aspect in shapes:
        shadow |= _mask(kind, xx - 3, yy - 3, cx, cy, r, aspect)
    render[shadow] *= 0.6

    for kind, cx, cy, r, aspect in shapes:
        mask = _mask(kind, xx, yy, cx, cy, r, aspect)
        label[mask] = LABEL_COLOURS[kind]
        render[mask] = _shade(kind, xx, yy, cx, cy, r, aspect)[mask]

    render += rng.normal(0.0, 3.0, size=render.shape)
    return label.astype(np.uint8), np.clip(render, 0, 255).astype(np.uint8)


def _mask(
    kind: str, xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, r: float, aspect: float
) -> np.ndarray:
    if kind == "circle":
        return (xx - cx) ** 2 + (yy - cy) ** 2 < r**2
    if kind == "rect":
        return (np.abs(xx - cx) < r * aspect) & (np.abs(yy - cy) < r / aspect)
    # upward triangle: below the two slanted edges and above the base
    top, base = cy - r, cy + r
    half_width = (yy - top) / (2 * r) * r * 1.2
    return (yy >= top) & (yy <= base) & (np.abs(xx - cx) <= half_width)


def _shade(
    kind: str, xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, r: float, aspect: float
) -> np.ndarray:
    if kind == "circle":  # a lit sphere: Lambert shading of the sphere's normal
        nx, ny = (xx - cx) / r, (yy - cy) / r
        nz = np.sqrt(np.clip(1.0 - nx**2 - ny**2, 0.0, 1.0))
        lambert = np.clip(nx * _LIGHT[0] + ny * _LIGHT[1] + nz * _LIGHT[2], 0.0, 1.0)
        return np.array([70.0, 120.0, 220.0]) * (0.3 + 0.7 * lambert)[..., None]
    if kind == "rect":  # bricks: mortar lines, lighter top-left bevel, darker bottom-right
        colour = np.array([170.0, 80.0, 50.0]) * np.ones_like(xx)[..., None]
        colour[((yy - (cy - r / aspect)) % 6) < 1.2] = (120.0, 110.0, 100.0)
        left, top = xx - (cx - r * aspect), yy - (cy - r / aspect)
        right, bottom = (cx + r * aspect) - xx, (cy + r / aspect) - yy
        colour[(left < 2) | (top < 2)] *= 1.35
        colour[(right < 2) | (bottom < 2)] *= 0.6
        return colour
    # triangle: foliage green, brighter at the top
    t = np.clip((yy - (cy - r)) / (2 * r), 0.0, 1.0)
    return np.array([60.0, 150.0, 70.0]) * (1.1 - 0.5 * t)[..., None]


def write_synthetic(
    out: str | Path,
    n_train: int = 400,
    n_val: int = 50,
    size: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Write ``out/train`` and ``out/val`` as side-by-side PNGs (label | rendering)."""
    out = Path(out)
    for split_id, (split, n) in enumerate((("train", n_train), ("val", n_val))):
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in tqdm(range(n), desc=f"synth {split}", disable=not progress, unit="img"):
            rng = np.random.default_rng([seed, split_id, i])
            a, b = make_pair(size, rng)
            Image.fromarray(np.concatenate([a, b], axis=1)).save(folder / f"{i:05d}.png")
    return out
