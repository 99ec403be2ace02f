"""Analytic vs counted FLOPs for every registered architecture (ratio table).

For each architecture at its small preset on sequences of length L: the analytic forward FLOPs per example
(total, and the matmul + attention part a counter can see) and torch's FlopCounterMode count (MATH SDPA
backend). ratio = counted / analytic(matmul + attention). Known blind spots of the counter on CPU: nn.LSTM
(counts 0), FFTs, scans, cumsum and elementwise ops (SPECS.md §6, docs/flops.md).

    OMP_NUM_THREADS=1 python bench/bench_flops.py
"""

from __future__ import annotations

import argparse

import torch

from arena.blocks import analytic_flops, build_model
from arena.measure.flops import COUNTED_PARTS, counted_forward_flops
from arena.registry import ARCHS
from arena.runner import prepare
from arena.spec import RunSpec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--size", default="small")
    args = ap.parse_args()
    torch.set_num_threads(1)
    L = args.seq_len
    print(f"{'arch':14s} {'analytic total':>15s} {'analytic mm+attn':>17s} {'counted':>14s} {'ratio':>7s}  not counted")
    for name in ARCHS.names():
        spec = ARCHS.get(name)
        if spec.task_specific or spec.requires:
            print(f"{name:14s} {'n/a':>15s}  (task-specific or needs {spec.requires or 'its task'})")
            continue
        res = prepare(RunSpec(arch=name, task="scan-depth", size=args.size, task_config={"n_train": 50}))
        torch.manual_seed(0)
        model = build_model(res.arch, res.shape, res.arch_cfg).eval()
        br = analytic_flops(res.arch, res.shape, res.arch_cfg, L)
        total = sum(br.values()) * L
        seen = sum(br.get(k, 0.0) for k in COUNTED_PARTS) * L
        counted = counted_forward_flops(model, torch.ones(1, L, dtype=torch.long), spec.counts_flops_with_grad)
        missed = ", ".join(f"{k} {100 * v * L / total:.1f}%" for k, v in br.items() if k not in COUNTED_PARTS and v)
        print(f"{name:14s} {total:15.4g} {seen:17.4g} {counted:14.4g} {counted / seen:7.3f}  {missed}")


if __name__ == "__main__":
    main()
