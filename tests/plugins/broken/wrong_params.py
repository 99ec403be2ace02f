"""Broken on purpose: declares d*d parameters but its projection has a bias too (d*d + d)."""

import torch
from torch import nn

from arena import ArchConfig, arch_spec


class Cfg(ArchConfig):
    pass


class Biased(nn.Module):
    def __init__(self, d_model: int, layer_idx: int, cfg: Cfg):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


@arch_spec("undercounted", kind="mixer", config=Cfg, params=lambda d, cfg: d * d,  # the defect: forgot + d
           flops=lambda d, cfg, t: 2.0 * d * d, state_size=lambda d, cfg, t: 0)
def build(d_model: int, layer_idx: int, cfg: Cfg) -> nn.Module:
    return Biased(d_model, layer_idx, cfg)
