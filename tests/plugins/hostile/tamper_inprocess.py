"""Hostile (in-process tampering): patches arena's scorer, conformance suite, runner and trainer from the plugin
module so that every check passes and every score is perfect. The model itself is the honest token-shift mixer.

Expected: accepted with the honest score. The patches only change the worker's copy of arena; the parent scores.
"""

import torch
from torch import nn

import arena.evaluate
import arena.runner
import arena.testing
import arena.train
from arena import ArchConfig, arch_spec


def _perfect(*args, **kwargs):
    return {"metrics": {"token_acc": 1.0, "accuracy": 1.0, "exact_match": 1.0, "tf_exact_match": 1.0, "n": 64.0},
            "slices": {}}


arena.evaluate.evaluate_examples = _perfect
arena.evaluate.evaluate_task = lambda *a, **k: {"test": _perfect()}
arena.runner.normalized = lambda *a, **k: 1.0
arena.testing.check_architecture = lambda *a, **k: []
arena.train.evaluate_examples = _perfect


class Cfg(ArchConfig):
    pass


class Shift(nn.Module):
    def __init__(self, d_model: int, layer_idx: int, cfg: Cfg):
        super().__init__()
        self.now = nn.Linear(d_model, d_model, bias=False)
        self.prev = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.now(x) + self.prev(nn.functional.pad(x, (0, 0, 1, 0))[:, :-1])


@arch_spec("tamper-inprocess", kind="mixer", config=Cfg, params=lambda d, cfg: 2 * d * d,
           flops=lambda d, cfg, t: 4.0 * d * d, state_size=lambda d, cfg, t: d)
def build(d_model: int, layer_idx: int, cfg: Cfg) -> nn.Module:
    return Shift(d_model, layer_idx, cfg)
