"""Latency measurement stability: coefficient of variation of p50 over repeated measurements.

Each repeat calls the runner's own ``measure_latency`` (torch.utils.benchmark, warm-up, >= 10 timed blocks) on
the same model. Run with fixed threads and passive OpenMP waiting; pass --spin to see the effect of
OMP_WAIT_POLICY=ACTIVE (the policy must be set before torch starts, so the script re-executes itself).

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python bench/bench_latency_cv.py
"""

from __future__ import annotations

import argparse
import os
import statistics

import torch

from arena.blocks import build_model
from arena.measure.latency import measure_latency
from arena.runner import prepare
from arena.spec import RunSpec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--archs", default="rnn,transformer,mamba")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seq-len", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} threads={torch.get_num_threads()} "
          f"seq_len={args.seq_len} repeats={args.repeats}")
    print(f"{'arch':14s} {'p50 mean ms':>12s} {'p50 std ms':>11s} {'CV %':>7s}   p50 per repeat (ms)")
    for name in args.archs.split(","):
        res = prepare(RunSpec(arch=name, task="scan-depth", size="small", task_config={"n_train": 50}))
        torch.manual_seed(0)
        model = build_model(res.arch, res.shape, res.arch_cfg).eval()
        p50s = [measure_latency(model, args.seq_len, 8, 0.3)["p50_ms"] for _ in range(args.repeats)]
        mean, std = statistics.mean(p50s), statistics.stdev(p50s)
        print(f"{name:14s} {mean:12.3f} {std:11.3f} {100 * std / mean:7.2f}   " + " ".join(f"{p:.3f}" for p in p50s))


if __name__ == "__main__":
    main()
