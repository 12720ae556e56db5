"""Colourfulness of images, without a reference: how vivid the colours of a set of outputs are
(a colorization model that plays safe gives washed-out, sepia images).

Hasler and Süsstrunk, "Measuring colourfulness in natural images", Proc. SPIE 5007, 2003, the
metric M^(3) their observers' ratings fitted best (correlation 95.3 %): on 8-bit RGB,
    rg = R - G,   yb = (R + G) / 2 - B,
    M  = sqrt(var(rg) + var(yb)) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2)
over the pixels of one image. A gray image scores 0; the paper's scale reads 15 as slightly,
33 moderately, 45 averagely, 59 quite, 82 highly and 109 extremely colourful. Hand-written:
neither torchmetrics nor kornia has it, and it is these two lines.
"""

from __future__ import annotations

import torch


def colorfulness(images: torch.Tensor) -> torch.Tensor:
    """Per image colourfulness M (module docstring) of Nx{1,3}xHxW 8-bit images (0..255; a
    1-channel image is gray and scores 0). Returns N float64 values, 0 and up."""
    x = images.double().expand(-1, 3, -1, -1) if images.shape[1] == 1 else images.double()
    r, g, b = x.unbind(dim=1)
    rg, yb = (r - g).flatten(1), ((r + g) / 2 - b).flatten(1)
    spread = (rg.var(dim=1, correction=0) + yb.var(dim=1, correction=0)).sqrt()
    return spread + 0.3 * (rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2).sqrt()
