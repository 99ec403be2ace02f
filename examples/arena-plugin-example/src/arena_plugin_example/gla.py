"""gla-mini: a small gated linear-attention time mixer (Yang et al. 2023, "Gated Linear Attention Transformers
with Hardware-Efficient Training", https://arxiv.org/abs/2312.06635).

Per head the mixer keeps a matrix state S (d_k x d_v) and, for each token,

    alpha_t = sigmoid(x_t W_a1 W_a2 + b_a) ** (1 / tau)          data-dependent decay in (0, 1) per key channel
    S_t     = diag(alpha_t) S_{t-1} + k_t^T v_t                     (d_k, d_v)
    o_t     = q_t S_t                                               (d_v,)
    y_t     = W_o (RMSNorm(o_t) * silu(x_t W_g + b_g))              output gate, as in the paper

The parallel forward is the paper's chunkwise form: inside a chunk of ``chunk_size`` tokens the decays are
applied exactly as a masked (C, C, d_k) tensor in log space; across chunks the state is carried recurrently.
``step()`` is the recurrence above, so decoding costs O(1) per token. Pure PyTorch, no custom kernels.

Simplified from the paper: one shared per-head RMSNorm instead of a per-head LayerNorm, no short convolution,
no feature map on q/k, and the chunk loop runs in Python (fine for the small models arena trains on CPU).

Analytic counts (per layer, with K = d_model * expand_k and V = d_model * expand_v split over H heads):
params  = D*K (q) + D*K (k) + D*V (v) + D*r + r*K + K (low-rank gate) + D*V + V (output gate) + V/H (norm)
          + V*D (output projection);
FLOPs   = 2 x multiply-adds of those projections ("matmul"), plus the recurrent state update and read-out per
          token, 5 * K * V / H ("scan"), plus about 3K + 9V elementwise operations; counted for the recurrent form
          (the chunkwise form does the same work up to a chunk-local constant);
state   = H * (K/H) * (V/H) floats per layer, independent of the sequence length.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from arena.api import ArchConfig, SizePreset, arch_spec, even_head_width


class GLAConfig(ArchConfig):
    n_heads: int = Field(2, ge=1, le=64, description="attention heads. Default: 2")
    expand_k: float = Field(0.5, gt=0, le=4, description="key width as a fraction of d_model. Default: 0.5")
    expand_v: float = Field(1.0, gt=0, le=4, description="value width as a fraction of d_model. Default: 1.0")
    gate_rank: int = Field(16, ge=1, le=1024, description="rank of the low-rank decay projection. Default: 16")
    gate_temperature: float = Field(16.0, gt=0, description="tau: alpha = sigmoid(.)^(1/tau). Default: 16.0")
    chunk_size: int = Field(16, ge=1, le=1024, description="tokens per chunk in the parallel form. Default: 16")


def widths(d_model: int, cfg: GLAConfig) -> tuple[int, int]:
    """(K, V): total key and value widths, rounded down to a multiple of the head count."""
    h = cfg.n_heads
    k = max(h, int(d_model * cfg.expand_k) // h * h)
    v = max(h, int(d_model * cfg.expand_v) // h * h)
    return k, v


class GLAMixer(nn.Module):
    """(B, T, D) -> (B, T, D), causal, with ``init_state``/``step`` for recurrent decoding."""

    def __init__(self, d_model: int, layer_idx: int, cfg: GLAConfig):
        super().__init__()
        self.h = cfg.n_heads
        self.k_dim, self.v_dim = widths(d_model, cfg)
        self.dk, self.dv = self.k_dim // self.h, self.v_dim // self.h
        self.tau = cfg.gate_temperature
        self.chunk = cfg.chunk_size
        self.q_proj = nn.Linear(d_model, self.k_dim, bias=False)
        self.k_proj = nn.Linear(d_model, self.k_dim, bias=False)
        self.v_proj = nn.Linear(d_model, self.v_dim, bias=False)
        self.gate_down = nn.Linear(d_model, cfg.gate_rank, bias=False)
        self.gate_up = nn.Linear(cfg.gate_rank, self.k_dim, bias=True)
        self.out_gate = nn.Linear(d_model, self.v_dim, bias=True)
        self.norm_weight = nn.Parameter(torch.ones(self.dv))
        self.out_proj = nn.Linear(self.v_dim, d_model, bias=False)

    def _heads(self, x: torch.Tensor, width: int) -> torch.Tensor:
        return x.unflatten(-1, (self.h, width)).transpose(-3, -2) if x.dim() == 3 else x.unflatten(-1, (self.h, width))

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        q = self._heads(self.q_proj(x), self.dk) * self.dk ** -0.5
        k = self._heads(self.k_proj(x), self.dk)
        v = self._heads(self.v_proj(x), self.dv)
        log_a = F.logsigmoid(self.gate_up(self.gate_down(x))) / self.tau  # log alpha <= 0
        return q, k, v, self._heads(log_a, self.dk)

    def _output(self, o: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        o = o * torch.rsqrt(o.pow(2).mean(-1, keepdim=True) + 1e-6) * self.norm_weight  # per-head RMSNorm
        o = o.transpose(-3, -2).flatten(-2) if o.dim() == 4 else o.flatten(-2)  # (..., V)
        return self.out_proj(o * F.silu(self.out_gate(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v, log_a = self._project(x)  # (B, H, T, dk) x3 and (B, H, T, dv)
        c = self.chunk
        pad = (-t) % c
        if pad:  # padded positions come after every real one, so they cannot leak into the outputs kept
            q, k, v, log_a = (F.pad(z, (0, 0, 0, pad)) for z in (q, k, v, log_a))
        n = (t + pad) // c
        q, k, v, log_a = (z.unflatten(2, (n, c)) for z in (q, k, v, log_a))  # (B, H, N, C, .)
        g = log_a.cumsum(3)  # log of the decay from the chunk start to each position, (B, H, N, C, dk)
        causal = torch.ones(c, c, dtype=torch.bool, device=x.device).tril()
        # intra-chunk: A[i, j] = sum_c q[i, c] k[j, c] exp(g[i, c] - g[j, c]) for j <= i
        diff = g.unsqueeze(4) - g.unsqueeze(3)  # (B, H, N, C, C, dk)
        decay = torch.exp(diff.masked_fill(~causal[:, :, None], float("-inf")))
        scores = torch.einsum("bhnic,bhnjc,bhnijc->bhnij", q, k, decay)  # (B, H, N, C, C)
        intra = scores @ v  # (B, H, N, C, dv)
        state = x.new_zeros(b, self.h, self.dk, self.dv)
        outs = []
        for i in range(n):
            gi = g[:, :, i]  # (B, H, C, dk)
            inter = (q[:, :, i] * gi.exp()) @ state  # what the earlier chunks contribute, (B, H, C, dv)
            outs.append(intra[:, :, i] + inter)
            total = gi[:, :, -1:]  # decay over the whole chunk, (B, H, 1, dk)
            state = state * total.transpose(-1, -2).exp() + (k[:, :, i] * (total - gi).exp()).transpose(-1, -2) @ v[:, :, i]
        o = torch.stack(outs, 2).flatten(2, 3)[:, :, :t]  # (B, H, T, dv)
        return self._output(o, x)  # (B, T, D)

    def init_state(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.zeros(batch, self.h, self.dk, self.dv, device=device)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, Any]:
        q, k, v, log_a = self._project(x)  # (B, H, dk), (B, H, dk), (B, H, dv), (B, H, dk)
        state = state * log_a.exp().unsqueeze(-1) + k.unsqueeze(-1) * v.unsqueeze(-2)  # (B, H, dk, dv)
        o = (q.unsqueeze(-2) @ state).squeeze(-2)  # (B, H, dv)
        return self._output(o, x), state  # (B, D)


def gla_params(d_model: int, cfg: GLAConfig) -> int:
    k, v = widths(d_model, cfg)
    r = cfg.gate_rank
    return 2 * d_model * k + d_model * v + (d_model * r + r * k + k) + (d_model * v + v) + v // cfg.n_heads + v * d_model


def gla_flops(d_model: int, cfg: GLAConfig, seq_len: int) -> dict[str, float]:
    k, v = widths(d_model, cfg)
    r = cfg.gate_rank
    matmul = 2.0 * (2 * d_model * k + d_model * v + d_model * r + r * k + d_model * v + v * d_model)
    return {"matmul": matmul, "scan": 5.0 * k * v / cfg.n_heads, "elementwise": float(3 * k + 9 * v)}


def gla_state(d_model: int, cfg: GLAConfig, seq_len: int) -> int:
    k, v = widths(d_model, cfg)
    return k * v // cfg.n_heads


@arch_spec("gla-mini", kind="mixer", config=GLAConfig, params=gla_params, flops=gla_flops, state_size=gla_state,
           family="linear-attention", version=1, supports_step=True, width_multiple=even_head_width,
           description="gated linear attention (chunkwise parallel form, recurrent step); example plugin",
           reference="https://arxiv.org/abs/2312.06635",
           presets={"tiny": SizePreset(32, 1, {"gate_rank": 8}), "small": SizePreset(128, 2),
                    "base": SizePreset(256, 4)})
def build(d_model: int, layer_idx: int, cfg: GLAConfig) -> nn.Module:
    return GLAMixer(d_model, layer_idx, cfg)


SPEC = build
