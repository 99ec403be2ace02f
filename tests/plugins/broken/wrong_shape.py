"""Broken on purpose: a whole-model plugin whose head has one output too many, (B, T, V + 1) instead of (B, T, V)."""

import torch
from torch import nn

from arena import ArchConfig, arch_spec


class Cfg(ArchConfig):
    pass


class OffByOne(nn.Module):
    def __init__(self, shape, cfg: Cfg):
        super().__init__()
        self.embed = nn.Embedding(shape.vocab_size, shape.d_model)
        self.head = nn.Linear(shape.d_model, shape.vocab_size + 1)  # the defect

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(ids).cumsum(1))


@arch_spec("off-by-one", kind="model", config=Cfg,
           params=lambda s, cfg: s.vocab_size * s.d_model + (s.d_model + 1) * (s.vocab_size + 1),
           flops=lambda s, cfg, t: 2.0 * s.d_model * (s.vocab_size + 1), state_size=lambda s, cfg, t: s.d_model)
def build(shape, cfg: Cfg) -> nn.Module:
    return OffByOne(shape, cfg)
