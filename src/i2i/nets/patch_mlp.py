"""CUT's patch projection head H (Park et al. 2020, section 3.2): samples patch locations from
encoder feature maps and maps each sampled feature to an L2-normalized embedding, with one
two-layer MLP per encoder layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from i2i.config import PatchMLPConfig
from i2i.nets.registry import HEADS


class PatchSampleMLP(nn.Module):
    def __init__(self, channels: list[int], width: int = 256) -> None:
        super().__init__()
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(c, width), nn.ReLU(), nn.Linear(width, width)) for c in channels
        )

    def forward(
        self,
        feats: list[torch.Tensor],
        num_patches: int,
        patch_ids: list[torch.Tensor] | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Embeddings (B * P, width) per layer, and the sampled locations to reuse for the
        other image of a query/key pair (so that patch i of both is the same place)."""
        out, ids = [], []
        for k, (feat, mlp) in enumerate(zip(feats, self.mlps, strict=True)):
            flat = feat.flatten(2).transpose(1, 2)  # B, H*W, C
            if patch_ids is None:
                idx = torch.randperm(flat.shape[1], device=feat.device)[:num_patches]
            else:
                idx = patch_ids[k]
            sampled = flat[:, idx, :].reshape(-1, flat.shape[2])
            out.append(F.normalize(mlp(sampled), dim=1))
            ids.append(idx)
        return out, ids


@HEADS.register("patch_mlp")
def patch_mlp(cfg: PatchMLPConfig, c_in: int, c_out: int | None) -> PatchSampleMLP:
    return PatchSampleMLP(cfg.channels, cfg.width)
