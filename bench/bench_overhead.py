"""Share of a default run's wall time spent on measurement and recording (target <= 10 %).

Runs ``arena run --arch rnn --task scan-depth`` (defaults unless --max-steps is given) through the library,
timing each phase: preparing (config, task data), training, evaluation, measurement (params, analytic +
counted FLOPs, latency, memory, hardware) and recording (database writes: the running row, heartbeats, the
completing transaction).

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python bench/bench_overhead.py
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from arena.runner import checkpoint_path, execute, identity, prepare
from arena.spec import RunSpec
from arena.store import open_store, repo


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="rnn")
    ap.add_argument("--task", default="scan-depth")
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    res = prepare(RunSpec(arch=args.arch, task=args.task),
                  overrides=[f"train.max_steps={args.max_steps}"] if args.max_steps else None)
    _ = res.task.splits
    t_prep = time.perf_counter()
    record = 0.0
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        engine = open_store(f"sqlite:///{d}/arena.db")
        repo.mark_stale_runs(engine)
        run_id = repo.create_run(engine, **identity(res))
        record += time.perf_counter() - t
        beats = [0.0]

        def beat(step: int) -> None:
            tb = time.perf_counter()
            repo.heartbeat(engine, run_id, step=step)
            beats[0] += time.perf_counter() - tb

        from arena.runner import _Silent

        t_exec = time.perf_counter()
        payload = execute(res, checkpoint_path(res.config_hash).with_name("bench.pt"), False, _Silent(), None, beat)
        exec_s = time.perf_counter() - t_exec
        t = time.perf_counter()
        repo.complete_run(engine, run_id, payload)
        record += time.perf_counter() - t + beats[0]
    wall = time.perf_counter() - t0
    ph = payload.extra["phase_seconds"]
    measure = ph["measure"]
    rows = [("prepare (config + task data)", t_prep - t0), ("build + train (incl. checkpoints)", ph["build_and_train"]),
            ("evaluate (all splits, greedy generation)", ph["evaluate"]), ("measure (params, FLOPs, latency, memory)", measure),
            ("record (database writes)", record), ("other", exec_s - sum(ph.values()))]
    print(f"{args.arch} on {args.task}, {res.spec.train.max_steps} steps, {args.threads} thread(s); wall {wall:.1f} s")
    for name, sec in rows:
        print(f"  {name:44s} {sec:8.2f} s  {100 * sec / wall:5.1f} %")
    share = (measure + record) / wall
    print(f"  measurement + recording share of wall time = {100 * share:.2f} %  (target <= 10 %)")


if __name__ == "__main__":
    main()
