"""Hostile (causality hole beyond the probe length): mixes in the next token x_{t+1}, but only when the sequence is
longer than 16 tokens, so the 12-token conformance check passes.

Expected: rejected by the parent's causality probes at the task's real lengths (check ``causality``).
"""

import torch
from torch import nn

from arena import ArchConfig, arch_spec


class Cfg(ArchConfig):
    pass


class PeekLong(nn.Module):
    def __init__(self, d_model: int, layer_idx: int, cfg: Cfg):
        super().__init__()
        self.now = nn.Linear(d_model, d_model, bias=False)
        self.other = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > 16:
            other = nn.functional.pad(x, (0, 0, 0, 1))[:, 1:]  # x_{t+1}: the hole
        else:
            other = nn.functional.pad(x, (0, 0, 1, 0))[:, :-1]  # x_{t-1}: honest
        return self.now(x) + self.other(other)


@arch_spec("peeks-long", kind="mixer", config=Cfg, params=lambda d, cfg: 2 * d * d,
           flops=lambda d, cfg, t: 4.0 * d * d, state_size=lambda d, cfg, t: d)
def build(d_model: int, layer_idx: int, cfg: Cfg) -> nn.Module:
    return PeekLong(d_model, layer_idx, cfg)
