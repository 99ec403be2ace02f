"""Hyena operator mixer (Poli et al. 2023, "Hyena Hierarchy", arXiv:2302.10866, ICML 2023).

Official implementation: https://github.com/HazyResearch/safari (``src/models/sequence/hyena.py``). Conventions,
defaults and the parameter formula follow SPECS.md §5 (safari's).

Order convention (safari's, logged as ``order`` in the config): ``order = o`` makes o+1 projections
(x^0, ..., x^{o-1}, v) and **o-1 long convolutions**; the short depthwise conv (kernel 3) acts on all
projections. With o = 2 (the default, and the published 125M/153M models):
y = out_proj(x^0 ⊙ (h ∗ (x^1 ⊙ v) + b ⊙ (x^1 ⊙ v))). The paper's "order N" counts long filters instead, so the
paper's Hyena-N is safari's ``order = N + 1``.

Implicit long filter: a trainable positional encoding [t, cos(f_k ω_t), -sin(f_k ω_t)] of width e over
``max_seq_len`` positions -> Linear(e, F) -> Sin -> [Linear(F, F) -> Sin] x m -> Linear(F, D (o-1), no bias), one
Sin module (so one learnable frequency vector) shared by all activations, then an exponential decay window with
fixed per-channel rates (a buffer). Each long conv has a per-channel bias (skip) term. The convolution is an FFT
convolution at size 2L (zero padding makes it linear, hence causal).

``max_seq_len`` must be known at build time because the positional encoding is a trainable parameter over
positions (and the decay window's time grid is normalised by it); the runner sets it from the task when the user
does not. Sequences longer than ``max_seq_len`` raise an error.

Simplified/different: no dropout; safari's per-parameter learning rates (filter lr, lr_pos_emb) are not
reproduced (filter parameters are only marked ``_no_weight_decay``); norms/MLP/embedding come from the shared
Backbone (RMSNorm instead of LayerNorm). No recurrent mode: ``supports_step=False``; decoding a token costs a
convolution over the whole prefix (O(L D) per long conv, or an FFT re-run).
"""

from __future__ import annotations

import math

import torch
from pydantic import Field, field_validator
from torch import nn

from arena.api import ArchConfig, SizePreset, arch_spec


class HyenaConfig(ArchConfig):
    order: int = Field(2, ge=2, le=8, description="safari order o: o+1 projections, o-1 long filters. Default: 2")
    filter_order: int = Field(64, ge=1, description="width F of the implicit filter FFN. Default: 64")
    short_filter_order: int = Field(3, ge=1, description="kernel of the short depthwise causal conv. Default: 3")
    num_inner_mlps: int = Field(2, ge=0, description="inner Linear(F, F) + Sin layers m. Default: 2")
    emb_dim: int = Field(3, ge=3, description="positional encoding width e (odd; 33 in the Pile models). Default: 3")
    sin_freq: float = Field(1.0, gt=0, description="initial Sin frequency w (14 in the paper's LMs). Default: 1.0")
    max_seq_len: int = Field(1024, ge=1, description="L_max of the trainable positional encoding; the runner sets "
                             "it from the task. Default: 1024")
    modulate: bool = Field(True, description="apply the exponential decay window. Default: True")
    fast_decay_pct: float = Field(0.3, gt=0, description="fastest decay: window reaches target at this fraction "
                                  "of L_max. Default: 0.3")
    slow_decay_pct: float = Field(1.5, gt=0, description="slowest decay fraction. Default: 1.5")
    decay_target: float = Field(1e-2, gt=0, lt=1, description="window value reached at the decay fraction. Default: 1e-2")
    shift: float = Field(0.0, description="constant added to the window. Default: 0.0")

    @field_validator("emb_dim")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError("emb_dim must be odd: [t, cos bands, sin bands]")
        return v


