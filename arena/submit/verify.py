"""Checks the parent drives and judges itself: parameters from the weights, determinism across processes,
causality at the task's real lengths, and the plain sanity of every reply (shape, finite values).

A failed check raises :class:`Rejected` naming it. Nothing here runs plugin code: the parent reads safetensors
(a format without code) and compares tensors it received.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

import torch

ATOL = 1e-4  # tolerance of the causality comparison (FFT-based mixers differ by ~1e-6 in the prefix)


class Rejected(Exception):
    def __init__(self, check: str, detail: str, exit_code: int = 1):
        super().__init__(detail)
        self.check, self.detail, self.exit_code = check, detail, exit_code


@dataclass
class Weights:
    """A weights file as the parent sees it: tensors, which names the worker called parameters, and aliases."""

    blob: bytes
    tensors: dict[str, torch.Tensor]
    params: list[str]
    aliases: dict[str, str]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.blob).hexdigest()

    def layout(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        return {k: (str(v.dtype), tuple(v.shape)) for k, v in self.tensors.items()}


def read_weights(head: dict[str, Any], blob: bytes | bytearray) -> Weights:
    """Parse a worker's weights reply (safetensors bytes; no pickle, so reading it runs no code)."""
    from safetensors.torch import load

    blob = bytes(blob)
    try:
        tensors = load(blob)
    except Exception as exc:
        raise Rejected("weights", f"the returned weights are not a valid safetensors file: {exc}") from None
    params, aliases = head.get("params"), head.get("aliases")
    if not isinstance(params, list) or not isinstance(aliases, dict):
        raise Rejected("weights", "the weights reply does not list its parameters and aliases")
    bad = [p for p in params if p not in tensors] + [a for a, t in aliases.items() if t not in tensors or a in tensors]
    if bad:
        raise Rejected("weights", f"the weights reply names tensors it does not contain: {bad[:5]}")
    return Weights(blob, tensors, [str(p) for p in params], {str(a): str(t) for a, t in aliases.items()})


def count_params(w: Weights, init: Weights | None = None) -> int:
    """Parameters, counted from the tensors: those the worker calls parameters, plus any other tensor whose values
    changed since the build (a learned tensor cannot hide as a buffer)."""
    names = set(w.params)
    if init is not None:
        names |= {k for k, v in w.tensors.items() if k in init.tensors and not torch.equal(v, init.tensors[k])}
    return int(sum(w.tensors[k].numel() for k in names))


def check_build(declared: int, first: Weights, second: Weights) -> int:
    """Two builds in two processes with one seed: same bytes, and the declared parameter count."""
    if first.sha256 != second.sha256:
        raise Rejected("determinism", "two builds with the same seed in two separate processes give different "
                       f"initial weights (sha256 {first.sha256[:12]} vs {second.sha256[:12]}); seed every random "
                       "choice from torch's generator")
    counted = count_params(first)
    if counted != declared:
        raise Rejected("param count", f"declared {declared:,} parameters but the module has {counted:,}")
    return counted


def check_trained(init: Weights, trained: Weights, built: int) -> int:
    """The trained weights have exactly the built layout (no parameter grown after the checks) and count."""
    a, b = init.layout(), trained.layout()
    if a != b or init.aliases != trained.aliases:
        grown = sorted(set(b) - set(a))
        changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])
        raise Rejected("param count", "the trained weights do not have the layout of the built model "
                       f"(new tensors: {grown[:5]}, changed shapes: {changed[:5]}); parameters must exist when the "
                       "model is built, not appear during training")
    counted = count_params(trained, init)
    if counted != built:
        raise Rejected("param count", f"{counted:,} parameters changed during training but the built model "
                       f"declares {built:,}: tensors outside the declared parameters were learned")
    return counted


def check_logits(y: torch.Tensor, expected: tuple[int, ...], what: str) -> None:
    if tuple(y.shape) != expected:
        raise Rejected("shape", f"{what}: expected logits of shape {expected}, got {tuple(y.shape)}")
    if not torch.isfinite(y).all():
        raise Rejected("finite", f"{what}: the logits have NaN or Inf")


def scramble_after(x: torch.Tensor, cuts: torch.Tensor, vocab: int, rng: torch.Generator) -> torch.Tensor:
    """``x`` with every token after ``cuts[i]`` in row i replaced by a different random token (never padding)."""
    b, t = x.shape
    after = torch.arange(t).unsqueeze(0) > cuts.unsqueeze(1)
    shift = torch.randint(1, max(2, vocab - 1), (b, t), generator=rng)
    other = (x - 1 + shift) % (vocab - 1) + 1  # in 1..V-1 and != x (for x in 1..V-1)
    other = torch.where(other == x, other % (vocab - 1) + 1, other)
    return torch.where(after, other, x)


def compare_prefix(a: torch.Tensor, b: torch.Tensor, cuts: torch.Tensor, what: str) -> float:
    """Largest change of logits at positions <= cut between two inputs that differ only after the cut."""
    t = a.shape[1]
    keep = (torch.arange(t).unsqueeze(0) <= cuts.unsqueeze(1)).unsqueeze(-1)
    diff = float(((a - b).abs() * keep).amax()) if a.numel() else 0.0
    if not diff <= ATOL:  # also catches NaN
        row = int(((a - b).abs() * keep).amax(dim=(1, 2)).argmax())
        raise Rejected("causality", f"{what}: logits at positions <= {int(cuts[row])} change by {diff:.3g} when "
                       f"later tokens change (peeks ahead, seen at sequence length {t})")
    return diff


def probe_lengths(longest: int, rng: random.Random) -> list[int]:
    """Sequence lengths for causality probes: short, the conformance length, the task's real lengths up to the
    longest input, and a random one, so a model cannot peek only beyond the length the checks use."""
    cands = {2, 5, 12, 13, longest, max(2, longest // 2), max(2, (3 * longest) // 4), rng.randint(2, max(2, longest))}
    return sorted(n for n in cands if 2 <= n <= max(2, longest))


def causality_probes(predict, vocab: int, longest: int, real: list[torch.Tensor], seed: int) -> dict[str, Any]:
    """Parent-driven causality probes: random and real inputs at several lengths, random cut positions."""
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    worst, n = 0.0, 0
    for t in probe_lengths(longest, rng):
        rows = [torch.randint(1, vocab, (t,), generator=gen) for _ in range(3)]
        rows += [r[:t] for r in real if len(r) >= t][:3]
        x = torch.stack(rows)
        cuts = torch.tensor([rng.randint(0, t - 2) for _ in rows])
        x2 = scramble_after(x, cuts, vocab, gen)
        both = predict(torch.cat([x, x2]))
        worst = max(worst, compare_prefix(both[: len(rows)], both[len(rows):], cuts, f"causality probe, T={t}"))
        n += len(rows)
    return {"probes": n, "lengths": probe_lengths(longest, random.Random(seed)), "max_change": worst}
