"""Broken on purpose: passes every conformance check (12-token inputs) but crashes on sequences over 200 tokens.

Submitted with ``--tasks counter-chain,nested-parity`` its first suite run (counter-chain, at most 133 tokens)
completes and its second (nested-parity, up to ~590 tokens) crashes: the completed run must not be recorded either.
"""

import torch
from torch import nn

from arena import ArchConfig, arch_spec


class Cfg(ArchConfig):
    pass


class ShortOnly(nn.Module):
    def __init__(self, d_model: int, layer_idx: int, cfg: Cfg):
        super().__init__()
        self.now = nn.Linear(d_model, d_model, bias=False)
        self.prev = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > 200:
            raise RuntimeError("sequences longer than 200 tokens are not supported")  # the defect
        return self.now(x) + self.prev(nn.functional.pad(x, (0, 0, 1, 0))[:, :-1])


@arch_spec("short-only", kind="mixer", config=Cfg, params=lambda d, cfg: 2 * d * d,
           flops=lambda d, cfg, t: 4.0 * d * d, state_size=lambda d, cfg, t: d)
def build(d_model: int, layer_idx: int, cfg: Cfg) -> nn.Module:
    return ShortOnly(d_model, layer_idx, cfg)
