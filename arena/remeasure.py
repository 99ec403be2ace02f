"""Re-time recorded runs from their checkpoints: latency and peak memory measured again (on a quiet machine, say),
with the figures they replace kept in the run's history.

Latency on a loaded machine is slow and bimodal (two seeds of one model timed at 9.7 and 30.3 ms). ``arena
remeasure RUN_ID...`` rebuilds each completed run (its resolved spec, task and final weights, :mod:`arena.stored`),
and measures in the same order as the run did: the peak-memory window opens before the task is built, a few
training steps at the run's batch size (the optimizer state and activations of training; the weights used for
timing are the checkpoint's, restored afterwards), one evaluation batch, then latency on a real input of typical
length with the run's latency settings, and the load average. The run's row gets the new latency, throughput,
threads, load average, memory and hardware; ``extra["measurements"]`` keeps every earlier set of figures with when
and on what they were measured. Scores are never touched.
"""

from __future__ import annotations

import copy
import os
import time
from datetime import UTC, datetime
from typing import Any

from arena.errors import ArenaError

# the figures a remeasurement replaces (runs columns); the history keeps the old values of each
REPLACED = ("latency_p50_ms", "latency_p90_ms", "latency_batch", "throughput_per_s", "threads", "memory_mb",
            "load_avg_1m")
TRAIN_STEPS = 2  # enough to allocate AdamW's state and a backward pass at the run's batch size


def remeasure_run(engine: Any, run_id: int, *, min_run_time: float | None = None,
                  memory: bool = True) -> dict[str, Any]:
    """Measure one stored run again and record it; returns ``{"run_id", "old", "new", "hardware"}``."""
    import torch

    from arena.measure import memory as run_memory
    from arena.measure.hardware import hardware
    from arena.measure.latency import measure_latency, typical_input
    from arena.runner import headline_split
    from arena.store import repo
    from arena.stored import load_run

    device = "cpu"
    scope = run_memory.start_run(device)  # the window covers the task build too, as in a run
    stored = load_run(engine, run_id, device=device)
    run, res, model = stored.run, stored.res, stored.model
    threads = run.threads or res.spec.threads or 1
    torch.set_num_threads(threads)
    weights = copy.deepcopy(model.state_dict())
    if memory:
        _training_footprint(model, res, device)
        model.load_state_dict(weights)
    model.eval()
    seq_len, tokens = typical_input(res.task, headline_split(res.task))
    lat_cfg = res.spec.latency
    lat = measure_latency(model, seq_len, lat_cfg.batch, min_run_time or lat_cfg.min_run_time, device, tokens)
    new = {"latency_p50_ms": lat["p50_ms"], "latency_p90_ms": lat["p90_ms"], "latency_batch": lat["batch"],
           "throughput_per_s": lat["throughput_per_s"], "threads": lat["threads"],
           "load_avg_1m": lat.get("load_avg_1m", os.getloadavg()[0])}
    if memory:
        new["memory_mb"] = run_memory.peak_memory_mb(device)
    old = {k: getattr(run, k, None) for k in REPLACED}
    entry = {**old, "hardware": run.hardware, "memory_scope": (run.extra or {}).get("memory_scope"),
             "measured_at": _measured_at(run), "replaced_at": datetime.now(UTC).isoformat(),
             "replaced_by": "arena remeasure"}
    hw = hardware(device)
    repo.record_remeasurement(engine, run_id, new, hw, entry,
                              {"memory_scope": "remeasure" if scope == "run" else "process",
                               "remeasured_at": entry["replaced_at"]})
    return {"run_id": run_id, "old": old, "new": new, "hardware": hw}


def _measured_at(run: Any) -> str | None:
    """When the figures being replaced were taken: the last remeasurement, else when the run finished."""
    when = (run.extra or {}).get("remeasured_at") or run.finished_at
    return when.isoformat() if isinstance(when, datetime) else when


def _training_footprint(model: Any, res: Any, device: str) -> None:
    """A few real training steps and one evaluation batch, so the peak memory includes what training holds."""
    from arena.evaluate import evaluate_task
    from arena.train import train

    if res.arch.trainer == "custom":
        raise ArenaError(f"run of {res.arch.name!r}: a custom trainer cannot be stepped to measure training memory; "
                         "use --no-memory to re-time latency only")
    cfg = res.spec.train.model_copy(update={"max_steps": TRAIN_STEPS, "eval_every": 10**9, "early_stop": None})
    train(model, res.task, cfg, res.spec.seed, device=device)
    evaluate_task(model, res.task, cfg.eval_batch_size, device, cfg.eval_batch_size)


def remeasure(run_ids: list[int], db: str | None = None, *, min_run_time: float | None = None, memory: bool = True,
              progress: Any = None) -> list[dict[str, Any]]:
    """:func:`remeasure_run` for each id, in order; the first error stops with its run named."""
    from arena.store import open_store

    engine = open_store(db)
    out = []
    if progress is not None:
        progress.phase("remeasuring", total=len(run_ids))
    for i, run_id in enumerate(run_ids):
        t0 = time.perf_counter()
        try:
            result = remeasure_run(engine, run_id, min_run_time=min_run_time, memory=memory)
        except ArenaError as exc:
            raise ArenaError(str(exc) if str(exc).startswith(f"run {run_id}") else f"run {run_id}: {exc}") from None
        result["seconds"] = time.perf_counter() - t0
        out.append(result)
        if progress is not None:
            progress.advance(i + 1)
    return out


__all__ = ["remeasure", "remeasure_run", "REPLACED"]
