"""Broken on purpose: mixes in the NEXT token (x_{t+1}), so logits at t depend on the future."""

import torch
from torch import nn

from arena import ArchConfig, arch_spec


class Cfg(ArchConfig):
    pass


class PeekAhead(nn.Module):
    def __init__(self, d_model: int, layer_idx: int, cfg: Cfg):
        super().__init__()
        self.now = nn.Linear(d_model, d_model, bias=False)
        self.next = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ahead = nn.functional.pad(x, (0, 0, 0, 1))[:, 1:]  # x_{t+1}: the defect
        return self.now(x) + self.next(ahead)


@arch_spec("peek-ahead", kind="mixer", config=Cfg, params=lambda d, cfg: 2 * d * d,
           flops=lambda d, cfg, t: 4.0 * d * d, state_size=lambda d, cfg, t: d)
def build(d_model: int, layer_idx: int, cfg: Cfg) -> nn.Module:
    return PeekAhead(d_model, layer_idx, cfg)
