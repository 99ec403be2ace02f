"""Memory is measured per run: a sweep worker that ran a large mamba job first does not charge its peak to the
164-parameter state machine that runs next in the same process."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from arena.measure import memory
from arena.store import open_store
from arena.store.models import Run
from arena.sweep import LocalExecutor, expand, parse_spec, run_jobs

SMALL_SCAN = {"n_train": 64, "n_val": 8, "n_test_per_depth": 4, "test_depths": [4, 4]}


@pytest.mark.slow  # ~45 s on a quiet 2-core machine (134 s at load 13): one worker, a 1-step mamba run at batch 256
@pytest.mark.skipif(not memory.can_reset(), reason="needs Linux /proc/self/clear_refs (elsewhere each job gets a "
                                                   "fresh worker, so there is no shared peak to leak)")
def test_state_machine_after_mamba_in_the_same_worker_records_its_own_memory(sweep_env):
    spec = parse_spec({
        "name": "memory",
        # the pure-PyTorch scan materializes (batch, time, 2 x d_model, d_state) tensors: a >1 GB training step
        "archs": ["mamba", "state-machine"],
        "tasks": [{"name": "scan-depth", "config": SMALL_SCAN}],
        "sizes": ["tiny"], "seeds": [0],
        "train": {"max_steps": 1, "batch_size": 256, "eval_every": 2, "warmup_steps": 1, "eval_batch_size": 8,
                  "checkpoint_every": 2},
        "latency": {"min_run_time": 0.01, "batch": 2},
    })
    jobs = expand(spec)
    assert [j.spec["arch"] for j in jobs] == ["mamba", "state-machine"]
    ex = LocalExecutor(1)  # one worker process runs both jobs, in order
    try:
        summary = run_jobs(jobs, db=sweep_env["url"], executor_obj=ex)
        pids = {ex.pool._processes[p].pid for p in ex.pool._processes} if ex.pool else set()
    finally:
        ex.close()
    assert summary.done == 2 and not summary.errors, summary.errors
    assert len(pids) == 1  # the same worker ran both
    with Session(open_store(sweep_env["url"])) as s:
        runs = {r.arch: r for r in s.scalars(select(Run))}
    big, small = runs["mamba"], runs["state-machine"]
    print(f"mamba {big.memory_mb:.0f} MiB, state-machine ({small.params_total} params) {small.memory_mb:.0f} MiB")
    assert small.params_total == 164
    assert big.extra["memory_scope"] == small.extra["memory_scope"] == "run"
    assert big.memory_mb > small.memory_mb + 600  # the large run really was large ...
    assert small.memory_mb < 0.6 * big.memory_mb  # ... and the next run in that process is not charged for it
