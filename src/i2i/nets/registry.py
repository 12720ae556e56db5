"""The registries of networks, one per role a network plays in a model (filled by the modules
that define the networks; :mod:`i2i.nets` imports them all)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from i2i.registry import Registry

# builder(config, in_channels, out_channels) -> network; out_channels is None for critics
NetBuilder = Callable[[Any, int, int | None], nn.Module]

GENERATORS: Registry[NetBuilder] = Registry("generator")
DISCRIMINATORS: Registry[NetBuilder] = Registry("discriminator")
HEADS: Registry[NetBuilder] = Registry("projection head")

# a model card's role names (``i2i.runs.card.NetSpec.role``) -> the registry of that role
ROLES: dict[str, Registry[NetBuilder]] = {
    "generator": GENERATORS,
    "discriminator": DISCRIMINATORS,
    "patch projection head": HEADS,
}
