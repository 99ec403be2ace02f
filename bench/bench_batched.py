"""K tiny models per step (arena.batched.train_many) vs the same K runs one after another (arena.train.train).

Both sides train the same K configurations (seeds x learning rates), from the same initial weights, on the same
batches, for the same number of steps, with validation reduced to one example (train sets of 512 examples, so
building them costs little next to training). Repeats alternate between the two sides so machine
noise hits both; the ratio of the median wall times is the speed-up. The load average is printed beside it.

A third line is the ceiling of any stacking: ONE model trained with a K-times larger batch for the same steps
(every operation issued once for K x B sequences, one optimizer). K sequential runs over that time bound what
stacking K models can gain on this machine at this size.

    OMP_NUM_THREADS=1 python bench/bench_batched.py --arch rnn --d-model 16 --task recall-depth --depth 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from arena.batched import train_many
from arena.runner import build_for, prepare
from arena.spec import RunSpec
from arena.succinctness import arch_overrides
from arena.train import train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="rnn")
    ap.add_argument("--task", default="recall-depth")
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=16)
    ap.add_argument("--n-layers", type=int, default=None)
    ap.add_argument("--k", type=int, default=6, help="models: seeds x 2 learning rates")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    torch.set_num_threads(1)
    n_layers = args.n_layers or (1 if args.arch == "rnn" else 2)
    arch_cfg = {"n_heads": 2} if args.arch == "transformer" else {}
    combos = [(seed, lr) for seed in range((args.k + 1) // 2) for lr in (3e-3, 1e-3)][: args.k]
    res = [prepare(RunSpec(arch=args.arch, task=args.task, split="iid", d_model=args.d_model, n_layers=n_layers,
                           seed=seed, arch_config=arch_cfg, task_config={"depth": args.depth}, latency={"enabled": False}),
                   [f"train.lr={lr}", f"train.max_steps={args.steps}", f"train.eval_every={10 * args.steps}",
                    "train.early_stop=null", "train.warmup_steps=10", "train.max_eval_examples=1",
                    "task.n_train=512", *arch_overrides(args.arch, args.set)])
           for seed, lr in combos]
    for r in res:
        _ = r.task.splits  # build the data outside the timed region

    def sequential() -> float:
        models = [build_for(r) for r in res]
        t0 = time.perf_counter()
        for m, r in zip(models, res, strict=True):
            train(m, r.task, r.spec.train, r.spec.seed)
        return time.perf_counter() - t0

    def stacked() -> float:
        models = [build_for(r) for r in res]
        t0 = time.perf_counter()
        train_many(models, [r.task for r in res], [r.spec.train for r in res], [r.spec.seed for r in res])
        return time.perf_counter() - t0

    big = prepare(RunSpec.model_validate(res[0].spec.model_dump()),
                  [f"train.batch_size={len(res) * res[0].spec.train.batch_size}"])
    _ = big.task.splits

    def one_big_batch() -> float:
        model = build_for(big)
        t0 = time.perf_counter()
        train(model, big.task, big.spec.train, big.spec.seed)
        return time.perf_counter() - t0

    stacked()  # warm-up (first vmap trace)
    seq_t, bat_t, big_t = [], [], []
    for _ in range(args.repeats):
        seq_t.append(sequential())
        bat_t.append(stacked())
        big_t.append(one_big_batch())
    s, b, c = statistics.median(seq_t), statistics.median(bat_t), statistics.median(big_t)
    r0 = res[0]
    params = sum(p.numel() for p in build_for(r0).parameters())
    print(f"{args.arch} d_model={args.d_model} n_layers={n_layers} on {args.task} d={args.depth} "
          f"(seq len {r0.task.max_seq_len}, batch {r0.spec.train.batch_size}, {params:,} params), K={len(res)} models, "
          f"{args.steps} steps each, 1 thread")
    print(f"  {len(res)} sequential runs   median {s:7.2f} s   ({s / len(res) / args.steps * 1e3:6.2f} ms per model-step)")
    print(f"  one stack of {len(res)}       median {b:7.2f} s   ({b / len(res) / args.steps * 1e3:6.2f} ms per model-step)")
    print(f"  ceiling: 1 model, batch x{len(res)} median {c:7.2f} s   (stacking can gain at most {s / c:5.2f}x)")
    print(f"  speed-up {s / b:5.2f}x   load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