class Sin(nn.Module):
    """sin(freq * x) with a learnable per-feature frequency."""

    def __init__(self, dim: int, w: float):
        super().__init__()
        self.w = w
        self.freq = nn.Parameter(torch.full((1, dim), w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.freq * x)


class HyenaFilter(nn.Module):
    """Implicit long filters for ``channels`` = D (o-1) channels, evaluated at positions 0..L-1."""

    def __init__(self, channels: int, cfg: HyenaConfig):
        super().__init__()
        e, f, lmax = cfg.emb_dim, cfg.filter_order, cfg.max_seq_len
        bands = (e - 1) // 2
        t = torch.linspace(0, 1, lmax).view(1, lmax, 1)  # (1, Lmax, 1)
        omega = 2 * math.pi * torch.arange(lmax, dtype=torch.float32).view(1, lmax, 1) / lmax
        freqs = torch.linspace(1e-4, bands - 1, bands).view(1, 1, bands)
        self.pos_emb = nn.Parameter(torch.cat([t, torch.cos(freqs * omega), -torch.sin(freqs * omega)], -1))
        self.register_buffer("t", t, persistent=False)
        act = Sin(f, cfg.sin_freq)  # one instance: the frequency is shared by every activation
        layers: list[nn.Module] = [nn.Linear(e, f), act]
        for _ in range(cfg.num_inner_mlps):
            layers += [nn.Linear(f, f), act]
        layers.append(nn.Linear(f, channels, bias=False))
        self.implicit_filter = nn.Sequential(*layers)
        lo, hi = math.log(cfg.decay_target) / cfg.slow_decay_pct, math.log(cfg.decay_target) / cfg.fast_decay_pct
        self.register_buffer("deltas", torch.linspace(lo, hi, channels).view(1, 1, channels), persistent=False)
        self.modulate, self.shift = cfg.modulate, cfg.shift
        for p in [self.pos_emb, *self.implicit_filter.parameters()]:
            p._no_weight_decay = True  # safari trains the filter FFN and positional encoding without weight decay
        self.bias = nn.Parameter(torch.randn(channels))

    def forward(self, length: int) -> torch.Tensor:
        """Filters (channels, L)."""
        h = self.implicit_filter(self.pos_emb[:, :length])  # (1, L, C)
        if self.modulate:
            h = h * (torch.exp(-self.t[:, :length] * self.deltas.abs()) + self.shift)
        return h[0].T  # (C, L)


def fft_causal_conv(u: torch.Tensor, k: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """y[.., c, t] = sum_{s<=t} k[c, t-s] u[.., c, s] + bias[c] u[.., c, t]. u: (B, C, L), k: (C, L), bias: (C)."""
    n = 2 * u.shape[-1]  # zero padding to 2L: a linear (not circular) convolution
    y = torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(k, n=n), n=n)[..., : u.shape[-1]]
    return y + u * bias.unsqueeze(-1)


class HyenaOperator(nn.Module):
    """(B, T, D) -> (B, T, D)."""

    def __init__(self, d_model: int, layer_idx: int, cfg: HyenaConfig):
        super().__init__()
        self.d_model, self.order, self.max_seq_len = d_model, cfg.order, cfg.max_seq_len
        inner = (cfg.order + 1) * d_model
        self.in_proj = nn.Linear(d_model, inner)
        s = cfg.short_filter_order
        self.short_filter = nn.Conv1d(inner, inner, s, groups=inner, padding=s - 1)
        self.filter_fn = HyenaFilter(d_model * (cfg.order - 1), cfg)
        self.out_proj = nn.Linear(d_model, d_model)

    def reset_parameters_arena(self) -> None:
        """After the Backbone's GPT-2 style init: in_proj back to N(0, 0.02) (the depth-scaled init is only for
        out_proj), the filter bias and Sin frequency to safari's values."""
        with torch.no_grad():
            nn.init.normal_(self.in_proj.weight, std=0.02)
            self.filter_fn.bias.normal_()
            act = self.filter_fn.implicit_filter[1]
            act.freq.fill_(act.w)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        L, d = u.shape[1], self.d_model
        if L > self.max_seq_len:
            raise ValueError(f"hyena: sequence length {L} exceeds max_seq_len={self.max_seq_len} of the implicit "
                             "filter; set the arch config's max_seq_len")
        p = self.short_filter(self.in_proj(u).transpose(1, 2))[..., :L]  # (B, (o+1) D, L), causal
        *xs, v = p.split(d, dim=1)  # x^0..x^{o-1}, v: (B, D, L) each
        # safari's channel layout of the D (o-1) filters is (D, o-1): filter i of channel c is row c (o-1) + i
        k = self.filter_fn(L).view(d, self.order - 1, L).transpose(0, 1)  # (o-1, D, L)
        bias = self.filter_fn.bias.view(d, self.order - 1).T  # (o-1, D)
        for i, x in enumerate(reversed(xs[1:])):
            v = fft_causal_conv(v * x, k[i], bias[i])
        return self.out_proj((v * xs[0]).transpose(1, 2))  # (B, L, D)


# -- analytic accounting (per layer) ---------------------------------------------------------------------------------
def hyena_params(d_model: int, cfg: HyenaConfig) -> int:
    """SPECS.md §5: (o+1)(D²+D) + (o+1)D(s+1) + [eF + F + m(F²+F) + F D (o-1) + F] + L_max e + D(o-1) + D²+D."""
    d, o, s = d_model, cfg.order, cfg.short_filter_order
    e, f, m = cfg.emb_dim, cfg.filter_order, cfg.num_inner_mlps
    ffn = e * f + f + m * (f * f + f) + f * d * (o - 1) + f
    return (o + 1) * (d * d + d) + (o + 1) * d * (s + 1) + ffn + cfg.max_seq_len * e + d * (o - 1) + d * d + d


def hyena_flops(d_model: int, cfg: HyenaConfig, seq_len: int) -> dict[str, float]:
    """Forward FLOPs per token per layer (SPECS.md §5-6).

    matmul: in/out projections, the short conv, and the filter FFN evaluated at each of the L positions (once per
    sequence: this is its cost per token at batch 1, an upper bound at larger batches); fft: rfft + irfft at size
    2L and the complex product, (o-1) D (10 log2(2L) + 6); elementwise: gates, bias adds, the bias skip, Sin and
    the decay window.
    """
    d, o, s, L = d_model, cfg.order, cfg.short_filter_order, max(1, seq_len)
    e, f, m = cfg.emb_dim, cfg.filter_order, cfg.num_inner_mlps
    matmul = 2.0 * (o + 1) * d * d + 2.0 * d * d + 2.0 * (o + 1) * d * s
    matmul += 2.0 * (e * f + m * f * f + f * d * (o - 1))
    fft = (o - 1) * d * (10.0 * math.log2(2 * L) + 6.0)
    elementwise = o * d + (2 * (o + 1) + 1) * d + 2.0 * (o - 1) * d + 3.0 * f * (m + 1) + 3.0 * d * (o - 1)
    return {"matmul": matmul, "fft": fft, "elementwise": float(elementwise)}


def hyena_state(d_model: int, cfg: HyenaConfig, seq_len: int) -> int:
    """No recurrent state: continuing a sequence needs the inputs of every long conv so far ((o-1) D per token,
    like a KV cache) plus the short conv's last s-1 inputs of each projection."""
    return (cfg.order - 1) * d_model * seq_len + (cfg.order + 1) * d_model * (cfg.short_filter_order - 1)


@arch_spec("hyena", kind="mixer", config=HyenaConfig, params=hyena_params, flops=hyena_flops, state_size=hyena_state,
           family="convolution", version=1, supports_step=False, counts_flops_with_grad=True,
           description="Hyena operator (safari order convention; implicit long filters, FFT convolution)",
           reference="https://arxiv.org/abs/2302.10866",
           presets={"tiny": SizePreset(32, 1), "small": SizePreset(128, 2), "base": SizePreset(256, 4)})
def build(d_model: int, layer_idx: int, cfg: HyenaConfig) -> nn.Module:
    return HyenaOperator(d_model, layer_idx, cfg)


SPEC = build
