"""FLOPs: analytic per architecture (primary) and ``FlopCounterMode`` (a cross-check, stored beside it).

FLOPs = 2 x multiply-adds. On CPU, torch's counter sees matmul/bmm/conv (and SDPA only under the MATH backend);
it counts 0 for ``nn.LSTM``, FFTs, cumsum, scans and elementwise ops, so the counter is compared with the
analytic ``matmul`` + ``attention`` part, and the disagreement is recorded rather than trusted either way.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from arena.api import ArchConfig, ArchSpec, ModelShape
from arena.blocks import analytic_flops

COUNTED_PARTS = ("matmul", "attention")
TOLERANCE = 0.02
# modules whose matmuls FlopCounterMode does not see at all (it counts aten.mm/bmm/addmm/conv/SDPA, not the fused
# recurrent kernels)
BLIND_MODULES = (torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN, torch.nn.LSTMCell, torch.nn.GRUCell, torch.nn.RNNCell)


def counted_forward_flops(model: torch.nn.Module, input_ids: torch.Tensor, with_grad: bool = False) -> float:
    """FlopCounterMode total for one forward pass (under the MATH SDPA backend so attention is seen).

    ``with_grad``: count with autograd on (``ArchSpec.counts_flops_with_grad``: torch's module tracker asserts
    when a parameter is passed as a module input under ``no_grad``); the model is in eval mode either way."""
    counter = FlopCounterMode(display=False)
    with torch.set_grad_enabled(with_grad), _sdpa_math(), counter:
        model(input_ids)
    return float(counter.get_total_flops())


def _sdpa_math():
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel(SDPBackend.MATH)
    except Exception:  # older torch
        import contextlib

        return contextlib.nullcontext()


def measure_flops(spec: ArchSpec, shape: ModelShape, cfg: ArchConfig, model: torch.nn.Module, seq_len: int,
                  tokens_seen: int) -> dict[str, float | str | None]:
    """Per-token and per-example forward FLOPs, training total, and the counter cross-check with a note."""
    return flops_record(analytic_flops(spec, shape, cfg, seq_len), model, seq_len, tokens_seen,
                        with_grad=spec.counts_flops_with_grad)


def flops_record(breakdown: dict[str, float] | None, model: torch.nn.Module, seq_len: int,
                 tokens_seen: int, with_grad: bool = False) -> dict[str, float | str | None]:
    """:func:`measure_flops` from an analytic per-token breakdown (a pruned model's is its parent's minus the
    removed heads')."""
    if breakdown is None:
        return {"forward_per_token": None, "forward_per_example": None, "train_total": None,
                "counted_forward_per_example": None, "note": "n/a (symbolic): not comparable on a FLOPs axis",
                "breakdown": None}
    per_token = sum(breakdown.values())
    per_example = per_token * seq_len
    counted = counted_forward_flops(model, torch.ones(1, seq_len, dtype=torch.long), with_grad)
    expected_counted = sum(breakdown.get(k, 0.0) for k in COUNTED_PARTS) * seq_len
    missed = {k: v for k, v in breakdown.items() if k not in COUNTED_PARTS and v}
    ratio = counted / expected_counted if expected_counted else float("nan")
    note = f"counter/analytic(matmul+attention) = {ratio:.3f}"
    if missed:
        note += "; not seen by the counter: " + ", ".join(f"{k} {v * seq_len:.3g}" for k, v in missed.items())
    if abs(ratio - 1) > TOLERANCE:
        why = explain_disagreement(breakdown, seq_len, counted, model)
        note += f"; expected: {why}" if why else (
            "; DISAGREEMENT > 2% with no known cause (an analytic formula error, or ops the counter misses)")
    return {"forward_per_token": per_token, "forward_per_example": per_example,
            "train_total": 3.0 * per_token * tokens_seen, "counted_forward_per_example": counted, "note": note,
            "breakdown": {k: v * seq_len for k, v in breakdown.items()}}


def explain_disagreement(breakdown: dict[str, float], seq_len: int, counted: float,
                         model: torch.nn.Module) -> str | None:
    """Why the counter and the analytic matmul+attention count differ, when a known blind spot of the counter
    accounts for it (then the note says so instead of flagging a disagreement); None when nothing known does.

    * Fewer counted FLOPs, and the model has recurrent modules the counter cannot see (``nn.LSTM``...).
    * More counted FLOPs, and the counter's total equals the analytic count with the dense T x T attention square
      (the analytic count keeps only the causal half: ``(T + 1) / 2`` keys per query instead of ``T``).
    """
    expected = sum(breakdown.get(k, 0.0) for k in COUNTED_PARTS) * seq_len
    if not expected:
        return None
    if counted < expected * (1 - TOLERANCE):
        blind = sorted({type(m).__name__ for m in model.modules() if isinstance(m, BLIND_MODULES)})
        if blind:
            return f"FlopCounterMode does not count {', '.join(blind)}"
    attention = breakdown.get("attention", 0.0)
    if counted > expected * (1 + TOLERANCE) and attention:
        dense = (breakdown.get("matmul", 0.0) + attention * 2 * seq_len / (seq_len + 1)) * seq_len
        if abs(counted / dense - 1) <= TOLERANCE:
            return "the counter counts the full T x T attention square, the analytic count only its causal half"
    return None
