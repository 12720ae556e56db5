"""Hand-written CPU convolution kernels, as an opt-in layer over stock networks.

The networks in :mod:`i2i.nets` are built from stock ``nn.Conv2d`` / ``nn.ConvTranspose2d`` and
read like the papers. ``use_cpu_kernels(model)`` turns those layers into :mod:`.conv`'s kernels,
which take a faster path on the CPU where one exists (measured in ``benchmarks/train_speed.py``,
``docs/performance.md``) and the stock kernel elsewhere. Training on the CPU and PyTorch
translation on the CPU call it by default; ``train.cpu_kernels: false`` (``--no-cpu-kernels``)
or the environment variable ``I2I_CPU_KERNELS=0`` leave the stock kernels in place.
"""

from __future__ import annotations

import os

from torch import nn

from i2i.kernels.conv import CPUConv2d, CPUConvTranspose2d
from i2i.kernels.winograd import WinogradConv

ENV = "I2I_CPU_KERNELS"
# stock layer type -> its kernel, and back
KERNELS: dict[type[nn.Module], type[nn.Module]] = {
    nn.Conv2d: CPUConv2d,
    nn.ConvTranspose2d: CPUConvTranspose2d,
}
STOCK = {kernel: stock for stock, kernel in KERNELS.items()}


def cpu_kernels_enabled(requested: bool = True) -> bool:
    """Whether to use the kernels: ``requested`` (a config field), unless ``I2I_CPU_KERNELS``
    is set to 0, off or false."""
    return requested and os.environ.get(ENV, "1").strip().lower() not in ("0", "off", "false")


def use_cpu_kernels(model: nn.Module, on: bool = True) -> int:
    """Turn every stock convolution of ``model`` into its CPU kernel (``on``), or every kernel
    back into the stock layer. Returns how many layers changed.

    The layer object stays the same, only its class changes: parameters, buffers, hooks,
    optimizer references and state-dict keys are untouched, so a checkpoint cannot tell."""
    table = KERNELS if on else STOCK
    changed = 0
    for module in model.modules():
        kernel = table.get(type(module))
        if kernel is not None:
            module.__class__ = kernel
            changed += 1
    return changed


__all__ = [
    "ENV",
    "CPUConv2d",
    "CPUConvTranspose2d",
    "WinogradConv",
    "cpu_kernels_enabled",
    "use_cpu_kernels",
]
