"""Mamba-1 selective SSM mixer (Gu & Dao 2023, arXiv:2312.00752).

Official implementation: https://github.com/state-spaces/mamba (``mamba_ssm/modules/mamba_simple.py``). The
parameter names (``in_proj``, ``conv1d``, ``x_proj``, ``dt_proj``, ``A_log``, ``D``, ``out_proj``), shapes and
initialisation follow it, so state_dicts are interchangeable. SPECS.md §5 has the equations.

Backends (``backend``):

* ``seq``: the reference sequential scan (same maths as the official ``selective_scan_ref``), autograd through
  a Python loop over time.
* ``pscan``: a Blelloch (up-sweep / down-sweep) parallel scan in pure PyTorch with a hand-written backward (the
  gradient of a linear recurrence is the same recurrence run in reverse). Default: on this project's CPUs it is
  over 10x faster than ``seq`` for forward+backward (``bench/bench_mamba.py``, docs/benchmarks.md), because it
  does O(L) work in 2*log2(L) large tensor ops instead of 2*L small ones plus a per-step autograd graph.
* ``cuda``: ``mamba_ssm``'s ``selective_scan_fn`` (fused discretisation, scan, D-skip and SiLU(z) gate); only
  when importable and the input is on a GPU, otherwise a clear error.

Simplified/different: the residual block, RMSNorm and tied head come from the shared arena Backbone (with
``channel="none"``, as Mamba-1 has no MLP). The Backbone initialises ``out_proj`` like every other mixer
(N(0, 0.02/sqrt(2 n_layers))) because a mixer does not know the depth; the official model uses PyTorch's default
uniform init divided by sqrt(n_layers). Every other weight gets the official init in ``reset_parameters_arena``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from arena.api import ArchConfig, SizePreset, arch_spec


class MambaConfig(ArchConfig):
    d_state: int = Field(16, ge=1, description="SSM state size N per channel. Default: 16")
    d_conv: int = Field(4, ge=1, description="depthwise causal conv width K. Default: 4")
    expand: int = Field(2, ge=1, description="inner width D_in = expand * d_model. Default: 2")
    dt_rank: int | Literal["auto"] = Field("auto", description="rank R of the Δ projection; auto = ceil(D/16). Default: auto")
    dt_min: float = Field(1e-3, gt=0, description="smallest initial Δ. Default: 1e-3")
    dt_max: float = Field(0.1, gt=0, description="largest initial Δ. Default: 0.1")
    dt_init_floor: float = Field(1e-4, gt=0, description="floor of the initial Δ. Default: 1e-4")
    dt_scale: float = Field(1.0, gt=0, description="scale of the dt_proj weight init. Default: 1.0")
    conv_bias: bool = Field(True, description="bias in conv1d. Default: True")
    bias: bool = Field(False, description="biases in in_proj and out_proj. Default: False")
    backend: Literal["seq", "pscan", "cuda"] = Field("pscan", description="scan implementation. Default: pscan")
    eigen_range: Literal["positive", "signed"] = Field(
        "positive", description="range of the state transition exp(ΔA): positive = (0, 1) as Mamba-1; signed = "
        "(-1, 1) through 2 exp(ΔA) - 1 (Grazzi et al. 2025), which lets the state flip sign (parity). "
        "Default: positive")

    HASH_NEUTRAL: ClassVar[dict[str, Any]] = {"eigen_range": "positive"}

    @model_validator(mode="after")
    def _signed_needs_own_scan(self) -> MambaConfig:
        if self.eigen_range == "signed" and self.backend == "cuda":
            raise ValueError("eigen_range='signed' needs backend 'seq' or 'pscan' (mamba_ssm's fused kernel "
                             "computes exp(ΔA) itself)")
        return self


def dt_rank_of(d_model: int, cfg: MambaConfig) -> int:
    return math.ceil(d_model / 16) if cfg.dt_rank == "auto" else int(cfg.dt_rank)


# -- scans of h_t = a_t * h_{t-1} + b_t over dim 1 ----------------------------------------------------------------
def scan_seq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Reference: a Python loop over time. a, b: (B, L, ...) -> h: (B, L, ...), with h_{-1} = 0."""
    h = torch.zeros_like(b[:, 0])
    hs = []
    for t in range(b.shape[1]):
        h = a[:, t] * h + b[:, t]
        hs.append(h)
    return torch.stack(hs, 1)


