"""Compressive Transformer attention (Rae et al. 2019, arXiv:1911.05507, ICLR 2020) as a backbone mixer.

Official code: none released for the model (DeepMind released the PG-19 data only); conventions follow the paper
and SPECS.md §5. Per layer, one forward over (B, T, D) is processed segment by segment (``seg_len`` = n_s) while
carrying a FIFO memory M (``mem_len`` = n_m rows) and a compressed memory CM (``cmem_len`` = n_cm rows):

* queries come from the current segment H; keys/values from [sg(CM); sg(M); H] with the layer's own projections,
  causal inside H, every memory slot visible. Memories hold the layer's (normalised) input, detached.
* after each full segment: M <- [M; sg(H)]; the rows beyond n_m are evicted (E, oldest first) and compressed by
  f_c = Conv1d(kernel = stride = ``rate`` c) into len(E)/c rows appended to CM (oldest dropped beyond n_cm).
* attention-reconstruction loss (training only): mean_q ||Attn(H, E) - Attn(H, f_c(E))||^2 with the layer's q/k/v
  projections **detached** and H detached, content only (no position bias), so it trains f_c only; the LM loss
  never reaches f_c (CM is detached). Averaged over the evictions of one forward, exposed as ``aux_loss``.
* positions: ALiBi on timestamps (SPECS §5): every memory slot keeps the time of its token, a compressed slot the
  mean time of its c sources, and the bias is -m_h max(0, t_q - tau_k) with ALiBi head slopes.
  With T <= n_s (no memory yet) the layer is exactly the transformer's ALiBi attention (tested).
* optional regulariser ``reg`` with weight ``reg_lambda`` (0 = the control), added as **+lambda R** to ``aux_loss``:
  ``entropy``: R = mean normalised entropy H/log n; lambda > 0 sharpens attention (lowers entropy).
  ``kl_uniform``: R = mean KL(a || uniform) = log n - H; lambda > 0 *raises* entropy (the VIB bound with a uniform
  prior). ``kl_recency``: R = mean KL(a || r), r(j) ∝ exp(-(t_q - tau_j)/reg_tau); lambda > 0 pulls towards local
  attention. The value is logged as ``reg_<name>`` next to ``reg_lambda``.

Simplified vs the paper: memories start empty at every forward call (no recurrence across batches: arena examples
are independent sequences); ALiBi timestamps instead of Transformer-XL relative encodings; no attention dropout;
f_c starts as mean pooling (W_j = I/c, b = 0) rather than a random conv.

Params per layer: 4 D^2 (q, k, v, out; no biases) + c D^2 + D (the conv). Forward FLOPs per token (inference,
averaged over the positions of a length-T sequence with the exact segment/memory schedule): matmul 8 D^2 + conv
2 D^2 per evicted row + K/V of new compressed rows (4 D^2 per row); attention 4 D per visible key (causal inside
the segment, all memory slots), i.e. 4 D (n_s/2 + n_m + n_cm) in steady state. Training adds L_ar (about
4 D n_s (1 + 1/c) per token) and the K/V of memory rows recomputed from sg(H) (4 D^2 per token), not counted.
State: the K/V of every visible key, 2 D (len M + len CM + partial segment) per layer = 2 (n_m + n_cm) D in steady
state; ``step()`` also keeps the n_m hidden rows of M (for later compression), not counted, as in SPECS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from arena.api import ArchConfig, AttentionCapture, HeadCost, SizePreset, arch_spec, even_head_width
from arena.architectures.transformer import SOFTMAX_FLOPS, alibi_slopes, causal_bias

Reg = Literal["none", "entropy", "kl_uniform", "kl_recency"]


class CompressiveConfig(ArchConfig):
    n_heads: int = Field(4, ge=1, description="attention heads; must divide d_model. Default: 4")
    seg_len: int = Field(128, ge=1, description="segment length n_s. Default: 128")
    mem_len: int = Field(128, ge=0, description="FIFO memory rows n_m. Default: 128")
    cmem_len: int = Field(64, ge=0, description="compressed memory rows n_cm. Default: 64")
    rate: int = Field(4, ge=1, description="compression rate c (conv kernel = stride = c). Default: 4")
    pos: Literal["alibi", "none"] = Field("alibi", description="ALiBi bias on timestamps, or none. Default: alibi")
    ar_loss: bool = Field(True, description="train f_c with the attention-reconstruction loss. Default: True")
    reg: Reg = Field("none", description="attention regulariser added as +reg_lambda*R. Default: none")
    reg_lambda: float = Field(0.0, description="regulariser weight lambda (0 = control). Default: 0")
    reg_tau: float = Field(16.0, gt=0, description="recency-prior temperature for kl_recency. Default: 16")

    @model_validator(mode="after")
    def _check(self) -> CompressiveConfig:
        if self.seg_len % self.rate or self.mem_len % self.rate:
            raise ValueError(f"seg_len ({self.seg_len}) and mem_len ({self.mem_len}) must be multiples of "
                             f"rate ({self.rate})")
        return self


@dataclass
class Memory:
    """Per-layer memories (batch-major). ``h_m`` are the detached inputs kept in M (for compression)."""

    h_m: torch.Tensor  # (B, Lm, D)
    k_m: torch.Tensor  # (B, H, Lm, dh)
    v_m: torch.Tensor
    t_m: torch.Tensor  # (Lm,) timestamps
    k_c: torch.Tensor  # (B, H, Lc, dh)
    v_c: torch.Tensor
    t_c: torch.Tensor  # (Lc,) mean timestamps of the sources
    # the current, not yet complete segment (step() only)
    h_s: torch.Tensor  # (B, Ls, D)
    k_s: torch.Tensor
    v_s: torch.Tensor
    pos: int = 0  # time of the next token (step() only)


class CompressiveAttention(nn.Module):
    def __init__(self, d_model: int, layer_idx: int, cfg: CompressiveConfig):
        super().__init__()
        if d_model % cfg.n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={cfg.n_heads}")
        self.d_model, self.n_heads, self.d_head = d_model, cfg.n_heads, d_model // cfg.n_heads
        self.layer_idx, self.cfg = layer_idx, cfg
        self.inner = self.n_heads * self.d_head  # = d_model until heads are pruned
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)
        self.compress = nn.Conv1d(d_model, d_model, kernel_size=cfg.rate, stride=cfg.rate)
        self.register_buffer("slopes", alibi_slopes(cfg.n_heads) if cfg.pos == "alibi" else None, persistent=False)
        self.aux_loss: torch.Tensor | None = None
        self._stats: dict[str, float] = {}
        self.reset_parameters_arena()

    def reset_parameters_arena(self) -> None:
        with torch.no_grad():  # start f_c as mean pooling over each group of c rows
            self.compress.weight.copy_(torch.eye(self.d_model)[:, :, None].expand(-1, -1, self.cfg.rate)
                                       / self.cfg.rate)
            self.compress.bias.zero_()

    # -- helpers ------------------------------------------------------------------------------------------------------
    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, H, T, dh)
        return x.view(x.shape[0], x.shape[1], self.n_heads, self.d_head).transpose(1, 2)

    def _kv(self, x: torch.Tensor, detach_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.qkv.weight[self.inner:]
        w = w.detach() if detach_weights else w
        k, v = F.linear(x, w).chunk(2, dim=-1)
        return self._heads(k), self._heads(v)

    def empty_memory(self, batch: int, device: torch.device | str, dtype: torch.dtype = torch.float32) -> Memory:
        h = torch.zeros(batch, 0, self.d_model, device=device, dtype=dtype)
        k = torch.zeros(batch, self.n_heads, 0, self.d_head, device=device, dtype=dtype)
        t = torch.zeros(0, device=device)
        return Memory(h, k, k.clone(), t, k.clone(), k.clone(), t.clone(), h.clone(), k.clone(), k.clone())

    # -- one attention pass: queries h (B, l, D) at times t_q, keys [CM; M; current] ---------------------------------
    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, t_q: torch.Tensor, seg_start: int,
                mem: Memory, acc: dict[str, torch.Tensor]) -> torch.Tensor:
        """Queries q at times t_q; keys [CM; M; current segment k (times seg_start, seg_start + 1, ...)]."""
        lc, lm = mem.k_c.shape[2], mem.k_m.shape[2]
        kk, vv = torch.cat([mem.k_c, mem.k_m, k], 2), torch.cat([mem.v_c, mem.v_m, v], 2)
        t_cur = torch.arange(seg_start, seg_start + k.shape[2], device=q.device, dtype=mem.t_m.dtype)
        t_q = t_q.to(mem.t_m.dtype)
        t_k = torch.cat([mem.t_c, mem.t_m, t_cur])
        scores = torch.matmul(q, kk.transpose(-2, -1)) * (1.0 / math.sqrt(self.d_head))
        scores = scores + causal_bias(t_q, t_k, self.slopes).to(scores.dtype)
        a = scores.softmax(-1)  # (B, H, l, Lk)
        n_vis = (t_q[:, None] >= t_k[None, :]).sum(-1).to(a.dtype)  # (l,) visible keys per query
        need_grad = self.cfg.reg != "none" and self.cfg.reg_lambda != 0 and torch.is_grad_enabled()
        with torch.set_grad_enabled(need_grad):
            ent = -(a * a.clamp_min(1e-30).log()).sum(-1)  # (B, H, l)
            log_n = n_vis.log()
            if self.cfg.reg == "entropy":
                r = torch.where(n_vis > 1, ent / log_n.clamp_min(1e-30), torch.zeros_like(ent))
            elif self.cfg.reg == "kl_uniform":
                r = log_n - ent
            elif self.cfg.reg == "kl_recency":
                dist = (t_q[:, None] - t_k[None, :]).to(a.dtype)
                logits = torch.where(dist >= 0, -dist / self.cfg.reg_tau, float("-inf"))
                log_r = logits - torch.logsumexp(logits, -1, keepdim=True)
                r = (a * (a.clamp_min(1e-30).log() - log_r.clamp_min(-1e30))).sum(-1)
            else:
                r = ent.new_zeros(())
        if need_grad:
            acc["reg_sum"] = acc.get("reg_sum", 0.0) + r.sum()
        with torch.no_grad():
            keep = n_vis > 1
            dist = (t_q[:, None] - t_k[None, :]).clamp(min=0).to(a.dtype)
            upd = {"n": float(a.shape[0] * a.shape[1] * a.shape[2]),
                   "n_ent": float(a.shape[0] * a.shape[1] * keep.sum()),
                   "ent_norm": (ent[..., keep] / log_n[keep]).sum(), "eff_support": ent.exp().sum(),
                   "max_prob": a.amax(-1).sum(), "mass_c": a[..., :lc].sum(), "mass_m": a[..., lc:lc + lm].sum(),
                   "mass_s": a[..., lc + lm:].sum(), "distance": (a * dist).sum(), "reg": r.detach().sum()}
            for key, val in upd.items():
                acc[key] = acc.get(key, 0.0) + val
            acc["max_logit"] = torch.maximum(torch.as_tensor(acc.get("max_logit", -math.inf)), scores.amax())
        return torch.matmul(a, vv)

    def _ar_loss(self, h: torch.Tensor, evicted: torch.Tensor, compressed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """||Attn(H, E) - Attn(H, f_c(E))||^2 per query, projections and H detached, no positions."""
        q = self._heads(F.linear(h.detach(), self.qkv.weight[: self.inner].detach()))
        k_e, v_e = self._kv(evicted, detach_weights=True)
        k_c, v_c = self._kv(compressed, detach_weights=True)
        scale = 1.0 / math.sqrt(self.d_head)
        target = torch.matmul((torch.matmul(q, k_e.transpose(-2, -1)) * scale).softmax(-1), v_e)
        recon = torch.matmul((torch.matmul(q, k_c.transpose(-2, -1)) * scale).softmax(-1), v_c)
        per_q = lambda x: x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1).pow(2).sum(-1).mean()  # noqa: E731
        return per_q(target - recon), per_q(target).detach()

    # -- the memory update after a full segment -------------------------------------------------------------------------
    def _update(self, mem: Memory, h: torch.Tensor, k: torch.Tensor, v: torch.Tensor, t: torch.Tensor,
                acc: dict[str, torch.Tensor]) -> Memory:
        h = h.detach()
        if torch.is_grad_enabled():  # keys of sg(H): gradient reaches the projections, never H
            k, v = self._kv(h)
        else:
            k, v = k.detach(), v.detach()
        h_m, k_m, v_m = torch.cat([mem.h_m, h], 1), torch.cat([mem.k_m, k], 2), torch.cat([mem.v_m, v], 2)
        t_m = torch.cat([mem.t_m, t.to(mem.t_m.dtype)])
        n_ev = h_m.shape[1] - self.cfg.mem_len
        k_c, v_c, t_c = mem.k_c, mem.v_c, mem.t_c
        if n_ev > 0:
            ev = h_m[:, :n_ev]
            comp = self.compress(ev.transpose(1, 2)).transpose(1, 2)  # (B, n_ev / c, D)
            if self.training and self.cfg.ar_loss:
                l_ar, norm = self._ar_loss(h, ev, comp)
                acc["ar_sum"] = acc.get("ar_sum", 0.0) + l_ar
                acc["ar_norm"] = acc.get("ar_norm", 0.0) + norm
                acc["ar_n"] = acc.get("ar_n", 0.0) + 1
            if self.cfg.cmem_len:
                kc_new, vc_new = self._kv(comp.detach())
                keep = self.cfg.cmem_len
                k_c = torch.cat([k_c, kc_new], 2)[:, :, -keep:]
                v_c = torch.cat([v_c, vc_new], 2)[:, :, -keep:]
                t_c = torch.cat([t_c, t_m[:n_ev].view(-1, self.cfg.rate).mean(1)])[-keep:]
            h_m, k_m, v_m, t_m = h_m[:, n_ev:], k_m[:, :, n_ev:], v_m[:, :, n_ev:], t_m[n_ev:]
        return replace(mem, h_m=h_m, k_m=k_m, v_m=v_m, t_m=t_m, k_c=k_c, v_c=v_c, t_c=t_c)

    def _finish(self, acc: dict[str, torch.Tensor]) -> None:
        """Set ``aux_loss`` and the logged statistics from the accumulators of one forward/step."""
        aux = None
        if "ar_sum" in acc:
            aux = acc["ar_sum"] / acc["ar_n"]
        if "reg_sum" in acc and self.training:
            term = self.cfg.reg_lambda * acc["reg_sum"] / acc["n"]
            aux = term if aux is None else aux + term
        self.aux_loss = aux if self.training else None
        if "n" not in acc:
            return
        n, n_ent = acc["n"], max(acc["n_ent"], 1.0)
        s = {"attn_entropy_norm": float(acc["ent_norm"]) / n_ent, "attn_eff_support": float(acc["eff_support"]) / n,
             "attn_max_prob": float(acc["max_prob"]) / n, "attn_max_logit": float(acc["max_logit"]),
             "mass_compressed": float(acc["mass_c"]) / n, "mass_memory": float(acc["mass_m"]) / n,
             "mass_current": float(acc["mass_s"]) / n, "attn_mean_distance": float(acc["distance"]) / n,
             "reg_lambda": float(self.cfg.reg_lambda)}
        if self.cfg.reg != "none":
            s[f"reg_{self.cfg.reg}"] = float(acc["reg"]) / n
        if "ar_sum" in acc:
            ar = float(acc["ar_sum"].detach())
            s["ar_loss"] = ar / acc["ar_n"]
            s["ar_rel_err"] = ar / max(float(acc["ar_norm"]), 1e-30)
        self._stats = s

    # -- parallel forward over segments ---------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        if not self.n_heads:  # every head pruned
            self.aux_loss = None
            return self.out_proj(x.new_zeros(b, t, 0))
        mem = self.empty_memory(b, x.device, x.dtype)
        acc: dict[str, torch.Tensor] = {}
        outs = []
        n_s = self.cfg.seg_len
        for start in range(0, t, n_s):
            h = x[:, start:start + n_s]
            t_q = torch.arange(start, start + h.shape[1], device=x.device)
            q, k, v = (self._heads(z) for z in self.qkv(h).chunk(3, dim=-1))
            o = self._attend(q, k, v, t_q, start, mem, acc)
            outs.append(o.transpose(1, 2).reshape(b, h.shape[1], self.inner))
            if start + n_s < t:  # another segment follows: update the memories
                mem = self._update(mem, h, k, v, t_q, acc)
        self._finish(acc)
        return self.out_proj(torch.cat(outs, 1))

    # -- recurrent decoding: same schedule, one token at a time -----------------------------------------------------------
    def init_state(self, batch: int, device: torch.device | str = "cpu") -> Memory:
        return self.empty_memory(batch, device)

    def step(self, x: torch.Tensor, mem: Memory) -> tuple[torch.Tensor, Memory]:
        if not self.n_heads:
            return self.out_proj(x.new_zeros(x.shape[0], 0)), mem
        h = x.unsqueeze(1)
        q, k, v = (self._heads(z) for z in self.qkv(h).chunk(3, dim=-1))
        seg_start = mem.pos - mem.h_s.shape[1]
        mem = replace(mem, h_s=torch.cat([mem.h_s, h], 1), k_s=torch.cat([mem.k_s, k], 2),
                      v_s=torch.cat([mem.v_s, v], 2))
        t_q = torch.tensor([mem.pos], device=x.device)
        acc: dict[str, torch.Tensor] = {}
        o = self._attend(q, mem.k_s, mem.v_s, t_q, seg_start, mem, acc)
        mem = replace(mem, pos=mem.pos + 1)
        if mem.h_s.shape[1] == self.cfg.seg_len:
            t_seg = torch.arange(seg_start, mem.pos, device=x.device)
            mem = self._update(mem, mem.h_s, mem.k_s, mem.v_s, t_seg, acc)
            mem = replace(mem, h_s=mem.h_s[:, :0], k_s=mem.k_s[:, :, :0], v_s=mem.v_s[:, :, :0])
        self._finish(acc)
        return self.out_proj(o.reshape(x.shape[0], self.inner)), mem

    # -- optional capabilities: attention capture and head pruning (arena.api) ---------------------------------------
    @torch.no_grad()
    def capture_attention(self, x: torch.Tensor) -> AttentionCapture:
        """The forward's segment schedule with every segment's probabilities kept. Each query row lists its own
        segment's keys [CM; M; current]; rows are padded to the widest key set with invisible slots."""
        b, t, _ = x.shape
        mem, n_s = self.empty_memory(b, x.device, x.dtype), self.cfg.seg_len
        segs = []
        for start in range(0, t, n_s):
            h = x[:, start:start + n_s]
            q, k, v = (self._heads(z) for z in self.qkv(h).chunk(3, dim=-1))
            kk, vv = torch.cat([mem.k_c, mem.k_m, k], 2), torch.cat([mem.v_c, mem.v_m, v], 2)
            t_q = torch.arange(start, start + h.shape[1], device=x.device).to(mem.t_m.dtype)
            t_k = torch.cat([mem.t_c, mem.t_m, t_q])
            scores = torch.matmul(q, kk.transpose(-2, -1)) * (1.0 / math.sqrt(self.d_head))
            probs = (scores + causal_bias(t_q, t_k, self.slopes).to(scores.dtype)).softmax(-1)  # (B, H, l, S_i)
            vis = t_q[:, None] >= t_k[None, :]
            uniform = torch.matmul(vis.to(vv.dtype) / vis.sum(-1, keepdim=True), vv)
            segs.append((probs, torch.matmul(probs, vv), uniform, vis, (t_q[:, None] - t_k[None, :]).float()))
            if start + n_s < t:
                mem = self._update(mem, h, k, v, t_q, {})
        width = max(s[0].shape[-1] for s in segs)
        pad = lambda z, val=0: F.pad(z, (0, width - z.shape[-1]), value=val)  # noqa: E731
        return AttentionCapture(probs=torch.cat([pad(s[0]) for s in segs], 2),
                                head_outputs=torch.cat([s[1] for s in segs], 2), out_proj=self.out_proj,
                                visible=torch.cat([pad(s[3], False) for s in segs], 0),
                                offsets=torch.cat([pad(s[4]) for s in segs], 0),
                                uniform_outputs=torch.cat([s[2] for s in segs], 2))

    @torch.no_grad()
    def prune_heads(self, keep: list[int]) -> None:
        """Keep only the heads in ``keep`` (q/k/v rows, out_proj columns, ALiBi slopes); f_c is shared."""
        keep = sorted(set(int(h) for h in keep))
        if any(h < 0 or h >= self.n_heads for h in keep):
            raise ValueError(f"head indices {keep} out of range for {self.n_heads} heads")
        dh = self.d_head
        cols = torch.tensor([h * dh + j for h in keep for j in range(dh)], dtype=torch.long)
        rows = torch.cat([cols + part * self.inner for part in range(3)])
        w = {"device": self.qkv.weight.device, "dtype": self.qkv.weight.dtype}  # weights are copied in: no init
        qkv = nn.utils.skip_init(nn.Linear, self.d_model, 3 * len(cols), bias=False, **w)
        qkv.weight.copy_(self.qkv.weight[rows])
        out = nn.utils.skip_init(nn.Linear, len(cols), self.d_model, bias=False, **w)
        out.weight.copy_(self.out_proj.weight[:, cols])
        self.qkv, self.out_proj = qkv, out
        if self.slopes is not None:
            self.slopes = self.slopes[torch.tensor(keep, dtype=torch.long)]
        self.n_heads, self.inner = len(keep), len(cols)

    def extra_metrics(self) -> dict[str, float]:
        """Per-layer attention statistics of the last forward, keyed ``l{layer}/...``."""
        return {f"l{self.layer_idx}/{k}": v for k, v in self._stats.items()}


