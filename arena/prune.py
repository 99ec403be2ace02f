"""``arena prune``: remove attention heads from a trained run for real and record each pruned model as a derived run.

Head ranking (which heads go first):

* ``importance`` (Michel, Levy & Neubig 2019, "Are Sixteen Heads Really Better than One?"): a gate xi_h = 1
  multiplies each head's output (a pre-hook on the mixer's ``out_proj``, whose input is the concatenated heads);
  I_h = sum over batches of |dL/dxi_h| on held-out examples (the validation split, never test; L = the mean
  cross-entropy of a batch's scored tokens), normalised per layer by the l2 norm of that layer's importances.
  As in the paper the ranking is iterative: the lowest-importance 10 % of all heads are masked, importances are
  recomputed with the mask, and so on, so the removal order serves every ``--keep`` at once.
* ``magnitude``: the Frobenius norm of each head's columns of the output projection, lowest first (one shot).
* ``random``: a seeded random order: the control every claim is judged against.

Heads are ranked globally (a layer may lose more heads than another, down to none: that layer's attention then
adds only its output bias). Pruning is physical (:class:`arena.api.HeadPrunable`): q/k/v rows and output-projection
columns are removed, so parameters, FLOPs and latency are measured on a smaller model. Analytic parameters and
FLOPs of the pruned model are the parent's minus the removed heads' (:class:`arena.api.HeadCost`), and the counted
parameters must equal them. The KV state scales with the heads kept in each layer.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from arena.api import IGNORE, Example, HeadPrunable
from arena.errors import ArenaError
from arena.evaluate import collate

METHODS = ("importance", "magnitude", "random")
ITERATIVE_FRACTION = 0.1  # Michel et al.: prune 10 % of the heads at a time, recomputing importance in between


def head_mixers(model: torch.nn.Module) -> list[Any]:
    mixers = list(getattr(model, "mixers", None) or [])
    if not mixers or not all(isinstance(m, HeadPrunable) for m in mixers):
        raise ArenaError("this model's mixers have no prunable attention heads (arena.api.HeadPrunable)")
    return mixers


def head_counts(model: torch.nn.Module) -> list[int]:
    return [int(m.n_heads) for m in head_mixers(model)]


def apply_kept(model: torch.nn.Module, kept: Sequence[Sequence[int]]) -> None:
    """Physically keep only ``kept[l]`` (head indices of the unpruned layer) in every layer ``l``."""
    mixers = head_mixers(model)
    if len(kept) != len(mixers):
        raise ArenaError(f"pruning lists {len(kept)} layers but the model has {len(mixers)}")
    for m, keep in zip(mixers, kept, strict=True):
        m.prune_heads(list(keep))


# -- rankings -------------------------------------------------------------------------------------------------------
def _gate_hooks(model: torch.nn.Module, gates: list[torch.Tensor]) -> list[Any]:
    """Multiply head h of every layer by gates[l][h] on its way into the output projection."""
    hooks = []
    for m, g in zip(head_mixers(model), gates, strict=True):
        def pre(mod: Any, args: tuple[torch.Tensor, ...], g: torch.Tensor = g, m: Any = m) -> tuple[torch.Tensor]:
            x = args[0]
            heads = x.view(*x.shape[:-1], m.n_heads, m.d_head) * g[:, None]
            return (heads.reshape(x.shape),)

        hooks.append(m.out_proj.register_forward_pre_hook(pre))
    return hooks


def head_importance(model: torch.nn.Module, examples: Sequence[Example], batch_size: int = 32,
                    mask: list[torch.Tensor] | None = None, device: str = "cpu") -> list[torch.Tensor]:
    """Per-layer importances sum_batches |dL/dxi_h| at xi = ``mask`` (default all ones), l2-normalised per layer."""
    counts = head_counts(model)
    gates = [(mask[i].clone() if mask else torch.ones(n)).to(device).requires_grad_(True)
             for i, n in enumerate(counts)]
    total = [torch.zeros(n, device=device) for n in counts]
    hooks = _gate_hooks(model, gates)
    was_training = model.training
    model.eval()
    try:
        for s in range(0, len(examples), batch_size):
            x, y = collate(list(examples[s:s + batch_size]), 0, device)
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE)
            grads = torch.autograd.grad(loss, gates, allow_unused=True)
            for t, g in zip(total, grads, strict=True):
                if g is not None:
                    t += g.detach().abs()
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return [t / (t.norm() + 1e-20) for t in total]


def removal_order(model: torch.nn.Module, method: str, examples: Sequence[Example] = (), seed: int = 0,
                  batch_size: int = 32, device: str = "cpu") -> tuple[list[tuple[int, int]], dict[str, Any]]:
    """Every (layer, head) in the order it is removed, and the scores behind the order."""
    counts = head_counts(model)
    heads = [(li, h) for li, n in enumerate(counts) for h in range(n)]
    if method == "random":
        order = heads[:]
        random.Random(seed).shuffle(order)
        return order, {"seed": seed}
    if method == "magnitude":
        norms = [m.out_proj.weight.detach().view(m.out_proj.weight.shape[0], m.n_heads, m.d_head).norm(dim=(0, 2))
                 for m in head_mixers(model)]
        order = sorted(heads, key=lambda lh: (float(norms[lh[0]][lh[1]]), lh))
        return order, {"scores": [[round(float(v), 6) for v in n] for n in norms]}
    if method != "importance":
        from arena.errors import suggest

        raise ArenaError(f"unknown --method {method!r}{suggest(method, METHODS)}")
    if not examples:
        raise ArenaError("head importance needs held-out examples (the validation split is empty)")
    mask = [torch.ones(n) for n in counts]
    step = max(1, math.ceil(ITERATIVE_FRACTION * len(heads)))
    order: list[tuple[int, int]] = []
    first: list[list[float]] | None = None
    while len(order) < len(heads):
        imp = head_importance(model, examples, batch_size, mask, device)
        first = first or [[round(float(v), 6) for v in t] for t in imp]
        alive = [lh for lh in heads if lh not in order]
        alive.sort(key=lambda lh: (float(imp[lh[0]][lh[1]]), lh))
        for li, h in alive[:step]:
            order.append((li, h))
            mask[li][h] = 0.0
    return order, {"scores": first, "iterative_step": step}


def kept_after(order: Sequence[tuple[int, int]], counts: Sequence[int], keep: int) -> list[list[int]]:
    """Head indices kept per layer when the first ``total - keep`` heads of ``order`` are removed."""
    gone = set(map(tuple, order[: sum(counts) - keep]))
    return [[h for h in range(n) if (li, h) not in gone] for li, n in enumerate(counts)]


def parse_keep(text: str, total: int) -> list[int]:
    """``--keep 12,8,4`` -> [12, 8, 4], each an integer number of heads in [0, total]."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        try:
            k = int(part)
        except ValueError:
            raise ArenaError(f"--keep expects comma-separated head counts, got {part!r}") from None
        if not 0 <= k <= total:
            raise ArenaError(f"--keep {k} is outside 0..{total} (the model has {total} heads)")
        out.append(k)
    if not out:
        raise ArenaError("--keep is empty")
    return out


def derivation_hash(parent_hash: str, derivation: dict[str, Any]) -> str:
    canonical = json.dumps({"parent": parent_hash, "derivation": derivation}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def pruned_copy(model: torch.nn.Module, kept: list[list[int]]) -> torch.nn.Module:
    child = copy.deepcopy(model)
    apply_kept(child, kept)
    return child.eval()


__all__ = ["METHODS", "head_importance", "removal_order", "kept_after", "parse_keep", "apply_kept", "head_counts",
           "pruned_copy", "derivation_hash"]
