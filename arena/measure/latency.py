"""Latency with ``torch.utils.benchmark``: warm-up, then p50/p90 per example at batch 1 and throughput at batch B."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import torch.utils.benchmark as benchmark


def _times(fn, min_run_time: float) -> list[float]:
    for _ in range(3):  # warm-up
        fn()
    t = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    m = t.blocked_autorange(min_run_time=min_run_time)
    while len(m.times) < 10:  # at least 10 timed blocks for a median
        m = t.blocked_autorange(min_run_time=min_run_time * 2)
        min_run_time *= 2
    return list(m.times)


@torch.no_grad()
def measure_latency(model: torch.nn.Module, seq_len: int, batch: int, min_run_time: float = 0.3,
                    device: str = "cpu", tokens: list[int] | tuple[int, ...] | None = None
                    ) -> dict[str, float | int | str | None]:
    """Time the forward pass on ``tokens`` (a real input of the task, so task-specific models do real work) or,
    without them, on ``seq_len`` placeholder ids."""
    model.eval()
    ids = torch.tensor(list(tokens), dtype=torch.long) if tokens else torch.ones(seq_len, dtype=torch.long)
    seq_len = ids.numel()
    x1 = ids.view(1, -1).to(device)
    xb = ids.view(1, -1).repeat(batch, 1).to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def one() -> None:
        model(x1)
        sync()

    def many() -> None:
        model(xb)
        sync()

    t1 = _times(one, min_run_time)
    tb = _times(many, min_run_time)
    try:  # how busy the machine was while timing: latency compares only on a quiet machine
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform
        load = None
    return {"p50_ms": float(np.percentile(t1, 50) * 1e3), "p90_ms": float(np.percentile(t1, 90) * 1e3),
            "batch": batch, "throughput_per_s": float(batch / np.median(tb)), "threads": torch.get_num_threads(),
            "seq_len": seq_len, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "load_avg_1m": load}


def typical_input(task: Any, head: str) -> tuple[int, list[int] | None]:
    """(mean evaluation length, the ``head`` split's example closest to it): latency is timed on a real input of
    typical length, since a placeholder input can short-circuit task-specific models."""
    eval_lens = [len(e.tokens) - 1 for s in task.eval_splits for e in task.splits[s]]
    seq_len = max(1, round(sum(eval_lens) / len(eval_lens))) if eval_lens else task.max_seq_len
    pool = list(task.splits.get(head, [])) or [e for s in task.eval_splits for e in task.splits[s]]
    sample = min(pool, key=lambda e: abs(len(e.tokens) - 1 - seq_len)).tokens[:-1] if pool else None
    return seq_len, sample
