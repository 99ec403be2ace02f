"""Broken on purpose: divides by zero, so every output is NaN."""

import torch
from torch import nn

from arena import ArchConfig, arch_spec


class Cfg(ArchConfig):
    pass


class NaNMixer(nn.Module):
    def __init__(self, d_model: int, layer_idx: int, cfg: Cfg):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)
        return y * 0.0 / 0.0  # the defect: 0/0 = NaN


@arch_spec("nan-mixer", kind="mixer", config=Cfg, params=lambda d, cfg: d * d,
           flops=lambda d, cfg, t: 2.0 * d * d, state_size=lambda d, cfg, t: 0)
def build(d_model: int, layer_idx: int, cfg: Cfg) -> nn.Module:
    return NaNMixer(d_model, layer_idx, cfg)
