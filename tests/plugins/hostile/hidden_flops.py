"""Hostile (cost lies): computes its projection as a broadcast multiply + sum (which a FLOP counter that only sees
matmuls misses) and declares a fraction of the work; declares a state size of 0.

Expected: accepted with the honest score, but arena's own count of its exported graph (which sees broadcast
multiplies and sums) disagrees with the declaration, so its FLOPs stay ``declared`` (not verified): badged in
exports and left out of the per-FLOP ranking. Its state size is ``declared`` too.
"""

import torch
from torch import nn

from arena import ArchConfig, arch_spec


class Cfg(ArchConfig):
    pass


class Broadcast(nn.Module):
    def __init__(self, d_model: int, layer_idx: int, cfg: Cfg):
        super().__init__()
        self.up = nn.Parameter(torch.randn(d_model, 4 * d_model) * 0.02)
        self.down = nn.Parameter(torch.randn(4 * d_model, d_model) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = (x.unsqueeze(-1) * self.up).sum(-2)  # (B, T, D, 1) * (D, 4D), summed over D: a hidden matmul
        return (h.unsqueeze(-1) * self.down).sum(-2)  # and back to D: 16 D^2 FLOPs per token, declared as ~0


@arch_spec("hidden-flops", kind="mixer", config=Cfg, params=lambda d, cfg: 8 * d * d,
           flops=lambda d, cfg, t: {"matmul": 0.0, "elementwise": 1.0}, state_size=lambda d, cfg, t: 0)
def build(d_model: int, layer_idx: int, cfg: Cfg) -> nn.Module:
    return Broadcast(d_model, layer_idx, cfg)
