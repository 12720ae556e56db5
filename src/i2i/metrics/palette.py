"""Per-class IoU for palette-style targets: maps (land, water, park, road, highway), label maps
(facades, cityscapes photo -> label).

Every pixel of a target and of an output is assigned to the nearest colour of a palette
(Euclidean distance in RGB); intersection and union of each class are accumulated over all
images, and IoU_c = intersection_c / union_c (the semantic-segmentation protocol, as in the
pix2pix paper's FCN-score on Cityscapes, with the palette standing in for the label ids). The
mean IoU averages the classes that occur in the targets or the outputs.

A palette file is YAML (or JSON): ``classes:`` a list of ``{name: ..., color: [R, G, B]}``,
or a plain mapping ``name: [R, G, B]``; ``experiments/palettes/maps.yaml`` is the maps one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from i2i.config import load_yaml
from i2i.errors import ConfigError

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Palette:
    """Class names and their colours (0..255 RGB), in order."""

    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]

    @classmethod
    def read(cls, path: str | Path) -> Palette:
        """Parse a palette file; ConfigError naming the file and the entry at fault."""
        data: Any = load_yaml(path)
        entries = data.get("classes", data) if isinstance(data, dict) else data
        if isinstance(entries, dict):
            entries = [{"name": k, "color": v} for k, v in entries.items()]
        if not isinstance(entries, list) or len(entries) < 2:
            raise ConfigError(f"{path}: a palette lists at least two classes with a color each")
        names, colors = [], []
        for i, entry in enumerate(entries):
            name = entry.get("name") if isinstance(entry, dict) else None
            color = entry.get("color") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not NAME.fullmatch(name):
                raise ConfigError(f"{path}: class {i + 1}: a name of letters, digits and _")
            if (
                not isinstance(color, list)
                or len(color) != 3
                or not all(isinstance(c, int) and 0 <= c <= 255 for c in color)
            ):
                raise ConfigError(f"{path}: class {name}: color must be [R, G, B] in 0..255")
            names.append(name)
            colors.append((color[0], color[1], color[2]))
        if len(set(names)) != len(names):
            raise ConfigError(f"{path}: two classes share a name")
        return cls(tuple(names), tuple(colors))

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """Nx3xHxW uint8 images -> NxHxW class indices (the nearest colour)."""
        colors = torch.tensor(self.colors, dtype=torch.float32, device=images.device)
        pixels = images.float().permute(0, 2, 3, 1).unsqueeze(-2)  # N, H, W, 1, 3
        return ((pixels - colors) ** 2).sum(-1).argmin(-1)

    def metric_names(self) -> list[str]:
        return ["miou", *(f"iou_{name}" for name in self.names)]


class PaletteIoU:
    """Accumulates per-class intersection and union over (output, target) pairs."""

    def __init__(self, palette: Palette) -> None:
        self.palette = palette
        k = len(palette.names)
        self.intersection = torch.zeros(k, dtype=torch.float64)
        self.union = torch.zeros(k, dtype=torch.float64)

    def add(self, output: torch.Tensor, target: torch.Tensor) -> None:
        """Nx{1,3}xHxW uint8 outputs and targets of the same size."""
        if output.shape[1] == 1:
            output, target = output.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
        pred, true = self.palette.classify(output), self.palette.classify(target)
        k = len(self.palette.names)
        for c in range(k):
            p, t = pred == c, true == c
            self.intersection[c] += (p & t).sum().item()
            self.union[c] += (p | t).sum().item()

    def compute(self) -> dict[str, float]:
        """``miou`` and ``iou_NAME`` per class (NaN for a class in no image)."""
        present = self.union > 0
        iou = torch.where(present, self.intersection / self.union.clamp(min=1), torch.nan)
        out = {"miou": float(iou[present].mean()) if present.any() else float("nan")}
        out.update({f"iou_{n}": float(v) for n, v in zip(self.palette.names, iou, strict=True)})
        return out
