"""Broken on purpose: every forward allocates an 8 GB scratch buffer, twice the sandbox's default 4 GB limit.

The buffer is never written, so without the limit this would pass (the kernel hands out untouched pages lazily);
under RLIMIT_AS the allocation itself fails. That makes it a test of the limit, not of the machine's memory.
"""

import torch
from torch import nn

from arena import ArchConfig, arch_spec


class Cfg(ArchConfig):
    pass


class Hog(nn.Module):
    def __init__(self, d_model: int, layer_idx: int, cfg: Cfg):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scratch = torch.empty(2 * 1024**3, dtype=torch.float32)  # the defect: 8 GB
        return self.proj(x) + 0 * scratch[0]


@arch_spec("hog", kind="mixer", config=Cfg, params=lambda d, cfg: d * d,
           flops=lambda d, cfg, t: 2.0 * d * d, state_size=lambda d, cfg, t: 0)
def build(d_model: int, layer_idx: int, cfg: Cfg) -> nn.Module:
    return Hog(d_model, layer_idx, cfg)
