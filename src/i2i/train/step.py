"""The seam between a model and the loop: the optimizers of a model's parameter groups, and
``Updater``, the ``update(names, loss)`` that a model's ``training_step`` calls for each of its
losses (the loop's half of Lightning's manual optimization).

An update does, in order: zero the group's gradients, backpropagate outside autocast (with
fp16, through a loss scaler), average the gradients across processes under torchrun, clip
their norm when asked (``train.clip_grad_norm``), and step the optimizer. Models therefore hold
no optimizer code, and a precision, clipping or parallelism setting changes one place.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from i2i.config import TrainConfig
from i2i.models import Model


def adam(params: list[nn.Parameter], train: TrainConfig) -> torch.optim.Adam:
    """Adam with the fused kernel where torch has one for the parameters' device: one pass over
    all parameters instead of a dozen per tensor (profiled at 11-14% of a pix2pix CPU step
    unfused). Results match the per-tensor loop to rounding."""
    fused = all(p.device.type in ("cpu", "cuda") for p in params) or None
    return torch.optim.Adam(params, lr=train.lr, betas=(train.beta1, train.beta2), fused=fused)


def group_parameters(model: Model) -> dict[str, list[nn.Parameter]]:
    """Each parameter group's parameters, in the order of its networks."""
    return {
        name: [p for net in nets for p in net.parameters()]
        for name, nets in model.param_groups().items()
    }


def make_optimizers(model: Model, train: TrainConfig) -> dict[str, torch.optim.Optimizer]:
    """One Adam per parameter group of ``model`` (``{"G": ..., "D": ...}``), as the papers
    train them (lr 2e-4, betas (0.5, 0.999) by default)."""
    return {name: adam(params, train) for name, params in group_parameters(model).items()}


class Updater:
    """``update(names, loss)`` for a model's ``training_step``: one optimizer step of parameter
    group(s) ``names`` on scalar ``loss`` (see the module docstring).

    ``world`` > 1 averages gradients over the torchrun processes (``torch.distributed``
    initialized), so N processes with 1/N of a batch step as one process with all of it."""

    def __init__(
        self,
        optimizers: dict[str, torch.optim.Optimizer],
        train: TrainConfig,
        device: torch.device,
        world: int = 1,
    ) -> None:
        self.optimizers = optimizers
        self.device_type = device.type
        self.clip = train.clip_grad_norm
        self.world = world
        self.fp16 = train.precision == "fp16"
        # one loss scaler per update (G, D ...): each loss has its own range
        self.scalers: dict[str, torch.amp.GradScaler] = {}

    def __call__(self, names: str | tuple[str, ...], loss: torch.Tensor) -> None:
        names = (names,) if isinstance(names, str) else names
        optimizers = [self.optimizers[name] for name in names]
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        scaler = self.scaler("+".join(names)) if self.fp16 else None
        with torch.autocast(self.device_type, enabled=False):  # backward outside autocast
            (scaler.scale(loss) if scaler else loss).backward()
        params = [p for o in optimizers for g in o.param_groups for p in g["params"]]
        if self.world > 1:
            average_gradients([p.grad for p in params if p.grad is not None], self.world)
        if scaler is not None:
            for optimizer in optimizers:
                scaler.unscale_(optimizer)
        if self.clip is not None:
            torch.nn.utils.clip_grad_norm_(params, self.clip)
        for optimizer in optimizers:
            if scaler is not None:
                scaler.step(optimizer)
            else:
                optimizer.step()
        if scaler is not None:
            scaler.update()

    def scaler(self, key: str) -> torch.amp.GradScaler:
        if key not in self.scalers:
            self.scalers[key] = torch.amp.GradScaler(self.device_type)
        return self.scalers[key]

    def state_dict(self) -> dict[str, Any]:
        """What resume needs: the optimizers' states and the loss scalers'."""
        return {
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for key, scaler_state in state.get("scalers", {}).items():
            self.scaler(key).load_state_dict(scaler_state)


def average_gradients(grads: list[torch.Tensor], world: int) -> None:
    """Replace each gradient by its mean over the ``world`` processes, in one all-reduce."""
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])  # one all-reduce instead of one per tensor
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()
