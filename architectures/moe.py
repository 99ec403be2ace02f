"""Mixture-of-Experts transformer: the transformer's attention mixer plus a top-k routed FFN channel mixer.

Papers: Switch Transformer (Fedus et al. 2021, arXiv:2101.03961; k=1, gate p_e not renormalised, load-balancing
loss alpha E sum_e f_e P_e), Mixtral (Jiang et al. 2024, arXiv:2401.04088; k=2, gates renormalised over the top
k = softmax of the top-k logits), ST-MoE router z-loss (Zoph et al. 2022, arXiv:2202.08906). Reference code read
for conventions: Hugging Face ``modeling_mixtral.py``/``modeling_switch_transformers.py`` (not copied).

What it is: the attention mixer of :mod:`arena.architectures.transformer` (same config fields) and, as the
backbone's channel mixer, E GELU experts D -> d_ff -> D with biases (each the size of the dense backbone MLP, so
k=1 has the dense model's active FFN size). Router ``W_r`` (D x E, no bias) runs in fp32. Routing is **dropless**
(every assignment is computed, a loop over experts); the overflow a capacity factor ``capacity_factor`` (1.25)
would have dropped, C = ceil(CF k T / E), is only logged. Simplified: every layer is an MoE layer (Switch used
every other), no router jitter, no expert parallelism.

Auxiliary loss (``aux_loss`` attribute, set in every training forward): alpha E sum_e f_e P_e, with f_e the fraction
of the k T assignments that go to expert e and P_e the mean router probability, plus beta mean_t logsumexp(z_t)^2
when ``z_loss > 0``. It equals alpha at perfect balance.

Params per layer: attention 4 D^2; channel total E (2 D F + F + D) + D E, active k (2 D F + F + D) + D E.
Forward FLOPs per token per layer: attention as the transformer; channel 2 x active expert weights (4 k D F) plus
the router 2 D E (matmul); gates, GELU and biases are elementwise; dispatch/gather is not counted.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from arena.api import ChannelSpec, SizePreset, arch_spec, even_head_width
from arena.architectures.transformer import (
    HEAD_COST,
    CausalSelfAttention,
    TransformerConfig,
    attention_flops,
    attention_params,
    attention_state,
)
from arena.blocks import MLP, mlp_width


class MoEConfig(TransformerConfig):
    n_experts: int = Field(8, ge=1, description="experts per MoE layer. Default: 8")
    top_k: int = Field(2, ge=1, description="experts per token: 1 = Switch (gate p_e), 2 = Mixtral (renormalised). "
                                            "Default: 2")
    aux_alpha: float = Field(1e-2, ge=0, description="load-balancing loss weight alpha (Switch). Default: 0.01")
    z_loss: float = Field(0.0, ge=0, description="router z-loss weight beta (ST-MoE uses 1e-3). Default: 0 (off)")
    capacity_factor: float = Field(1.25, gt=0, description="capacity factor whose overflow is logged (routing is "
                                                           "dropless). Default: 1.25")

    @model_validator(mode="after")
    def _check(self) -> MoEConfig:
        if self.top_k > self.n_experts:
            raise ValueError(f"top_k={self.top_k} exceeds n_experts={self.n_experts}")
        return self


class MoEFFN(nn.Module):
    """(B, T, D) -> (B, T, D): top-k routed experts, dropless; sets ``aux_loss`` and routing statistics."""

    def __init__(self, d_model: int, d_ff: int, layer_idx: int, cfg: MoEConfig):
        super().__init__()
        self.layer_idx, self.cfg = layer_idx, cfg
        self.router = nn.Linear(d_model, cfg.n_experts, bias=False)
        self.experts = nn.ModuleList(MLP(d_model, d_ff) for _ in range(cfg.n_experts))  # each expert is the dense MLP
        self.aux_loss: torch.Tensor | None = None
        self._stats: dict[str, float] = {}

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, D) -> (logits (N, E) fp32, probs (N, E), top-k indices (N, k), gates (N, k))."""
        z = F.linear(x.float(), self.router.weight.float())
        p = z.softmax(-1)
        top_p, idx = p.topk(self.cfg.top_k, dim=-1)
        gates = top_p if self.cfg.top_k == 1 else top_p / top_p.sum(-1, keepdim=True)
        return z, p, idx, gates

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        n, e, k = x.shape[0], self.cfg.n_experts, self.cfg.top_k
        z, p, idx, gates = self.route(x)
        out = torch.zeros_like(x)
        counts = torch.bincount(idx.reshape(-1), minlength=e)  # assignments per expert
        for j, expert in enumerate(self.experts):
            tok, slot = (idx == j).nonzero(as_tuple=True)
            if tok.numel():
                out.index_add_(0, tok, expert(x[tok]) * gates[tok, slot, None].to(x.dtype))
        f = counts.float() / (k * n)
        pm = p.mean(0)
        aux = self.cfg.aux_alpha * e * (f * pm).sum()
        lz = torch.logsumexp(z, -1).pow(2).mean()
        if self.cfg.z_loss:
            aux = aux + self.cfg.z_loss * lz
        self.aux_loss = aux if self.training else None
        with torch.no_grad():
            cap = math.ceil(self.cfg.capacity_factor * k * n / e)
            ent = -(p * p.clamp_min(1e-30).log()).sum(-1).mean()
            self._stats = {"moe_balance_loss": float(self.cfg.aux_alpha * e * (f * pm).sum()),
                           "moe_z_loss": float(lz), "moe_router_entropy": float(ent),
                           "moe_overflow_frac": float((counts - cap).clamp(min=0).sum()) / (k * n),
                           "moe_max_load": float(f.max() * e), "moe_unused_experts": float((counts == 0).sum())}
            self._stats.update({f"moe_f_{j}": float(f[j]) for j in range(e)})
            self._stats.update({f"moe_p_{j}": float(pm[j]) for j in range(e)})
        return out.reshape(shape)

    def extra_metrics(self) -> dict[str, float]:
        """Routing statistics of the last forward: f_e, P_e, losses, router entropy, would-be overflow at CF."""
        return {f"l{self.layer_idx}/{k}": v for k, v in self._stats.items()}


