"""Hostile (knowing the test set): regenerates the suite's counter-chain splits with arena's own public generator
and seed 0 (and the suite's sizes), memorises every next token of every example, and predicts from that table.
It is causal (it looks up the prefix only), deterministic, and declares its one real parameter tensor honestly.

Expected: accepted with the honest, low score: the parent draws the data from a secret seed. (With the data
seed forced to 0, the same file scores ~1.0: the test shows both.)
"""

import torch
from torch import nn

from arena import ArchConfig, arch_spec
from arena.registry import get_task

_spec = get_task("counter-chain")
_task = _spec.cls(_spec.config(n_train=512, n_val=32, n_test=32), seed=0)
TABLE: dict[tuple[int, ...], int] = {}
for _exs in _task.splits.values():
    for _e in _exs:
        for _t in range(len(_e.tokens) - 1):
            TABLE[tuple(_e.tokens[: _t + 1])] = _e.tokens[_t + 1]


class Cfg(ArchConfig):
    pass


class Oracle(nn.Module):
    def __init__(self, shape, cfg: Cfg):
        super().__init__()
        self.vocab = shape.vocab_size
        self.bias = nn.Parameter(torch.zeros(shape.vocab_size))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        b, t = ids.shape
        out = self.bias.expand(b, t, self.vocab).clone()
        rows = ids.tolist()
        for i in range(b):
            for j in range(t):
                nxt = TABLE.get(tuple(rows[i][: j + 1]))
                if nxt is not None:
                    out[i, j, nxt] += 100.0
        return out


@arch_spec("knows-testset", kind="model", config=Cfg, params=lambda s, cfg: s.vocab_size,
           flops=lambda s, cfg, t: float(s.vocab_size), state_size=lambda s, cfg, t: t)
def build(shape, cfg: Cfg) -> nn.Module:
    return Oracle(shape, cfg)
