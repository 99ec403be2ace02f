"""arena's training loop vs a bare hand-written PyTorch loop on the same model and batches (target <= 1.05x).

Both loops do forward, cross-entropy, backward, clip, AdamW step and LR schedule on identical batches. The bare
loop gets its batches pre-collated as tensors (the strictest baseline: it pays nothing for data); the arena loop
samples and collates Examples itself and keeps its bookkeeping. Chunks of steps alternate between the two so
machine noise hits both; the median per-step time of each is compared.

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python bench/bench_train_loop.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from arena.api import IGNORE
from arena.blocks import build_model
from arena.evaluate import collate
from arena.runner import prepare
from arena.spec import RunSpec
from arena.train import lr_lambda, param_groups, train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="rnn")
    ap.add_argument("--task", default="scan-depth")
    ap.add_argument("--size", default="small")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    res = prepare(RunSpec(arch=args.arch, task=args.task, size=args.size),
                  overrides=[f"train.max_steps={args.steps}", "train.early_stop=null",
                             f"train.eval_every={10 * args.steps}", f"train.checkpoint_every={10 * args.steps}"])
    cfg, task = res.spec.train, res.task

    def arena_chunk(seed: int) -> list[float]:
        torch.manual_seed(0)
        model = build_model(res.arch, res.shape, res.arch_cfg)
        stamps: list[float] = []
        train(model, task, cfg, seed, on_step=lambda s, i: stamps.append(time.perf_counter()))
        return [b - a for a, b in zip(stamps[:-2], stamps[1:-1], strict=True)]  # the last step also runs the final validation

    def bare_chunk(seed: int) -> list[float]:
        torch.manual_seed(0)
        model = build_model(res.arch, res.shape, res.arch_cfg)
        gen = torch.Generator().manual_seed(seed)
        data = task.splits["train"]
        batches = [collate([data[i] for i in torch.randint(len(data), (cfg.batch_size,), generator=gen).tolist()])
                   for _ in range(cfg.max_steps)]
        opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
        model.train()
        stamps = []
        for x, y in batches:
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            stamps.append(time.perf_counter())
        return [b - a for a, b in zip(stamps[:-2], stamps[1:-1], strict=True)]

    arena_t, bare_t = [], []
    for r in range(args.repeats):
        arena_t += arena_chunk(r)
        bare_t += bare_chunk(r)
    a, b = statistics.median(arena_t), statistics.median(bare_t)
    print(f"{args.arch} on {args.task} ({args.size}, batch {cfg.batch_size}, {args.threads} thread(s)), "
          f"{len(arena_t)} steps each")
    print(f"  arena loop  median step {a * 1e3:8.2f} ms")
    print(f"  bare loop   median step {b * 1e3:8.2f} ms")
    print(f"  ratio arena/bare = {a / b:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
