"""Hostile (cost lies): computes its projection as a broadcast multiply + sum (which a FLOP counter that only sees
matmuls misses) and declares a fraction of the work; declares a state size of 0.

Expected: accepted with the honest score, but its FLOPs and state size are recorded as ``declared`` (not
verified), badged in exports, and the row is left out of the per-FLOP ranking.
"""

import torch
from torch import nn

from arena import ArchConfig, arch_spec


class Cfg(ArchConfig):
    pass


class Broadcast(nn.Module):
    def __init__(self, d_model: int, layer_idx: int, cfg: Cfg):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_model, d_model) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.unsqueeze(-1) * self.weight).sum(-2)  # (B, T, D, 1) * (D, D) -> sum over D: a hidden matmul


@arch_spec("hidden-flops", kind="mixer", config=Cfg, params=lambda d, cfg: d * d,
           flops=lambda d, cfg, t: {"matmul": 0.0, "elementwise": 1.0}, state_size=lambda d, cfg, t: 0)
def build(d_model: int, layer_idx: int, cfg: Cfg) -> nn.Module:
    return Broadcast(d_model, layer_idx, cfg)
