"""Shared parts: RMSNorm, the MLP channel mixer, and the residual :class:`Backbone` every mixer is placed in.

Backbone: embed -> N x (x + mixer(norm(x)); x + channel(norm(x))) -> norm -> head (tied to the embedding by
default). Keeping embeddings, norms, MLPs and heads identical is what makes mixer comparisons fair.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from arena.api import (
    ArchConfig,
    ArchSpec,
    AuxLoss,
    ChannelSpec,
    ExtraMetrics,
    ModelShape,
    OwnInit,
    StepDecoder,
    flops_total,
)


class RMSNorm(nn.Module):
    def __init__(self, d_model: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class MLP(nn.Module):
    """GELU feed-forward D -> F -> D with biases (GPT-2 style)."""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.fc = nn.Linear(d_model, d_ff)
        self.proj = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


def mlp_width(d_model: int, mlp_ratio: float) -> int:
    return max(1, int(round(d_model * mlp_ratio)))


def _mlp_params(d_model: int, mlp_ratio: float, cfg: Any = None) -> int:
    f = mlp_width(d_model, mlp_ratio)
    return 2 * d_model * f + f + d_model


def _mlp_flops(d_model: int, mlp_ratio: float, cfg: Any = None) -> dict[str, float]:
    f = mlp_width(d_model, mlp_ratio)
    # two matmuls; biases, GELU (~8 ops) and the residual add are elementwise
    return {"matmul": 4.0 * d_model * f, "elementwise": float(f + d_model + 8 * f + d_model)}


MLP_CHANNEL = ChannelSpec(name="mlp", factory=lambda d, r, i, cfg: MLP(d, mlp_width(d, r)),
                          params=_mlp_params, flops=_mlp_flops)


def channel_of(spec: ArchSpec) -> ChannelSpec | None:
    if isinstance(spec.channel, ChannelSpec):
        return spec.channel
    if spec.channel == "mlp":
        return MLP_CHANNEL
    if spec.channel == "none":
        return None
    raise ValueError(f"architecture {spec.name!r} names an unknown channel mixer {spec.channel!r}")


class Backbone(nn.Module):
    """Token ids (B, T) -> logits (B, T, V) around one sequence mixer per layer."""

    def __init__(self, spec: ArchSpec, shape: ModelShape, cfg: ArchConfig):
        super().__init__()
        self.shape = shape
        self.supports_step = spec.supports_step  # every mixer's step() exists only when the spec declares it
        d = shape.d_model
        channel = channel_of(spec)
        self.embed = nn.Embedding(shape.vocab_size, d)
        self.mixers = nn.ModuleList(spec.factory(d, i, cfg) for i in range(shape.n_layers))
        self.norms1 = nn.ModuleList(RMSNorm(d) for _ in range(shape.n_layers))
        if channel is not None:
            self.channels = nn.ModuleList(channel.factory(d, shape.mlp_ratio, i, cfg) for i in range(shape.n_layers))
            self.norms2 = nn.ModuleList(RMSNorm(d) for _ in range(shape.n_layers))
        else:
            self.channels = None
        self.norm_f = RMSNorm(d)
        self.head = None if shape.tie_embeddings else nn.Linear(d, shape.vocab_size, bias=False)
        self.apply(_init_weights)
        # GPT-2 style: scale residual output projections by 1/sqrt(2 N)
        for name, p in self.named_parameters():
            if name.endswith((".proj.weight", ".out_proj.weight")) and p.dim() == 2:
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * shape.n_layers))
        for m in self.modules():  # mixers may re-initialise their own parameters after the generic init
            if m is not self and isinstance(m, OwnInit):
                m.reset_parameters_arena()

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        h = self.norm_f(h)
        return h @ self.embed.weight.T if self.head is None else self.head(h)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        h = self.embed(input_ids)  # (B, T, D)
        for i, mixer in enumerate(self.mixers):
            h = h + mixer(self.norms1[i](h))
            if self.channels is not None:
                h = h + self.channels[i](self.norms2[i](h))
        return self.logits(h)  # (B, T, V)

    # -- recurrent decoding -------------------------------------------------------------------------------------
    def init_state(self, batch: int) -> list[Any]:
        return [m.init_state(batch, self.embed.weight.device) for m in self.mixers]

    def step(self, tokens: torch.Tensor, state: list[Any]) -> tuple[torch.Tensor, list[Any]]:
        h = self.embed(tokens)  # (B, D)
        new_state = []
        for i, mixer in enumerate(self.mixers):
            y, s = mixer.step(self.norms1[i](h), state[i])
            new_state.append(s)
            h = h + y
            if self.channels is not None:
                h = h + self.channels[i](self.norms2[i](h))
        return self.logits(h), new_state  # (B, V)


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Embedding):
        nn.init.normal_(m.weight, mean=0.0, std=0.02)


# -- the optional module capabilities (arena.api protocols), as the core uses them --------------------------------
def can_step(model: nn.Module) -> bool:
    """Decode with ``step()``: the model is a :class:`StepDecoder` and (a backbone) its spec declared
    ``supports_step`` (the backbone always has the methods; its mixers have theirs only when declared)."""
    return isinstance(model, StepDecoder) and bool(getattr(model, "supports_step", True))


def aux_loss_modules(model: nn.Module) -> list[nn.Module]:
    """The modules that add an auxiliary loss (:class:`AuxLoss`), found once before training."""
    return [m for m in model.modules() if isinstance(m, AuxLoss)]


def collect_aux_loss(model: nn.Module, modules: list[nn.Module] | None = None) -> torch.Tensor:
    """Sum of the auxiliary losses set during the last forward (MoE balance, compressive L_ar); 0 when none."""
    total = torch.zeros(())
    for m in aux_loss_modules(model) if modules is None else modules:
        aux = m.aux_loss
        if isinstance(aux, torch.Tensor):
            total = total + aux
    return total


def module_logs(model: nn.Module) -> dict[str, Any]:
    """``extra_metrics()`` of every :class:`ExtraMetrics` module, by module name (``model`` for the root); a hook
    that raises is logged as its error (a logging hook must never fail a finished run)."""
    logs: dict[str, Any] = {}
    for name, mod in model.named_modules():
        if isinstance(mod, ExtraMetrics):
            try:
                logs[name or "model"] = mod.extra_metrics()
            except Exception as exc:  # noqa: BLE001
                logs[name or "model"] = {"error": str(exc)}
    return logs


# -- whole-model construction and analytic accounting -------------------------------------------------------------
def build_model(spec: ArchSpec, shape: ModelShape, cfg: ArchConfig) -> nn.Module:
    if spec.kind == "mixer":
        return Backbone(spec, shape, cfg)
    return spec.factory(shape, cfg)


def analytic_params(spec: ArchSpec, shape: ModelShape, cfg: ArchConfig, active: bool = False) -> dict[str, int]:
    """Declared parameter counts: total, embedding, non_embedding (and active, which differs for MoE)."""
    if spec.kind == "model":
        total = int(spec.params(shape, cfg))
        act = int(spec.active_params(shape, cfg)) if spec.active_params else total
        emb = int(spec.embedding_params(shape, cfg)) if spec.embedding_params else 0
        return {"total": total, "embedding": emb, "non_embedding": total - emb, "active": act}
    d, n = shape.d_model, shape.n_layers
    channel = channel_of(spec)
    per_mixer = int(spec.params(d, cfg))
    per_mixer_active = int(spec.active_params(d, cfg)) if spec.active_params else per_mixer
    per_channel = channel.params(d, shape.mlp_ratio, cfg) if channel else 0
    per_channel_active = (channel.active_params or channel.params)(d, shape.mlp_ratio, cfg) if channel else 0
    norms = d * (2 if channel else 1)
    emb = shape.vocab_size * d
    head = 0 if shape.tie_embeddings else d * shape.vocab_size
    total = emb + n * (per_mixer + per_channel + norms) + d + head
    active = emb + n * (per_mixer_active + per_channel_active + norms) + d + head
    return {"total": total, "embedding": emb, "non_embedding": total - emb, "active": active}


def analytic_flops(spec: ArchSpec, shape: ModelShape, cfg: ArchConfig, seq_len: int) -> dict[str, float] | None:
    """Forward FLOPs per token as a breakdown (None for symbolic models)."""
    if spec.kind == "model":
        f = spec.flops(shape, cfg, seq_len)
        if f is None:
            return None
        return dict(f) if isinstance(f, dict) else {"matmul": float(f)}
    d, n = shape.d_model, shape.n_layers
    out: dict[str, float] = {}

    def add(part: Any, times: float = 1.0) -> None:
        part = part if isinstance(part, dict) else {"matmul": float(part)}
        for k, v in part.items():
            out[k] = out.get(k, 0.0) + times * float(v)

    add(spec.flops(d, cfg, seq_len), n)
    channel = channel_of(spec)
    if channel:
        add(channel.flops(d, shape.mlp_ratio, cfg), n)
    norms = (2 * n + 1) if channel else (n + 1)
    add({"elementwise": 4.0 * d * norms + 2.0 * d * n})  # RMSNorm ~4D each, residual adds
    add({"matmul": 2.0 * d * shape.vocab_size})  # logits
    return out


def analytic_state_size(spec: ArchSpec, shape: ModelShape, cfg: ArchConfig, seq_len: int) -> int:
    if spec.kind == "model":
        return int(spec.state_size(shape, cfg, seq_len))
    return int(shape.n_layers * spec.state_size(shape.d_model, cfg, seq_len))


__all__ = ["RMSNorm", "MLP", "Backbone", "MLP_CHANNEL", "build_model", "analytic_params", "analytic_flops",
           "analytic_state_size", "flops_total", "mlp_width", "can_step", "aux_loss_modules", "collect_aux_loss",
           "module_logs"]
