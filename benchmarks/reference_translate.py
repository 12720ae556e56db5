"""What the reference pix2pix/CycleGAN test script does, for timing against ``i2i translate``.

    python benchmarks/reference_translate.py GENERATOR.pth INPUT_FOLDER OUT_FOLDER

Per image, in turn and at batch 1, as the reference ``test.py`` with ``--dataset_mode single``
and ``--preprocess resize``: PIL decode, torchvision resize to 256 + to-tensor + normalize,
the generator in PyTorch eager mode with the stock convolution kernels, then the real and the
fake image converted back and saved as PNG, and one HTML page listing them at the end. The
generator's weights load from a ``.pth`` state dict as the reference loads them (here with
``weights_only=True``). The network is i2i's ``unet_256``, the reference's architecture.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from common import stock_convolutions
from PIL import Image
from torchvision import transforms

from i2i.config import GeneratorConfig
from i2i.nets import build_generator


def tensor2im(x: torch.Tensor) -> np.ndarray:
    return ((x[0].cpu().float().numpy().transpose(1, 2, 0) + 1) / 2 * 255).astype(np.uint8)


def main(weights: str, inputs: str, out: str) -> None:
    net = build_generator(GeneratorConfig(kind="unet_256"), 3, 3)
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    stock_convolutions(net, True)
    net.eval()
    transform = transforms.Compose([
        transforms.Resize([256, 256], transforms.InterpolationMode.BICUBIC),
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ])  # fmt: skip
    images = Path(out, "images")
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in sorted(Path(inputs).iterdir()):
        real = transform(Image.open(path).convert("RGB")).unsqueeze(0)
        with torch.no_grad():
            fake = net(real)
        for label, x in (("real", real), ("fake", fake)):
            Image.fromarray(tensor2im(x)).save(images / f"{path.stem}_{label}.png")
        rows.append(f"<tr><td>{path.stem}</td><td><img src='images/{path.stem}_real.png'></td>"
                    f"<td><img src='images/{path.stem}_fake.png'></td></tr>")  # fmt: skip
    Path(out, "index.html").write_text("<table>\n" + "\n".join(rows) + "\n</table>\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
