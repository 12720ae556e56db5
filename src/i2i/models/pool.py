"""Image history pool (Shrivastava et al. 2017, used by CycleGAN): the discriminator is shown
generated images drawn half from the current batch and half from a history of 50, which damps
oscillation between generator and discriminator."""

from __future__ import annotations

import torch


class ImagePool:
    def __init__(self, size: int = 50) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Until the pool is full, store and return each image; afterwards return, with
        probability 0.5, a stored image (replacing it by the new one), else the new image."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()) < 0.5:
                i = int(torch.randint(len(self.images), ()))
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state(self) -> torch.Tensor:
        """The stored images as one tensor (saved with the trainer state, for exact resume)."""
        return torch.stack(self.images) if self.images else torch.zeros(0)

    def load_state(self, stored: torch.Tensor, device: torch.device) -> None:
        self.images = [img.to(device) for img in stored]
