"""Sampling from an unconditional model (DCGAN): ``i2i sample CHECKPOINT -n N --out DIR|ZIP``."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import save_image
from tqdm import tqdm

from i2i.data.images import array_to_pil
from i2i.device import pick_device
from i2i.errors import CheckpointError
from i2i.infer.grid import sample_grid
from i2i.infer.writers import ImageWriter
from i2i.nets import DCGANGenerator
from i2i.runs.checkpoint import load_network, resolve_sampler


def load_generator(path: str | Path, device: str = "auto") -> DCGANGenerator:
    """The generator of an unconditional checkpoint, in eval mode on ``device``: latent
    vectors (N x latent_dim) -> NxCxHxW images in [-1, 1]."""
    ckpt, card = resolve_sampler(path)
    assert card.sample is not None  # resolve_sampler refuses a model without one
    net = load_network(ckpt, card, card.sample.net)
    if not isinstance(net, DCGANGenerator):
        raise CheckpointError(f"{ckpt}: {card.sample.net} is not a generator of images")
    return net.to(pick_device(device))


@torch.inference_mode()
def sample_images(
    path: str | Path,
    n: int,
    out: str | Path,
    seed: int = 0,
    batch_size: int = 256,
    device: str = "auto",
    progress: bool = True,
) -> Path:
    """Write ``n`` generated PNGs into ``out`` (a folder or a .zip) and a grid of the first 64
    (``out/grid.png``, or ``OUT.grid.png`` beside a zip). Returns the grid's path."""
    net = load_generator(path, device)
    device_ = next(net.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    first: list[torch.Tensor] = []
    with ImageWriter(out) as writer, tqdm(total=n, disable=not progress, unit="img") as bar:
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            z = torch.randn(count, net.latent_dim, generator=gen).to(device_)
            images = net(z).cpu()
            if len(first) < 64:
                first.extend(images[: 64 - len(first)])
            for i, img in enumerate(images):
                pixels = ((img + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy()
                writer.write(f"sample_{start + i:06d}.png", array_to_pil(pixels))
            bar.update(count)
    out = Path(out)
    grid_path = out.with_suffix(".grid.png") if out.suffix.lower() == ".zip" else out / "grid.png"
    stacked = torch.stack(first)
    columns = [stacked[i::8] for i in range(min(8, len(stacked)))]
    rows = min(len(c) for c in columns)
    save_image(sample_grid([c[:rows] for c in columns]), grid_path)
    return grid_path
