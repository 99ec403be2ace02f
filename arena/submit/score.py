"""Scoring on the parent: arena's own scorer asks proxy models whose forward() is a request to a worker.

* :class:`Remote` turns ``forward(input_ids)`` into a ``predict`` request and checks the reply's shape and values.
* :class:`AuditedRemote` is the teacher-forced proxy: with every batch it also sends a copy whose tokens after a
  secret random position per row are replaced, and requires the logits up to that position to be unchanged. The
  only inputs a teacher-forced pass shows a worker beyond a prompt are the answers themselves, so this is where a
  causality hole would pay; it is checked on the very examples being scored.
* :class:`Generator` is greedy decoding by the parent: it sends prompts and the tokens the *parent* chose by argmax
  (appending them and asking again, or asking for ``step()`` outputs), and reads one position per row.

Each proxy belongs to one worker, started when first asked, so each pass runs in a fresh process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from arena.api import Example
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


class Generator(Remote):
    """Greedy decoding driven by the parent, all examples of a chunk in lockstep: at every step each row gets its
    next prompt token or the token the parent chose by argmax, and one request serves the whole chunk. With
    ``recurrent`` (the architecture declares ``step()``) the worker keeps the chunk's decoding state and receives
    one token per row; otherwise it gets the sequences so far and returns the logits at each row's last position.
    The worker never sees anything but prompts and the parent's own choices."""

    def __init__(self, start: Callable[[], Worker], vocab: int, what: str, recurrent: bool, batch_size: int):
        super().__init__(start, vocab, what)
        self.recurrent, self.batch_size = recurrent, batch_size

    def __call__(self, examples: Sequence[Example]) -> list[list[int]]:
        out: list[list[int]] = []
        for s in range(0, len(examples), self.batch_size):
            chunk = examples[s:s + self.batch_size]
            prompts = [list(e.tokens[: e.prompt_len]) for e in chunk]
            need = [len(e.tokens) - e.prompt_len for e in chunk]
            out += self._recurrent(prompts, need) if self.recurrent else self._full(prompts, need)
        return out

    def _full(self, prompts: list[list[int]], need: list[int]) -> list[list[int]]:
        gens: list[list[int]] = [[] for _ in prompts]
        while any(len(g) < n for g, n in zip(gens, need, strict=True)):
            seqs = [p + g for p, g in zip(prompts, gens, strict=True)]
            x = torch.zeros(len(seqs), max(map(len, seqs)), dtype=torch.long)  # right padding: causal models ignore it
            for i, q in enumerate(seqs):
                x[i, : len(q)] = torch.tensor(q)
            nxt = self._request("predict", x, {"positions": [len(q) - 1 for q in seqs]}).argmax(-1)
            for i, g in enumerate(gens):
                if len(g) < need[i]:
                    g.append(int(nxt[i]))
        return gens

    def _recurrent(self, prompts: list[list[int]], need: list[int]) -> list[list[int]]:
        gens: list[list[int]] = [[] for _ in prompts]
        steps = max(len(p) + n - 1 for p, n in zip(prompts, need, strict=True))
        for t in range(steps):
            col = torch.tensor([(p[t] if t < len(p) else g[t - len(p)]) if t < len(p) + len(g) else 0
                                for p, g in zip(prompts, gens, strict=True)], dtype=torch.long)
            nxt = self._request("gen_start" if t == 0 else "gen_step", col.view(-1, 1) if t == 0 else col, {}).argmax(-1)
            for i, (p, g) in enumerate(zip(prompts, gens, strict=True)):
                if t >= len(p) - 1 and len(g) < need[i]:
                    g.append(int(nxt[i]))
        return gens

    def _request(self, op: str, x: torch.Tensor, extra: dict[str, Any]) -> torch.Tensor:
        """(B, V) logits for one step of every row, size-checked before they are read."""
        if self.worker is None:
            self.worker = self._start()
        b, n = x.shape[0], x.shape[0] * self.vocab
        _, data = self.worker.call({"op": op, "shape": list(x.shape), **extra}, x.contiguous().numpy().tobytes(),
                                   max_reply=4 * n)
        if len(data) != 4 * n:
            raise verify.Rejected("shape", f"{self.what}: expected logits of shape {(b, 1, self.vocab)}")
        y = torch.frombuffer(data, dtype=torch.float32).view(b, 1, self.vocab)
        verify.check_logits(y, (b, 1, self.vocab), self.what)
        return y[:, 0]


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
            "timed_by": "parent, around the worker's predict (includes the protocol round trip)",
            "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
