"""Pilot for a succinctness search: how many steps a task needs, and what a run costs, per architecture and depth.

Trains one width per (arch, depth) with seed 0 and each learning rate as one stack (arena.batched), validating
every --eval-every steps, and prints one JSON line per run: the validation curve, the step at which validation
first reached --target, and the CPU seconds per training step. Nothing is written to a database.

    python scripts/succinctness_pilot.py --task recall-depth --archs rnn,transformer,mamba --depths 1,3 \
        --width 32 --steps 1500 --lrs 3e-3,1e-3 --set task.vocab_size=128 --set train.online=true
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from arena.batched import train_many
from arena.runner import build_for, prepare
from arena.spec import RunSpec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="recall-depth")
    ap.add_argument("--variant", default=None)
    ap.add_argument("--archs", default="rnn,transformer,mamba")
    ap.add_argument("--depths", default="1,3")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--lrs", default="3e-3,1e-3")
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--n-layers", default="rnn=1,transformer=2,mamba=2")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    torch.set_num_threads(1)
    layers = dict(p.split("=") for p in args.n_layers.split(","))
    for arch in args.archs.split(","):
        for depth in (int(d) for d in args.depths.split(",")):
            task_cfg = {"depth": depth} | ({"variant": args.variant} if args.variant else {})
            arch_over = [o for o in args.set if not o.startswith("arch.") or arch == "transformer"]
            res = [prepare(RunSpec(arch=arch, task=args.task, split="iid", d_model=args.width,
                                   n_layers=int(layers.get(arch, 2)), seed=0, task_config=task_cfg,
                                   latency={"enabled": False}),
                           [f"train.lr={lr}", f"train.max_steps={args.steps}", f"train.eval_every={args.eval_every}",
                            f"train.early_stop={args.target}", *arch_over])
                   for lr in (float(x) for x in args.lrs.split(","))]
            models = [build_for(r) for r in res]
            t0, c0 = time.perf_counter(), time.process_time()
            states = train_many(models, [r.task for r in res], [r.spec.train for r in res], [0] * len(res))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            steps = sum(s.step for s in states)
            for r, s in zip(res, states, strict=True):
                vals = [(c["step"], c["val"]) for c in s.curve if "val" in c]
                print(json.dumps({"task": args.task, "arch": arch, "depth": depth, "width": args.width,
                                  "lr": r.spec.train.lr, "params_non_embedding": sum(
                                      p.numel() for n, p in models[0].named_parameters() if "embed" not in n),
                                  "best_val": s.best_val, "steps": s.step,
                                  "first_step_at_target": next((st for st, v in vals if v >= args.target), None),
                                  "val_curve": vals, "cpu_ms_per_model_step": round(1e3 * cpu / max(1, steps), 2),
                                  "wall_s": round(wall, 1), "seq_len": r.task.max_seq_len}), flush=True)


if __name__ == "__main__":
    main()
