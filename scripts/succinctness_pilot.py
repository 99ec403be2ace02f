"""Pilot for a succinctness search: how many steps a task needs, and what a run costs, per architecture and depth.

Trains one width per (arch, depth) with one seed (``--seed``, default 0) and each learning rate as one stack
(arena.batched), validating every --eval-every steps, and prints one JSON line per run: the validation curve, the step at which validation
first reached --target, and the CPU seconds per training step. Nothing is written to a database.

    python scripts/succinctness_pilot.py --task recall-depth --archs rnn,transformer,mamba --depths 1,3 \
        --width 32 --steps 1500 --lrs 3e-3,1e-3 --set task.vocab_size=128 --set train.online=true

Two diagnostics of a plateau: ``--head tied|untied`` overrides the task's choice of output head (nested parity's
collapse came from a tied head); ``--mixed`` trains on every depth 1..d at once (split ``depth``; the val set then
mixes those depths, and the line gives the validation score per depth, ``val_by_depth``); ``--cumulative`` trains on
depths 1..d mixed and validates at d alone (split ``upto``, the search's ``--protocol cumulative``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

from arena.batched import train_many
from arena.evaluate import evaluate_examples
from arena.runner import build_for, prepare
from arena.spec import RunSpec
from arena.succinctness import arch_overrides


def build(res, head: str) -> torch.nn.Module:
    """The run's model (``build_for``, seeded with the run's seed); ``head`` tied/untied overrides the task's
    output-head choice (a different head changes the draw order, so the other weights differ too)."""
    if head != "task":
        res = dataclasses.replace(res, shape=dataclasses.replace(res.shape, tie_embeddings=head == "tied"))
    return build_for(res)


def by_depth(model: torch.nn.Module, res) -> dict[str, float]:
    """The task metric on the validation set, per depth (the examples' ``depth`` slice)."""
    out = evaluate_examples(model, res.task, res.task.splits["val"])
    return {d: round(v[res.task.metric], 3) for d, v in out["slices"]["depth"].items()}


def task_setup(depth: int, variant: str | None, mixed: bool, cumulative: bool) -> tuple[str, dict]:
    """The split and task config of a pilot at ``depth``: iid (depth d alone), mixed (split depth: train and
    validate on 1..d; the test_ood depth d+1 only completes the split and is not scored) or cumulative (split
    upto: train on 1..d, validate at d)."""
    cfg = {"variant": variant} if variant else {}
    if mixed:
        return "depth", cfg | {"train_depths": [1, depth], "test_depths": [depth + 1, depth + 1]}
    return ("upto" if cumulative else "iid"), cfg | {"depth": depth}


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
    ap.add_argument("--head", choices=["task", "tied", "untied"], default="task",
                    help="output head: the task's choice (default) or forced tied/untied")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--mixed", action="store_true", help="train on depths 1..d mixed (split depth), score per depth")
    how.add_argument("--cumulative", action="store_true",
                    help="train on depths 1..d mixed, validate at d alone (split upto: the search's cumulative protocol)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    torch.set_num_threads(1)
    layers = dict(p.split("=") for p in args.n_layers.split(","))
    for arch in args.archs.split(","):
        for depth in (int(d) for d in args.depths.split(",")):
            split, task_cfg = task_setup(depth, args.variant, args.mixed, args.cumulative)
            arch_over = arch_overrides(arch, args.set)  # ARCH:KEY=VALUE, and arch.X only where the arch has X
            res = [prepare(RunSpec(arch=arch, task=args.task, split=split,
                                   d_model=args.width,
                                   n_layers=int(layers.get(arch, 2)), seed=args.seed, task_config=task_cfg,
                                   latency={"enabled": False}),
                           [f"train.lr={lr}", f"train.max_steps={args.steps}", f"train.eval_every={args.eval_every}",
                            f"train.early_stop={args.target}", *arch_over])
                   for lr in (float(x) for x in args.lrs.split(","))]
            models = [build(r, args.head) for r in res]
            t0, c0 = time.perf_counter(), time.process_time()
            states = train_many(models, [r.task for r in res], [r.spec.train for r in res], [args.seed] * len(res))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            steps = sum(s.step for s in states)
            for r, s, m in zip(res, states, models, strict=True):
                vals = [(c["step"], c["val"]) for c in s.curve if "val" in c]
                print(json.dumps({"task": args.task, "arch": arch, "depth": depth, "width": args.width,
                                  "lr": r.spec.train.lr, "params_non_embedding": sum(
                                      p.numel() for n, p in models[0].named_parameters() if "embed" not in n),
                                  "best_val": s.best_val, "steps": s.step,
                                  "first_step_at_target": next((st for st, v in vals if v >= args.target), None),
                                  "val_curve": vals, "head": args.head, "mixed": args.mixed,
                                  "cumulative": args.cumulative,
                                  "val_by_depth": by_depth(m, r) if args.mixed else None,
                                  "cpu_ms_per_model_step": round(1e3 * cpu / max(1, steps), 2),
                                  "wall_s": round(wall, 1), "seq_len": r.task.max_seq_len}), flush=True)


if __name__ == "__main__":
    main()
