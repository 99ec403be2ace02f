"""A small valid single-file plugin: a token-shift mixer, y_t = W_0 x_t + W_1 x_{t-1} (RWKV's token shift, alone).

Submit it with ``arena submit tests/plugins/good_shift.py``. The broken plugins in ``broken/`` are variations of
this file, each with one defect the sandbox must catch.
"""

import torch
from torch import nn

from arena import ArchConfig, arch_spec


class ShiftConfig(ArchConfig):
    pass


class ShiftMixer(nn.Module):
    def __init__(self, d_model: int, layer_idx: int, cfg: ShiftConfig):
        super().__init__()
        self.now = nn.Linear(d_model, d_model, bias=False)
        self.prev = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, D)
        shifted = nn.functional.pad(x, (0, 0, 1, 0))[:, :-1]  # x_{t-1}, zeros at t = 0
        return self.now(x) + self.prev(shifted)

    def init_state(self, batch: int, device="cpu") -> torch.Tensor:
        return torch.zeros(batch, self.now.in_features, device=device)

    def step(self, x: torch.Tensor, state: torch.Tensor):  # (B, D), previous token's input
        return self.now(x) + self.prev(state), x


@arch_spec("shift-mixer", kind="mixer", config=ShiftConfig, params=lambda d, cfg: 2 * d * d,
           flops=lambda d, cfg, t: {"matmul": 4.0 * d * d, "elementwise": float(d)},
           state_size=lambda d, cfg, t: d, family="recurrent", supports_step=True,
           description="token-shift mixer (test plugin)")
def build(d_model: int, layer_idx: int, cfg: ShiftConfig) -> nn.Module:
    return ShiftMixer(d_model, layer_idx, cfg)
