"""Hostile (cross-process nondeterminism in the forward): deterministic weights, but every process adds its own
random offset (drawn from os.urandom at import) to the logits. Within one process it is consistent, so the
plugin's own determinism and causality checks pass.

Expected: rejected (check ``determinism``): every scoring worker must reproduce the check worker's logits on a
secret probe batch exactly.
"""

import os

import torch
from torch import nn

from arena import ArchConfig, arch_spec

OFFSET = torch.tensor([b / 255.0 for b in os.urandom(64)])


class Cfg(ArchConfig):
    pass


class Noisy(nn.Module):
    def __init__(self, shape, cfg: Cfg):
        super().__init__()
        self.embed = nn.Embedding(shape.vocab_size, shape.d_model)
        self.head = nn.Linear(shape.d_model, shape.vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        y = self.head(self.embed(ids).cumsum(1))
        return y + OFFSET[: y.shape[-1]]


@arch_spec("noisy-forward", kind="model", config=Cfg,
           params=lambda s, cfg: s.vocab_size * s.d_model + s.d_model * s.vocab_size + s.vocab_size,
           flops=lambda s, cfg, t: 2.0 * s.d_model * s.vocab_size, state_size=lambda s, cfg, t: s.d_model)
def build(shape, cfg: Cfg) -> nn.Module:
    return Noisy(shape, cfg)
