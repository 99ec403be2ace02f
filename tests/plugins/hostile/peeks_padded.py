"""Hostile (causality hole for some inputs only): looks at the next token only in big batches (at least 16 rows,
as scoring uses) or in rows that contain the padding token 0, which real right-padded batches do; small probe
batches of random tokens (1..V-1) never trigger it.

Expected: rejected (check ``causality``): the parent re-asks every scored batch with each row's future replaced
after a secret position, and the logits before it must not move.
"""

import torch
from torch import nn

from arena import ArchConfig, arch_spec


class Cfg(ArchConfig):
    pass


class PeekPadded(nn.Module):
    def __init__(self, shape, cfg: Cfg):
        super().__init__()
        self.embed = nn.Embedding(shape.vocab_size, shape.d_model)
        self.head = nn.Linear(2 * shape.d_model, shape.vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.embed(ids).cumsum(1)  # (B, T, D), causal
        ahead = nn.functional.pad(self.embed(ids), (0, 0, 0, 1))[:, 1:]  # x_{t+1}
        padded = ((ids == 0).any(1, keepdim=True) | (ids.shape[0] >= 16)).unsqueeze(-1)  # the hole
        return self.head(torch.cat([h, torch.where(padded, ahead, torch.zeros_like(ahead))], -1))


@arch_spec("peeks-padded", kind="model", config=Cfg,
           params=lambda s, cfg: s.vocab_size * s.d_model + 2 * s.d_model * s.vocab_size + s.vocab_size,
           flops=lambda s, cfg, t: 4.0 * s.d_model * s.vocab_size, state_size=lambda s, cfg, t: s.d_model)
def build(shape, cfg: Cfg) -> nn.Module:
    return PeekPadded(shape, cfg)
