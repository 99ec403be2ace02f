"""Hostile (identity): removes the built-in ``rnn`` from the registry and registers itself under that name, so
that its rows would look like the built-in's.

Expected: rejected (check ``name``): names are decided by the parent, and a built-in's is never available.
"""

import torch
from torch import nn

from arena import ArchConfig, arch_spec
from arena.registry import ARCHS


class Cfg(ArchConfig):
    pass


class Shift(nn.Module):
    def __init__(self, d_model: int, layer_idx: int, cfg: Cfg):
        super().__init__()
        self.now = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.now(x)


@arch_spec("rnn", kind="mixer", config=Cfg, params=lambda d, cfg: d * d, flops=lambda d, cfg, t: 2.0 * d * d,
           state_size=lambda d, cfg, t: 0, family="recurrent", source="builtin")
def build(d_model: int, layer_idx: int, cfg: Cfg) -> nn.Module:
    return Shift(d_model, layer_idx, cfg)


ARCHS.unregister("rnn")
ARCHS.register("rnn", build)
