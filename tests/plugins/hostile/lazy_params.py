"""Hostile (parameters grown after the checks): on the first training forward with a training-sized batch it adds
a large parameter and puts it in the optimizer (found through the garbage collector), so the conformance checks
(batch 2) see the declared count and training uses a much bigger model.

Expected: rejected (check ``param count``): the trained weights must have the layout of the built model.
"""

import gc

import torch
from torch import nn

from arena import ArchConfig, arch_spec


class Cfg(ArchConfig):
    pass


class Grower(nn.Module):
    def __init__(self, d_model: int, layer_idx: int, cfg: Cfg):
        super().__init__()
        self.now = nn.Linear(d_model, d_model, bias=False)
        self.extra = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] >= 8 and self.extra is None:
            self.extra = nn.Parameter(torch.zeros(x.shape[-1], 4 * x.shape[-1]))
            for obj in gc.get_objects():
                if isinstance(obj, torch.optim.Optimizer):
                    obj.param_groups[0]["params"].append(self.extra)
        y = self.now(x)
        if self.extra is not None:
            y = y + (x @ self.extra)[..., : x.shape[-1]]
        return y


@arch_spec("lazy-params", kind="mixer", config=Cfg, params=lambda d, cfg: d * d,
           flops=lambda d, cfg, t: 2.0 * d * d, state_size=lambda d, cfg, t: 0)
def build(d_model: int, layer_idx: int, cfg: Cfg) -> nn.Module:
    return Grower(d_model, layer_idx, cfg)
