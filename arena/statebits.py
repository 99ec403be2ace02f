"""State in bits: how many bits of carried state a trained model really uses.

The state a model carries between tokens (``Backbone.init_state``/``step``: the LSTM's h and c, Mamba's SSM state
and conv buffer, the transformer's KV cache) is quantised after every token to b bits per float, uniformly per
channel, with each channel's range calibrated on the validation set; decoding continues from the quantised
state. The measured size is the smallest b in ``BITS`` whose score (the task metric on its headline split,
teacher-forced through ``step``) stays within ``tolerance`` (1 point) of the unquantised score, and
``state_bits = b x state_size`` (state_size: the analytic floats carried at the evaluation length). It makes the
2^d-bit lower bounds of the depth families comparable with what each model carries (SPECS.md, "State in bits").

Channels: every element position of a state tensor except its batch dimension, and except its time dimension for
a state that grows by one entry per token (a KV cache: one range per head and head dimension). Both dimensions
are found by probing the model (batch: ``init_state(1)`` vs ``init_state(2)``; time: the dimension that grows
between two steps), so any mixer with ``init_state``/``step`` is measured without a hook of its own.
b = 32 means no quantisation (float32).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from arena.api import IGNORE, Example, Task
from arena.evaluate import _aggregate, collate, per_example

BITS = (1, 2, 4, 8, 16, 32)


def _tensors(state: Any) -> list[torch.Tensor]:
    if isinstance(state, torch.Tensor):
        return [state]
    return [t for s in (state or ()) for t in _tensors(s)]


def _rebuild(state: Any, it: Any) -> Any:
    if isinstance(state, torch.Tensor):
        return next(it)
    if isinstance(state, list):
        return [_rebuild(s, it) for s in state]
    return tuple(_rebuild(s, it) for s in state)


def _layout(model: Any, x: torch.Tensor) -> list[tuple[int, int | None]]:
    """(batch dim, time dim or None) of every state tensor, probed from the model."""
    one, two = _tensors(model.init_state(1)), _tensors(model.init_state(2))
    batch = [next(i for i, (a, b) in enumerate(zip(t1.shape, t2.shape, strict=True)) if a != b)
             for t1, t2 in zip(one, two, strict=True)]
    state = model.init_state(1)
    _, s1 = model.step(x[:1, 0], state)
    _, s2 = model.step(x[:1, 1 if x.shape[1] > 1 else 0], s1)
    time = [next((i for i, (a, b) in enumerate(zip(t1.shape, t2.shape, strict=True)) if a != b), None)
            for t1, t2 in zip(_tensors(s1), _tensors(s2), strict=True)]
    return list(zip(batch, time, strict=True))


def _reduce_dims(t: torch.Tensor, batch: int, time: int | None) -> tuple[int, ...]:
    return tuple(d for d in (batch, time) if d is not None and d < t.dim())


class Quantizer:
    """Per-channel ranges of every state tensor (from calibration) and b-bit uniform rounding to them."""

    def __init__(self, layout: list[tuple[int, int | None]]):
        self.layout = layout
        self.lo: list[torch.Tensor | None] = [None] * len(layout)
        self.hi: list[torch.Tensor | None] = [None] * len(layout)

    def observe(self, state: Any) -> None:
        for i, (t, (b, tm)) in enumerate(zip(_tensors(state), self.layout, strict=True)):
            dims = _reduce_dims(t, b, tm)
            lo, hi = t.amin(dim=dims, keepdim=True), t.amax(dim=dims, keepdim=True)
            self.lo[i] = lo if self.lo[i] is None else torch.minimum(self.lo[i], lo)
            self.hi[i] = hi if self.hi[i] is None else torch.maximum(self.hi[i], hi)

    def apply(self, state: Any, bits: int) -> Any:
        if bits >= 32:
            return state
        levels = (1 << bits) - 1
        out = []
        for t, lo, hi in zip(_tensors(state), self.lo, self.hi, strict=True):
            span = (hi - lo).clamp_min(1e-12)
            q = torch.round(((t - lo) / span).clamp(0, 1) * levels)
            out.append(lo + q * span / levels)
        return _rebuild(state, iter(out))


@torch.no_grad()
def _decode(model: Any, examples: Sequence[Example], batch_size: int, quant: Quantizer | None, bits: int,
            calibrate: bool = False) -> list[tuple[int, int]]:
    """Teacher-forced through ``step``, the state quantised after every token: (correct, scored) per example."""
    out: list[tuple[int, int]] = []
    for s in range(0, len(examples), batch_size):
        chunk = list(examples[s : s + batch_size])
        x, y = collate(chunk)
        state = model.init_state(x.shape[0])
        preds = []
        for t in range(x.shape[1]):
            logits, state = model.step(x[:, t], state)
            if calibrate and quant is not None:
                quant.observe(state)
            elif quant is not None:
                state = quant.apply(state, bits)
            preds.append(logits.argmax(-1))
        pred = torch.stack(preds, 1)
        scored = y != IGNORE
        correct = ((pred == y) & scored).sum(1)
        out.extend((int(c), int(n)) for c, n in zip(correct, scored.sum(1), strict=True))
    return out


def _score(task: Task, tf: list[tuple[int, int]]) -> float:
    return _aggregate(per_example(tf), range(len(tf)), task.metric)[task.metric]


def measure_state_bits(model: Any, task: Task, state_size: int, *, split: str | None = None,
                       tolerance: float = 0.01, bits: Sequence[int] = BITS, batch_size: int = 64,
                       max_examples: int | None = 500) -> dict[str, Any]:
    """The smallest b whose quantised-state score is within ``tolerance`` of the unquantised one, and b x
    state_size. Calibrates on ``val``; scores ``split`` (default: the task's headline split)."""
    from arena.api import StepDecoder
    from arena.runner import headline_split

    if not (isinstance(model, StepDecoder) and getattr(model, "supports_step", False)):
        raise ValueError("state bits need a model that decodes through init_state/step")
    model.eval()
    split = split or headline_split(task)
    val = task.splits["val"][:max_examples]
    test = task.splits[split][:max_examples]
    x, _ = collate(val[:1])
    quant = Quantizer(_layout(model, x))
    _decode(model, val, batch_size, quant, 32, calibrate=True)
    reference = _score(task, _decode(model, test, batch_size, None, 32))
    scores: dict[int, float] = {}
    chosen = None
    for b in sorted(bits):
        scores[b] = _score(task, _decode(model, test, batch_size, quant, b))
        if scores[b] >= reference - tolerance:
            chosen = b
            break
    return {"bits_per_float": chosen, "state_size": int(state_size),
            "state_bits": None if chosen is None else chosen * int(state_size), "reference_score": reference,
            "scores_by_bits": scores, "split": split, "calibration": "val", "tolerance": tolerance,
            "examples": len(test)}
