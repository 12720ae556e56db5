"""What the reference pix2pix/CycleGAN test script does, for timing against ``i2i translate``.

    python benchmarks/reference_translate.py latest_net_G.pth INPUT_FOLDER OUT_FOLDER \\
        [--netG unet_256] [--norm batch] [--ngf 64] [--dropout]

Per image, in turn and at batch 1, as the reference ``test.py`` with ``--dataset_mode single``
and ``--preprocess resize``: PIL decode, torchvision resize to 256 + to-tensor + normalize,
the generator in PyTorch eager mode with the stock convolution kernels, then the real and the
fake image converted back and saved as PNG, and one HTML page listing them at the end. The
generator is the reference's own layout (``reference_nets.py``) named by ``--netG``/``--norm``/
``--ngf`` as the reference's options name it, and its weights load from the ``.pth`` state dict
as the reference loads them (here with ``weights_only=True``), in eval mode.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from reference_nets import define_g
from torchvision import transforms


def tensor2im(x: torch.Tensor) -> np.ndarray:
    return ((x[0].cpu().float().numpy().transpose(1, 2, 0) + 1) / 2 * 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("inputs")
    parser.add_argument("out")
    parser.add_argument("--netG", default="unet_256")
    parser.add_argument("--norm", default="batch")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--dropout", action="store_true")
    args = parser.parse_args()
    net = define_g(args.netG, 3, 3, args.ngf, args.norm, args.dropout)
    net.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    net.eval()
    transform = transforms.Compose([
        transforms.Resize([256, 256], transforms.InterpolationMode.BICUBIC),
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ])  # fmt: skip
    images = Path(args.out, "images")
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in sorted(Path(args.inputs).iterdir()):
        real = transform(Image.open(path).convert("RGB")).unsqueeze(0)
        with torch.no_grad():
            fake = net(real)
        for label, x in (("real", real), ("fake", fake)):
            Image.fromarray(tensor2im(x)).save(images / f"{path.stem}_{label}.png")
        rows.append(f"<tr><td>{path.stem}</td><td><img src='images/{path.stem}_real.png'></td>"
                    f"<td><img src='images/{path.stem}_fake.png'></td></tr>")  # fmt: skip
    Path(args.out, "index.html").write_text("<table>\n" + "\n".join(rows) + "\n</table>\n")


if __name__ == "__main__":
    main()
