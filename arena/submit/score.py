"""Scoring on the parent: arena's own scorer asks proxy models whose forward() is a request to a worker.

* :class:`Remote` turns ``forward(input_ids)`` into a ``predict`` request and checks the reply's shape and values.
* :class:`AuditedRemote` is the teacher-forced proxy: with every batch it also sends a copy whose tokens after a
  secret random position per row are replaced, and requires the logits up to that position to be unchanged. The
  only inputs a teacher-forced pass shows a worker beyond a prompt are the answers themselves, so this is where a
  causality hole would pay; it is checked on the very examples being scored.
* :class:`GenerateRemote` is the generation proxy: it is given prompts and the tokens the *parent* chose by argmax
  (greedy decoding is the parent appending tokens and asking again), and returns only the last position.

Each proxy belongs to one worker, started when first asked, so each pass runs in a fresh process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from arena.submit import verify
from arena.submit.sandbox import Worker


class Remote(torch.nn.Module):
    """(B, T) token ids -> (B, T, V) logits, computed by a worker process."""

    def __init__(self, start: Callable[[], Worker], vocab: int, what: str):
        super().__init__()
        self._start, self.vocab, self.what = start, vocab, what
        self.worker: Worker | None = None

    def ask(self, x: torch.Tensor, last: bool = False) -> torch.Tensor:
        if self.worker is None:
            self.worker = self._start()
        x = x.to(torch.int64).contiguous()
        b, t = x.shape
        rows = 1 if last else t
        n = b * rows * self.vocab
        head, data = self.worker.call({"op": "predict", "shape": [b, t], "last": last}, x.numpy().tobytes(),
                                      max_reply=4 * n)
        if len(data) != 4 * n:
            raise verify.Rejected("shape", f"{self.what}: expected logits of shape {(b, rows, self.vocab)}, got "
                                  f"{head.get('shape')} ({len(data)} bytes)")
        y = torch.frombuffer(data, dtype=torch.float32).view(b, rows, self.vocab)
        verify.check_logits(y, (b, rows, self.vocab), self.what)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ask(x)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.kill()


class AuditedRemote(Remote):
    """Teacher-forced proxy whose every batch is causality-checked at secret random positions."""

    def __init__(self, start: Callable[[], Worker], vocab: int, what: str, seed: int):
        super().__init__(start, vocab, what)
        self.gen = torch.Generator().manual_seed(seed)
        self.max_change = 0.0
        self.audited = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape
        if t < 2:
            return self.ask(x)
        cuts = torch.randint(0, t - 1, (b,), generator=self.gen)
        x2 = verify.scramble_after(x, cuts, self.vocab, self.gen)
        both = self.ask(torch.cat([x, x2]))
        self.max_change = max(self.max_change, verify.compare_prefix(both[:b], both[b:], cuts, self.what))
        self.audited += b
        return both[:b]


class GenerateRemote(Remote):
    """Generation proxy: only the last position's logits are needed (and fetched). With ``recurrent`` (the
    architecture declares ``step()``), a call that extends the previous one by one token sends just that token
    (the worker keeps the decoding state of this batch); any other call starts again from the prompts."""

    def __init__(self, start: Callable[[], Worker], vocab: int, what: str, recurrent: bool = False):
        super().__init__(start, vocab, what)
        self.recurrent = recurrent
        self.prev: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.recurrent:
            return self.ask(x, last=True)
        x = x.to(torch.int64).contiguous()
        extends = (self.prev is not None and x.shape[0] == self.prev.shape[0]
                   and x.shape[1] == self.prev.shape[1] + 1 and torch.equal(x[:, :-1], self.prev))
        self.prev = x
        if extends:
            return self._step("gen_step", x[:, -1].contiguous(), x.shape)
        return self._step("gen_start", x, x.shape)

    def _step(self, op: str, payload: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        if self.worker is None:
            self.worker = self._start()
        b = shape[0]
        n = b * self.vocab
        _, data = self.worker.call({"op": op, "shape": list(shape)}, payload.numpy().tobytes(), max_reply=4 * n)
        if len(data) != 4 * n:
            raise verify.Rejected("shape", f"{self.what}: expected step logits of shape {(b, self.vocab)}")
        y = torch.frombuffer(data, dtype=torch.float32).view(b, 1, self.vocab)
        verify.check_logits(y, (b, 1, self.vocab), self.what)
        return y


def parent_latency(remote: Remote, tokens: list[int] | tuple[int, ...], batch: int, min_run_time: float) -> dict[str, Any]:
    """p50/p90 of the round trip around the worker's predict at batch 1, and throughput at ``batch``, timed by the
    parent (so they include the protocol; a worker cannot report a flattering number)."""
    x1 = torch.tensor([list(tokens)], dtype=torch.long)
    xb = x1.repeat(batch, 1)
    for _ in range(3):
        remote.ask(x1)
    t1: list[float] = []
    t_end = time.perf_counter() + min_run_time * 10
    while len(t1) < 10 or (time.perf_counter() < t_end and len(t1) < 200):
        s = time.perf_counter()
        remote.ask(x1)
        t1.append(time.perf_counter() - s)
    tb: list[float] = []
    for _ in range(5):
        s = time.perf_counter()
        remote.ask(xb)
        tb.append(time.perf_counter() - s)
    return {"p50_ms": float(np.percentile(t1, 50) * 1e3), "p90_ms": float(np.percentile(t1, 90) * 1e3),
            "batch": batch, "throughput_per_s": float(batch / np.median(tb)), "threads": 1, "seq_len": len(tokens),
            "timed_by": "parent, around the worker's predict (includes the protocol round trip)"}
