"""Statistics of captured attention (SPECS.md, "Attention analysis: definitions"), as pure tensor functions.

Per head, over the queries that see at least two keys (a query with one visible key has no choice to make):

* ``entropy_norm``: H_t / log |K_t| with H_t = -sum_j p_t(j) log p_t(j) (1 = uniform over the visible keys, 0 = one key);
* ``support``: exp(H_t), the effective number of keys attended;
* ``top1`` / ``top4``: the largest / four largest probabilities summed;
* ``offset``: sum_j p_t(j) (t - j), the mean distance back in tokens.

Effective rank (Roy & Vetterli 2007) of a matrix whose rows are tokens: the token mean is subtracted from every
column first; with singular values s_i and p_i = s_i / sum s, ``erank`` = exp(-sum p_i log p_i); ``n90`` / ``n99``
are the fewest singular values holding 90 % / 99 % of sum s_i^2; ``bound`` is the number of columns (d_head for one
head, n_heads x d_head for a layer's concatenated heads).
"""

from __future__ import annotations

import math

import torch

ATTENTION_STATS = ("entropy_norm", "support", "top1", "top4", "offset")
RANK_STATS = ("erank", "n90", "n99")


def attention_sums(probs: torch.Tensor, visible: torch.Tensor, offsets: torch.Tensor,
                   query_mask: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-head sums of the attention statistics over the counted queries, and their count.

    Args:
        probs: (B, H, T, S) probabilities (0 on invisible slots).
        visible: (T, S) bool.
        offsets: (T, S) distance back of each key slot.
        query_mask: (B, T) bool, the real (unpadded) query positions.

    Returns:
        ({stat: (H,) sum}, count) where count is the number of (example, query) pairs counted.
    """
    n_vis = visible.sum(-1)  # (T,)
    counted = query_mask & (n_vis >= 2)[None, :]  # (B, T)
    w = counted[:, None, :].to(probs.dtype)  # (B, 1, T)
    p = probs.clamp_min(0)
    ent = -(p * p.clamp_min(1e-30).log()).sum(-1)  # (B, H, T)
    log_n = n_vis.clamp_min(2).to(probs.dtype).log()  # (T,)
    k = min(4, probs.shape[-1])
    per_query = {"entropy_norm": ent / log_n, "support": ent.exp(), "top1": p.amax(-1),
                 "top4": p.topk(k, dim=-1).values.sum(-1), "offset": (p * offsets.to(p.dtype)).sum(-1)}
    return {name: (v * w).sum((0, 2)) for name, v in per_query.items()}, counted.sum()


def uniform_probs(visible: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(1, 1, T, S) uniform attention over each query's visible keys."""
    v = visible.to(dtype)
    return (v / v.sum(-1, keepdim=True).clamp_min(1))[None, None]


def effective_rank(rows: torch.Tensor) -> dict[str, float]:
    """erank, n90, n99 and bound of a (N, k) matrix after subtracting the token (row) mean."""
    m = rows.double() - rows.double().mean(0, keepdim=True)
    bound = int(m.shape[1])
    if m.shape[0] < 2 or bound == 0:
        return {"erank": 0.0, "n90": 0, "n99": 0, "bound": bound}
    s = torch.linalg.svdvals(m)
    total = float(s.sum())
    if total <= 0:
        return {"erank": 0.0, "n90": 0, "n99": 0, "bound": bound}
    p = s / total
    erank = math.exp(float(-(p * p.clamp_min(1e-300).log()).sum()))
    energy = (s * s).cumsum(0) / float((s * s).sum())
    count = lambda q: int((energy < q - 1e-12).sum()) + 1  # noqa: E731 - fewest values reaching q of the energy
    return {"erank": erank, "n90": count(0.90), "n99": count(0.99), "bound": bound}


__all__ = ["ATTENTION_STATS", "RANK_STATS", "attention_sums", "uniform_probs", "effective_rank"]