# -- analytic accounting --------------------------------------------------------------------------------------------
def _expert_params(d_model: int, mlp_ratio: float) -> int:
    f = mlp_width(d_model, mlp_ratio)
    return 2 * d_model * f + f + d_model


def moe_channel_params(d_model: int, mlp_ratio: float, cfg: MoEConfig) -> int:
    return cfg.n_experts * _expert_params(d_model, mlp_ratio) + d_model * cfg.n_experts


def moe_channel_active_params(d_model: int, mlp_ratio: float, cfg: MoEConfig) -> int:
    return cfg.top_k * _expert_params(d_model, mlp_ratio) + d_model * cfg.n_experts


def moe_channel_flops(d_model: int, mlp_ratio: float, cfg: MoEConfig) -> dict[str, float]:
    f, k, e = mlp_width(d_model, mlp_ratio), cfg.top_k, cfg.n_experts
    return {"matmul": 4.0 * k * d_model * f + 2.0 * d_model * e,
            # per expert used: biases, GELU (~8/unit); gate scale + accumulate 2D; router softmax ~5E, top-k ~E
            "elementwise": float(k * (9 * f + d_model + 2 * d_model) + 6 * e)}


MOE_CHANNEL = ChannelSpec(name="moe", factory=lambda d, r, i, cfg: MoEFFN(d, mlp_width(d, r), i, cfg),
                          params=moe_channel_params, flops=moe_channel_flops, active_params=moe_channel_active_params)

PRESETS = {"tiny": SizePreset(32, 1, {"n_experts": 4, "top_k": 2}),
           "small": SizePreset(128, 2, {"n_experts": 8, "top_k": 2}),
           "base": SizePreset(256, 4, {"n_experts": 8, "top_k": 2})}


@arch_spec("moe", kind="mixer", config=MoEConfig, params=attention_params, flops=attention_flops,
           state_size=attention_state, channel=MOE_CHANNEL, family="attention", version=1, supports_step=True,
           presets=PRESETS, captures_attention=True, heads=HEAD_COST, width_multiple=even_head_width,
           description="transformer with a top-k routed mixture-of-experts FFN (Switch k=1, "
                                        "Mixtral k=2), dropless, load-balancing loss",
           reference="https://arxiv.org/abs/2101.03961")
def build(d_model: int, layer_idx: int, cfg: MoEConfig) -> nn.Module:
    return CausalSelfAttention(d_model, layer_idx, cfg)


SPEC = build

__all__ = ["MoEConfig", "MoEFFN", "MOE_CHANNEL", "SPEC"]
