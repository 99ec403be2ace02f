"""Causal multi-head self-attention mixer (Vaswani et al. 2017, arXiv:1706.03762) for the shared pre-norm backbone.

Reference implementations: nanoGPT (karpathy/nanoGPT ``model.py``) for the layout; RoPE from Su et al. 2021
(arXiv:2104.09864, rotate-half form as in GPT-NeoX/LLaMA); ALiBi from Press et al. 2022 (arXiv:2108.12409,
ofirpress/attention_with_linear_biases, geometric head slopes). Placed in :class:`arena.blocks.Backbone`, so
embeddings, RMSNorms, the GELU MLP and the tied head are shared with every other mixer.

Layout per layer: ``qkv = Linear(D, 3D)``, ``out_proj = Linear(D, D)``, no biases by default (``bias=True`` adds
them). Per-layer mixer params: 4 D^2 (+ 4 D with biases). Whole model with the backbone's MLP (biases) and RMSNorms
(no bias) and tied embeddings: ``12 L D^2 + 7 L D + V D + D`` (SPECS' ``13 L D`` assumes biased attention and
LayerNorms with a bias; ``bias=True`` gives ``11 L D``).

Attention: ``attn_impl="sdpa"`` uses ``F.scaled_dot_product_attention``; on CUDA with fp16/bf16 inputs and the
``flash_attn`` package importable it calls ``flash_attn_func`` instead (guarded import, never required).
``attn_impl="math"`` computes softmax(QK^T/sqrt(d_h) + bias) V with explicit matmuls, so
``torch.utils.flop_counter.FlopCounterMode`` sees it, and records attention statistics for ``extra_metrics()``.

Analytic forward FLOPs per token per layer (FLOPs = 2 x multiply-adds), ``seq_len`` = T:
* ``matmul``: 2 * 4 D^2 (q, k, v and output projections);
* ``attention``: QK^T and AV cost 2 D each per visible key; averaged over the positions of one causal sequence
  of length T the mean number of keys is (T+1)/2, so ``4 D (T+1)/2`` (Kaplan et al. 2020's ``2 n_ctx d``).
  Dense kernels (SDPA math, the ``math`` path) compute the full T x T square, i.e. ``4 D T`` per token; the
  analytic number counts the useful causal half only;
* ``elementwise``: softmax (~5 per score), the position scheme (RoPE ~3 per q/k element, ALiBi 1 per score).
State (KV cache) after T tokens: 2 T D floats per layer.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from arena.api import ArchConfig, AttentionCapture, HeadCost, SizePreset, arch_spec, even_head_width

try:  # optional CUDA fast path; never needed on CPU
    from flash_attn import flash_attn_func  # type: ignore[import-not-found]
except Exception:  # pragma: no cover - depends on the install
    flash_attn_func = None
HAS_FLASH_ATTN = flash_attn_func is not None  # for ``arena doctor``: used only on CUDA with fp16/bf16 inputs

SOFTMAX_FLOPS = 5.0  # max-subtract, exp, sum, divide, scale: per attention score


class TransformerConfig(ArchConfig):
    n_heads: int = Field(4, ge=1, description="attention heads; must divide d_model. Default: 4")
    pos: Literal["rope", "alibi", "none"] = Field("rope", description="position scheme. Default: rope")
    rope_base: float = Field(10000.0, gt=0, description="RoPE frequency base. Default: 10000")
    dropout: float = Field(0.0, ge=0, lt=1, description="attention-probability dropout (training only). Default: 0")
    bias: bool = Field(False, description="biases on the qkv and output projections. Default: False")
    attn_impl: Literal["sdpa", "math"] = Field(
        "sdpa", description="sdpa = F.scaled_dot_product_attention (flash-attn on CUDA when installed); math = "
                            "explicit matmuls (visible to FlopCounterMode, logs attention entropy). Default: sdpa")


# -- position schemes -----------------------------------------------------------------------------------------------
def alibi_slopes(n_heads: int) -> torch.Tensor:
    """ALiBi head slopes: 2^(-8 i / n) for a power-of-two n, interleaved from the next power of two otherwise."""

    def pow2(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    if math.log2(n_heads).is_integer():
        s = pow2(n_heads)
    else:
        closest = 2 ** math.floor(math.log2(n_heads))
        s = pow2(closest) + pow2(2 * closest)[0::2][: n_heads - closest]
    return torch.tensor(s, dtype=torch.float32)


def rope_cos_sin(positions: torch.Tensor, d_head: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables (T, d_head) for the rotate-half RoPE form."""
    inv = 1.0 / (base ** (torch.arange(0, d_head, 2, device=positions.device, dtype=torch.float32) / d_head))
    ang = positions.to(torch.float32)[:, None] * inv[None, :]  # (T, d_head/2)
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos(), ang.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, H, T, d_head) rotated by position; cos/sin (T, d_head)."""
    x1, x2 = x.chunk(2, dim=-1)
    rot = torch.cat([-x2, x1], dim=-1)
    return x * cos.to(x.dtype) + rot * sin.to(x.dtype)


def causal_bias(t_q: torch.Tensor, t_k: torch.Tensor, slopes: torch.Tensor | None) -> torch.Tensor:
    """Additive bias (H or 1, Tq, Tk): -inf where the key is in the future, -m_h (t_q - t_k) for ALiBi."""
    dist = t_q[:, None].float() - t_k[None, :].float()  # (Tq, Tk)
    mask = torch.where(dist < 0, float("-inf"), 0.0)
    if slopes is None:
        return mask[None]
    return mask[None] - slopes[:, None, None] * dist.clamp(min=0)[None]


# -- the mixer ------------------------------------------------------------------------------------------------------
class CausalSelfAttention(nn.Module):
    """(B, T, D) -> (B, T, D) causal multi-head attention with a KV-cache ``step()``."""

    def __init__(self, d_model: int, layer_idx: int, cfg: TransformerConfig):
        super().__init__()
        if d_model % cfg.n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={cfg.n_heads}")
        self.d_model, self.n_heads, self.d_head = d_model, cfg.n_heads, d_model // cfg.n_heads
        if cfg.pos == "rope" and self.d_head % 2:
            raise ValueError(f"RoPE needs an even head size, got {self.d_head}")
        self.layer_idx, self.cfg = layer_idx, cfg
        self.inner = self.n_heads * self.d_head  # = d_model until heads are pruned
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=cfg.bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=cfg.bias)
        self.register_buffer("slopes", alibi_slopes(cfg.n_heads) if cfg.pos == "alibi" else None, persistent=False)
        self._stats: dict[str, float] = {}

    # q, k, v as (B, H, T, d_head) with positions applied
    def _qkv(self, x: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)  # (B, H, T, dh) each
        if self.cfg.pos == "rope":
            cos, sin = rope_cos_sin(pos, self.d_head, self.cfg.rope_base)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        return q, k, v

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, t_q: torch.Tensor,
                t_k: torch.Tensor) -> torch.Tensor:
        p = self.cfg.dropout if self.training else 0.0
        square = q.shape[2] == k.shape[2]
        if self.cfg.attn_impl == "math":
            return self._math(q, k, v, t_q, t_k, p)
        if (flash_attn_func is not None and q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) and square):
            slopes = self.slopes.to(q.device) if self.slopes is not None else None
            o = flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), dropout_p=p, causal=True,
                                alibi_slopes=slopes)
            return o.transpose(1, 2)
        if self.slopes is None and square:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        bias = causal_bias(t_q, t_k, self.slopes).to(q.dtype)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)

    def _math(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, t_q: torch.Tensor, t_k: torch.Tensor,
              p: float) -> torch.Tensor:
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.d_head))
        scores = scores + causal_bias(t_q, t_k, self.slopes).to(scores.dtype)
        a = scores.softmax(dim=-1)
        with torch.no_grad():  # attention statistics for extra_metrics() (SPECS §5 asks them of the transformer too)
            n_vis = (t_q[:, None] >= t_k[None, :]).sum(-1).float()  # (Tq,)
            ent = -(a * a.clamp_min(1e-30).log()).sum(-1)  # (B, H, Tq)
            keep = n_vis > 1
            if keep.any():
                self._stats = {"attn_entropy_norm": float((ent[..., keep] / n_vis[keep].log()).mean()),
                               "attn_max_logit": float(scores.amax())}
        if p:
            a = F.dropout(a, p)
        return torch.matmul(a, v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        if not self.n_heads:  # every head pruned: only the output bias is left
            return self.out_proj(x.new_zeros(b, t, 0))
        pos = torch.arange(t, device=x.device)
        q, k, v = self._qkv(x, pos)
        o = self._attend(q, k, v, pos, pos)  # (B, H, T, d_head)
        return self.out_proj(o.transpose(1, 2).reshape(b, t, self.inner))

    # -- optional capabilities: attention capture and head pruning (arena.api) ------------------------------------
    @torch.no_grad()
    def capture_attention(self, x: torch.Tensor) -> AttentionCapture:
        """Recompute this layer on x (B, T, D) with the explicit kernel: probabilities, per-head outputs, and the
        outputs uniform attention would give. The training path (SDPA) is not touched."""
        b, t, _ = x.shape
        pos = torch.arange(t, device=x.device)
        q, k, v = self._qkv(x, pos)
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.d_head))
        scores = scores + causal_bias(pos, pos, self.slopes).to(scores.dtype)
        probs = scores.softmax(dim=-1)  # (B, H, T, T)
        visible = pos[:, None] >= pos[None, :]
        uniform = v.cumsum(2) / (pos + 1).to(v.dtype)[:, None]  # causal mean of the values
        return AttentionCapture(probs=probs, head_outputs=torch.matmul(probs, v), out_proj=self.out_proj,
                                visible=visible, offsets=(pos[:, None] - pos[None, :]).float(),
                                uniform_outputs=uniform)

    @torch.no_grad()
    def prune_heads(self, keep: list[int]) -> None:
        """Keep only the heads in ``keep``: q/k/v rows and out_proj columns of the others are removed."""
        keep = sorted(set(int(h) for h in keep))
        if any(h < 0 or h >= self.n_heads for h in keep):
            raise ValueError(f"head indices {keep} out of range for {self.n_heads} heads")
        dh = self.d_head
        cols = torch.tensor([h * dh + j for h in keep for j in range(dh)], dtype=torch.long)
        rows = torch.cat([cols + part * self.inner for part in range(3)])
        w = {"device": self.qkv.weight.device, "dtype": self.qkv.weight.dtype}  # weights are copied in: no init
        qkv = nn.utils.skip_init(nn.Linear, self.d_model, 3 * len(cols), bias=self.cfg.bias, **w)
        qkv.weight.copy_(self.qkv.weight[rows])
        out = nn.utils.skip_init(nn.Linear, len(cols), self.d_model, bias=self.cfg.bias, **w)
        out.weight.copy_(self.out_proj.weight[:, cols])
        if self.cfg.bias:
            qkv.bias.copy_(self.qkv.bias[rows])
            out.bias.copy_(self.out_proj.bias)
        self.qkv, self.out_proj = qkv, out
        if self.slopes is not None:
            self.slopes = self.slopes[torch.tensor(keep, dtype=torch.long)]
        self.n_heads, self.inner = len(keep), len(cols)

    def forward_stacked(self, x: torch.Tensor) -> torch.Tensor:
        """forward() when arena.batched trains several models as one stack: one attention call for all of them
        (vmap has no batching rule for CPU SDPA and would loop over the models)."""
        from arena.batched import fold_models

        if self.slopes is not None or self.cfg.attn_impl != "sdpa" or self.cfg.dropout:
            return self.forward(x)
        b, t, d = x.shape
        q, k, v = self._qkv(x, torch.arange(t, device=x.device))
        o = fold_models(_causal_sdpa, q, k, v)  # (B, H, T, d_head)
        return self.out_proj(o.transpose(1, 2).reshape(b, t, d))

    # -- KV-cache decoding ------------------------------------------------------------------------------------------
    def init_state(self, batch: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.zeros(batch, self.n_heads, 0, self.d_head, device=device)
        return z, z.clone()

    def step(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, Any]:
        k_cache, v_cache = state
        if not self.n_heads:
            return self.out_proj(x.new_zeros(x.shape[0], 0)), state
        t = k_cache.shape[2]
        pos = torch.tensor([t], device=x.device)
        q, k, v = self._qkv(x.unsqueeze(1), pos)
        k_cache, v_cache = torch.cat([k_cache, k], 2), torch.cat([v_cache, v], 2)
        o = self._attend(q, k_cache, v_cache, pos, torch.arange(t + 1, device=x.device))
        return self.out_proj(o.reshape(x.shape[0], self.inner)), (k_cache, v_cache)

    def extra_metrics(self) -> dict[str, float]:
        """Attention statistics of the last ``math``-path forward, keyed ``l{layer}/...`` (empty under sdpa)."""
        return {f"l{self.layer_idx}/{k}": v for k, v in self._stats.items()}


def _causal_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


# -- analytic accounting --------------------------------------------------------------------------------------------
def attention_params(d_model: int, cfg: TransformerConfig) -> int:
    return 4 * d_model * d_model + (4 * d_model if cfg.bias else 0)


def attention_flops(d_model: int, cfg: TransformerConfig, seq_len: int) -> dict[str, float]:
    """Forward FLOPs per token of one attention layer, averaged over the positions of a length-seq_len sequence."""
    t = max(1, int(seq_len))
    mean_keys = (t + 1) / 2.0
    elem = SOFTMAX_FLOPS * cfg.n_heads * mean_keys + (4 * d_model if cfg.bias else 0)
    if cfg.pos == "rope":
        elem += 3.0 * 2 * d_model
    elif cfg.pos == "alibi":
        elem += cfg.n_heads * mean_keys
    return {"matmul": 8.0 * d_model * d_model, "attention": 4.0 * d_model * mean_keys, "elementwise": elem}


def attention_state(d_model: int, cfg: TransformerConfig, seq_len: int) -> int:
    return 2 * int(seq_len) * d_model


def head_params(d_model: int, cfg: TransformerConfig) -> int:
    """One head: its q/k/v rows and out_proj columns (and q/k/v biases); the out_proj bias is shared."""
    d_head = d_model // cfg.n_heads
    return 4 * d_model * d_head + (3 * d_head if cfg.bias else 0)


def head_flops(d_model: int, cfg: TransformerConfig, seq_len: int) -> dict[str, float]:
    """One head's share of :func:`attention_flops` (everything but the shared out_proj bias add)."""
    d_head, mean_keys = d_model // cfg.n_heads, (max(1, int(seq_len)) + 1) / 2.0
    elem = SOFTMAX_FLOPS * mean_keys + (3 * d_head if cfg.bias else 0)
    if cfg.pos == "rope":
        elem += 3.0 * 2 * d_head
    elif cfg.pos == "alibi":
        elem += mean_keys
    return {"matmul": 8.0 * d_model * d_head, "attention": 4.0 * d_head * mean_keys, "elementwise": elem}


HEAD_COST = HeadCost(params=head_params, flops=head_flops)


PRESETS = {"tiny": SizePreset(32, 1), "small": SizePreset(128, 2), "base": SizePreset(256, 4)}


@arch_spec("transformer", kind="mixer", config=TransformerConfig, params=attention_params, flops=attention_flops,
           state_size=attention_state, family="attention", version=1, supports_step=True, presets=PRESETS,
           captures_attention=True, heads=HEAD_COST, width_multiple=even_head_width,
           description="pre-norm decoder: causal multi-head attention (SDPA; RoPE/ALiBi/none) + GELU MLP",
           reference="https://arxiv.org/abs/1706.03762")
def build(d_model: int, layer_idx: int, cfg: TransformerConfig) -> nn.Module:
    return CausalSelfAttention(d_model, layer_idx, cfg)


SPEC = build