def _blelloch_(a: torch.Tensor, b: torch.Tensor, reverse: bool) -> torch.Tensor:
    """In-place inclusive scan over dim 1 (length a power of two); returns ``b`` holding h.

    Forward: h_t = a_t h_{t-1} + b_t. Reverse: h_t = a_t h_{t+1} + b_t. Pairs combine as
    (a_l, b_l) then (a_r, b_r) -> (a_r a_l, a_r b_l + b_r). The up-sweep leaves at each block end the combination
    of its block; the down-sweep completes the prefixes. 2 log2(L) steps, O(L) work.
    """
    n = b.shape[1]
    rest = b.shape[2:]
    s = 1
    while s < n:  # up-sweep: block size 2s; "later" element absorbs the "earlier" one
        av, bv = a.view(a.shape[0], n // (2 * s), 2 * s, *rest), b.view(b.shape[0], n // (2 * s), 2 * s, *rest)
        e, lt = (s, 0) if reverse else (s - 1, 2 * s - 1)  # earlier, later positions within a block
        bv[:, :, lt].addcmul_(av[:, :, lt], bv[:, :, e])
        if 2 * s < n:  # the last level's products are never read
            av[:, :, lt].mul_(av[:, :, e])
        s *= 2
    s = n // 4
    while s >= 1:  # down-sweep: the middle of each block takes the completed prefix of the previous block
        av, bv = a.view(a.shape[0], n // (2 * s), 2 * s, *rest), b.view(b.shape[0], n // (2 * s), 2 * s, *rest)
        if reverse:
            bv[:, :-1, s].addcmul_(av[:, :-1, s], bv[:, 1:, 0])
        else:
            bv[:, 1:, s - 1].addcmul_(av[:, 1:, s - 1], bv[:, :-1, 2 * s - 1])
        s //= 2
    return b


def _pow2_chunks(n: int) -> list[tuple[int, int]]:
    """[start, end) chunks of 0..n whose lengths are the powers of two in n's binary expansion, largest first."""
    out, start = [], 0
    for bit in reversed(range(n.bit_length())):
        if n >> bit & 1:
            out.append((start, start + (1 << bit)))
            start += 1 << bit
    return out


def _scan_owned(a: torch.Tensor, b: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """Scan buffers this module owns (modified in place), without padding: the length is split into power-of-two
    chunks (73 = 64 + 8 + 1), each scanned in place after folding in the state the previous chunk ends with.
    Padding to the next power of two instead did up to 2x the work (73 -> 128 at recall-depth d = 4)."""
    n = b.shape[1]
    chunks = _pow2_chunks(n)
    if reverse:  # the same decomposition, read from the end: the largest chunk holds the last positions
        chunks = [(n - e, n - s) for s, e in chunks]
    prev = None
    for s, e in chunks:
        if prev is not None:  # carry in: forward h_s += a_s h_{s-1}; reverse h_{e-1} += a_{e-1} h_e
            t, src = (e - 1, prev) if reverse else (s, prev)
            b[:, t].addcmul_(a[:, t], b[:, src])
        _blelloch_(a[:, s:e], b[:, s:e], reverse)
        prev = s if reverse else e - 1
    return b


class _PScan(torch.autograd.Function):
    # fresh full-size CPU buffers are expensive (page faults on every large allocation), so each pass allocates
    # only what it must: no zero-filled temporaries, shifted copies written straight into their buffers
    @staticmethod
    def forward(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return _scan_owned(a.clone(), b.clone())

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor, torch.Tensor], output: torch.Tensor) -> None:
        ctx.save_for_backward(inputs[0], output)

    @staticmethod
    def vmap(info: Any, in_dims: tuple[int | None, int | None], a: torch.Tensor,
             b: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Several stacked models (arena.batched): their batches are folded into one scan."""
        a = a.movedim(in_dims[0], 0) if in_dims[0] is not None else a.expand(info.batch_size, *a.shape)
        b = b.movedim(in_dims[1], 0) if in_dims[1] is not None else b.expand(info.batch_size, *b.shape)
        k, n = a.shape[0], a.shape[1]
        h = _PScan.apply(a.reshape(k * n, *a.shape[2:]), b.reshape(k * n, *b.shape[2:]))
        return h.view(k, n, *h.shape[1:]), 0

    @staticmethod
    def backward(ctx: Any, grad_h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, h = ctx.saved_tensors
        # dL/db_t = g_t = grad_h_t + a_{t+1} g_{t+1} (the recurrence in reverse); dL/da_t = g_t h_{t-1}
        a_next = torch.empty_like(a)
        a_next[:, :-1] = a[:, 1:]
        a_next[:, -1] = 0
        g = _scan_owned(a_next, grad_h.clone(), reverse=True)
        grad_a = torch.empty_like(a)
        grad_a[:, 0] = 0
        torch.mul(g[:, 1:], h[:, :-1], out=grad_a[:, 1:])
        return grad_a, g


def scan_parallel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Blelloch parallel scan with autograd. a, b: (B, L, ...) -> h: (B, L, ...), with h_{-1} = 0."""
    return _PScan.apply(a, b)


SCANS = {"seq": scan_seq, "pscan": scan_parallel}


def transition(dt: torch.Tensor, A: torch.Tensor, signed: bool) -> torch.Tensor:
    """Ā = exp(Δ A) in (0, 1), or 2 exp(Δ A) - 1 in (-1, 1) when ``signed`` (dt (..., D_in), A (D_in, N))."""
    dA = torch.exp(dt.unsqueeze(-1) * A)
    return dA * 2 - 1 if signed else dA


def selective_scan(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, Bm: torch.Tensor, Cm: torch.Tensor,
                   D: torch.Tensor, backend: str = "pscan", signed: bool = False) -> torch.Tensor:
    """y_t = C_t . h_t + D x_t with h_t = Ā_t h_{t-1} + Δ_t B_t x_t, Ā_t = exp(Δ_t A) (Euler B̄, as the official
    code) or, ``signed``, 2 exp(Δ_t A) - 1.

    x, dt: (B, L, D_in) with dt already softplus'ed; A: (D_in, N); Bm, Cm: (B, L, N); D: (D_in) -> y (B, L, D_in).
    """
    dA = transition(dt, A, signed)  # (B, L, D_in, N)
    dBx = (dt * x).unsqueeze(-1) * Bm.unsqueeze(2)  # (B, L, D_in, N)
    hs = SCANS[backend](dA, dBx)  # (B, L, D_in, N)
    y = (hs @ Cm.unsqueeze(-1)).squeeze(-1)  # (B, L, D_in); a batched matvec (a FLOP counter sees it)
    return y + x * D


def _require_cuda(x: torch.Tensor) -> None:
    if not x.is_cuda:
        from arena.errors import ArenaError

        raise ArenaError("mamba backend 'cuda' needs the model on a CUDA device; use backend='pscan' on CPU")


class MambaMixer(nn.Module):
    """(B, T, D) -> (B, T, D): in_proj -> causal depthwise conv + SiLU -> selective SSM -> gate SiLU(z) -> out_proj."""

    def __init__(self, d_model: int, layer_idx: int, cfg: MambaConfig):
        super().__init__()
        self.cfg, self.layer_idx = cfg, layer_idx
        self.d_model, self.d_inner, self.d_state, self.d_conv = d_model, cfg.expand * d_model, cfg.d_state, cfg.d_conv
        self.dt_rank = dt_rank_of(d_model, cfg)
        di, n = self.d_inner, self.d_state
        self.in_proj = nn.Linear(d_model, 2 * di, bias=cfg.bias)
        self.conv1d = nn.Conv1d(di, di, cfg.d_conv, groups=di, padding=cfg.d_conv - 1, bias=cfg.conv_bias)
        self.x_proj = nn.Linear(di, self.dt_rank + 2 * n, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, di, bias=True)
        self.A_log = nn.Parameter(torch.empty(di, n))
        self.D = nn.Parameter(torch.empty(di))
        self.A_log._no_weight_decay = True  # read by optimisers that build parameter groups
        self.D._no_weight_decay = True
        self.out_proj = nn.Linear(di, d_model, bias=cfg.bias)
        self.reset_parameters_arena()
        if cfg.backend == "cuda":
            from arena.kernels import load_selective_scan

            load_selective_scan()  # fail at build time with the reason, not mid-run

    def reset_parameters_arena(self) -> None:
        """The official init of everything but out_proj (called by the Backbone after its generic init)."""
        cfg = self.cfg
        self.in_proj.reset_parameters()  # official: PyTorch's default Linear/Conv init, biases zero
        self.x_proj.reset_parameters()
        self.conv1d.reset_parameters()
        if self.in_proj.bias is not None:
            nn.init.zeros_(self.in_proj.bias)
        with torch.no_grad():
            std = self.dt_rank**-0.5 * cfg.dt_scale
            nn.init.uniform_(self.dt_proj.weight, -std, std)
            dt = torch.exp(torch.rand(self.d_inner, device=self.D.device) * (math.log(cfg.dt_max) - math.log(cfg.dt_min))
                           + math.log(cfg.dt_min)).clamp(min=cfg.dt_init_floor)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
            a = torch.arange(1, self.d_state + 1, dtype=torch.float32, device=self.A_log.device)
            self.A_log.copy_(torch.log(a).expand(self.d_inner, -1))  # S4D-real: A = -(1..N)
            self.D.fill_(1.0)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        L = u.shape[1]
        x, z = self.in_proj(u).chunk(2, dim=-1)  # (B, L, D_in) each
        x = F.silu(self.conv1d(x.transpose(1, 2))[..., :L]).transpose(1, 2)  # (B, L, D_in), causal
        dt_low, Bm, Cm = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        A = -torch.exp(self.A_log.float())  # (D_in, N)
        if self.cfg.backend == "cuda":
            y = self._cuda_scan(x, z, dt_low, A, Bm, Cm)
        else:
            dt = F.softplus(self.dt_proj(dt_low))  # (B, L, D_in)
            y = selective_scan(x, dt, A, Bm, Cm, self.D, self.cfg.backend, self.cfg.eigen_range == "signed")
            y = y * F.silu(z)
        return self.out_proj(y)  # (B, L, D)

    def _cuda_scan(self, x: torch.Tensor, z: torch.Tensor, dt_low: torch.Tensor, A: torch.Tensor,
                   Bm: torch.Tensor, Cm: torch.Tensor) -> torch.Tensor:
        from arena.kernels import load_selective_scan

        _require_cuda(x)
        scan = load_selective_scan()
        dt = dt_low @ self.dt_proj.weight.T  # (B, L, D_in); bias and softplus are fused into the kernel
        y = scan(x.transpose(1, 2).contiguous(), dt.transpose(1, 2).contiguous(), A,
                 Bm.transpose(1, 2).contiguous(), Cm.transpose(1, 2).contiguous(), self.D.float(),
                 z=z.transpose(1, 2).contiguous(), delta_bias=self.dt_proj.bias.float(), delta_softplus=True)
        return y.transpose(1, 2)  # (B, L, D_in), already gated by SiLU(z)

    # -- O(1) decoding -------------------------------------------------------------------------------------------
    def init_state(self, batch: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """(conv state (B, D_in, K), SSM state (B, D_in, N)), as the official ``allocate_inference_cache``."""
        return (torch.zeros(batch, self.d_inner, self.d_conv, device=device),
                torch.zeros(batch, self.d_inner, self.d_state, device=device))

    def step(self, u: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, Any]:
        conv_state, h = state
        x, z = self.in_proj(u).chunk(2, dim=-1)  # (B, D_in)
        conv_state = torch.cat([conv_state[:, :, 1:], x.unsqueeze(-1)], dim=-1)  # (B, D_in, K)
        x = (conv_state * self.conv1d.weight.squeeze(1)).sum(-1)
        if self.conv1d.bias is not None:
            x = x + self.conv1d.bias
        x = F.silu(x)
        dt_low, Bm, Cm = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(self.dt_proj(dt_low))  # (B, D_in)
        A = -torch.exp(self.A_log.float())
        h = transition(dt, A, self.cfg.eigen_range == "signed") * h + (dt * x).unsqueeze(-1) * Bm.unsqueeze(1)
        y = (h * Cm.unsqueeze(1)).sum(-1) + self.D * x
        return self.out_proj(y * F.silu(z)), (conv_state, h)


# -- analytic accounting (per layer; the Backbone adds one RMSNorm of D per layer, embeddings and the final norm) --
def mamba_params(d_model: int, cfg: MambaConfig) -> int:
    """P_block - D of SPECS.md §5 (P_block counts the block's norm, which the Backbone owns here)."""
    d, di, n, k, r = d_model, cfg.expand * d_model, cfg.d_state, cfg.d_conv, dt_rank_of(d_model, cfg)
    p = 3 * d * di + di * (k + 2 * r + 3 * n + 2)  # in/out proj, conv w, x_proj, dt_proj w+b, A_log, D
    p += di if cfg.conv_bias else 0
    p += (2 * di + d) if cfg.bias else 0
    return p


def mamba_flops(d_model: int, cfg: MambaConfig, seq_len: int) -> dict[str, float]:
    """Forward FLOPs per token per layer (SPECS.md §6).

    matmul: the four projections, the depthwise conv and the C_t.h_t readout (all computed by matmul/conv ops, so a
    FLOP counter sees them); scan: exp(ΔA) (2), Δ.B.x (2), the state update (2) and ~1 for the discretisation
    bookkeeping per (channel, state), i.e. the SPECS's ~9 D_in N with the readout's 2 counted under matmul;
    elementwise: softplus, SiLUs, gate and D-skip, ~10 D_in. ``eigen_range='signed'`` adds 2 per (channel, state)
    to the scan (the 2x - 1 of Ā).
    """
    d, di, n, k, r = d_model, cfg.expand * d_model, cfg.d_state, cfg.d_conv, dt_rank_of(d_model, cfg)
    matmul = 2.0 * (3 * d * di + di * (2 * r + 2 * n)) + 2.0 * di * k + 2.0 * di * n
    scan = (9.0 if cfg.eigen_range == "signed" else 7.0) * di * n
    return {"matmul": matmul, "scan": scan, "elementwise": 10.0 * di}


def mamba_state(d_model: int, cfg: MambaConfig, seq_len: int) -> int:
    """D_in (N + K - 1): the SSM state plus the last K-1 conv inputs (the official cache keeps K, one is stale)."""
    di = cfg.expand * d_model
    return di * (cfg.d_state + cfg.d_conv - 1)


@arch_spec("mamba", kind="mixer", config=MambaConfig, params=mamba_params, flops=mamba_flops, state_size=mamba_state,
           family="ssm", version=1, supports_step=True, channel="none",
           description="Mamba-1 selective SSM (official names and init; seq/pscan/cuda scans)",
           reference="https://arxiv.org/abs/2312.00752",
           presets={"tiny": SizePreset(32, 2), "small": SizePreset(128, 4), "base": SizePreset(256, 8)})
def build(d_model: int, layer_idx: int, cfg: MambaConfig) -> nn.Module:
    return MambaMixer(d_model, layer_idx, cfg)


SPEC = build