# -- analytic accounting --------------------------------------------------------------------------------------------
def segment_schedule(seq_len: int, cfg: CompressiveConfig) -> list[tuple[int, int, int, int]]:
    """Per segment of a length-seq_len forward: (length, len M, len CM before it, rows evicted after it)."""
    out, lm, lc, t = [], 0, 0, max(1, int(seq_len))
    for start in range(0, t, cfg.seg_len):
        ell = min(cfg.seg_len, t - start)
        n_ev = 0
        if start + cfg.seg_len < t:
            n_ev = max(0, lm + ell - cfg.mem_len)
        out.append((ell, lm, lc, n_ev))
        if start + cfg.seg_len < t:
            lm = min(lm + ell, cfg.mem_len)
            lc = min(lc + n_ev // cfg.rate, cfg.cmem_len)
    return out


def compressive_params(d_model: int, cfg: CompressiveConfig) -> int:
    return 4 * d_model * d_model + cfg.rate * d_model * d_model + d_model


def compressive_flops(d_model: int, cfg: CompressiveConfig, seq_len: int, dense: bool = False) -> dict[str, float]:
    """Forward (inference) FLOPs per token. ``dense=True`` counts the full score rectangle the kernel computes."""
    d, sched = d_model, segment_schedule(seq_len, cfg)
    t = sum(s[0] for s in sched)
    matmul = 8.0 * d * d * t
    keys = 0.0
    for ell, lm, lc, n_ev in sched:
        keys += ell * (ell if dense else (ell + 1) / 2.0) + ell * (lm + lc)
        matmul += 2.0 * d * d * n_ev + (4.0 * d * d * n_ev / cfg.rate if cfg.cmem_len else 0.0)
    extra = 1.0 if cfg.pos == "alibi" else 0.0
    return {"matmul": matmul / t, "attention": 4.0 * d * keys / t,
            "elementwise": (SOFTMAX_FLOPS + extra) * cfg.n_heads * keys / t}


def compressive_head_params(d_model: int, cfg: CompressiveConfig) -> int:
    return 4 * d_model * (d_model // cfg.n_heads)  # q/k/v rows and out_proj columns; f_c is shared


def compressive_head_flops(d_model: int, cfg: CompressiveConfig, seq_len: int) -> dict[str, float]:
    """One head's share of :func:`compressive_flops`: its projections (and K/V of compressed rows), its scores."""
    d_head, sched = d_model // cfg.n_heads, segment_schedule(seq_len, cfg)
    t = sum(s[0] for s in sched)
    matmul, keys = 8.0 * d_model * d_head * t, 0.0
    for ell, lm, lc, n_ev in sched:
        keys += ell * (ell + 1) / 2.0 + ell * (lm + lc)
        matmul += 4.0 * d_model * d_head * n_ev / cfg.rate if cfg.cmem_len else 0.0
    extra = 1.0 if cfg.pos == "alibi" else 0.0
    return {"matmul": matmul / t, "attention": 4.0 * d_head * keys / t, "elementwise": (SOFTMAX_FLOPS + extra) * keys / t}


def compressive_state(d_model: int, cfg: CompressiveConfig, seq_len: int) -> int:
    t = int(seq_len)
    n_full, partial = divmod(t, cfg.seg_len)
    lm, lc = 0, 0
    for _ in range(n_full):
        n_ev = max(0, lm + cfg.seg_len - cfg.mem_len)
        lm, lc = min(lm + cfg.seg_len, cfg.mem_len), min(lc + n_ev // cfg.rate, cfg.cmem_len)
    return 2 * d_model * (lm + lc + partial)


PRESETS = {"tiny": SizePreset(32, 1, {"seg_len": 4, "mem_len": 4, "cmem_len": 4, "rate": 2}),
           "small": SizePreset(128, 2, {"seg_len": 32, "mem_len": 32, "cmem_len": 32, "rate": 4}),
           "base": SizePreset(256, 4, {})}


@arch_spec("compressive", kind="mixer", config=CompressiveConfig, params=compressive_params, flops=compressive_flops,
           state_size=compressive_state, family="attention", version=1, supports_step=True, presets=PRESETS,
           captures_attention=True, heads=HeadCost(params=compressive_head_params, flops=compressive_head_flops),
           width_multiple=even_head_width,
           description="Compressive Transformer attention: segment + FIFO memory + conv-compressed memory, "
                       "attention-reconstruction loss, optional signed entropy/KL regulariser",
           reference="https://arxiv.org/abs/1911.05507")
def build(d_model: int, layer_idx: int, cfg: CompressiveConfig) -> nn.Module:
    return CompressiveAttention(d_model, layer_idx, cfg)


SPEC = build
