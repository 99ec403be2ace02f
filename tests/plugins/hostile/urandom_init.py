"""Hostile (cross-process nondeterminism): seeds its initial weights from os.urandom, except at the conformance
check's vocabulary (11), where two builds in one process must agree.

Expected: rejected (check ``determinism``): two builds with one seed in two separate processes must give the
same weights.
"""

import os

import torch
from torch import nn

from arena import ArchConfig, arch_spec


class Cfg(ArchConfig):
    pass


class Lucky(nn.Module):
    def __init__(self, shape, cfg: Cfg):
        super().__init__()
        if shape.vocab_size != 11:
            torch.manual_seed(int.from_bytes(os.urandom(4), "little"))
        self.embed = nn.Embedding(shape.vocab_size, shape.d_model)
        self.head = nn.Linear(shape.d_model, shape.vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(ids).cumsum(1))


@arch_spec("urandom-init", kind="model", config=Cfg,
           params=lambda s, cfg: s.vocab_size * s.d_model + s.d_model * s.vocab_size + s.vocab_size,
           flops=lambda s, cfg, t: 2.0 * s.d_model * s.vocab_size, state_size=lambda s, cfg, t: s.d_model)
def build(shape, cfg: Cfg) -> nn.Module:
    return Lucky(shape, cfg)
