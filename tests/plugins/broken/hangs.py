"""Broken on purpose: the forward never returns (it waits forever; a busy loop would be caught the same way)."""

import time

import torch
from torch import nn

from arena import ArchConfig, arch_spec


class Cfg(ArchConfig):
    pass


class Forever(nn.Module):
    def __init__(self, d_model: int, layer_idx: int, cfg: Cfg):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        while True:  # the defect
            time.sleep(1.0)


@arch_spec("forever", kind="mixer", config=Cfg, params=lambda d, cfg: d * d,
           flops=lambda d, cfg, t: 2.0 * d * d, state_size=lambda d, cfg, t: 0)
def build(d_model: int, layer_idx: int, cfg: Cfg) -> nn.Module:
    return Forever(d_model, layer_idx, cfg)
