"""Why does arena's rnn backbone stay at chance on NP-flat where a plain LSTM + linear head learns it?

Controlled ablations on one task (nested-parity flat, split iid, one depth), one training loop (arena.train) and
one seed per variant; each variant changes one thing of the backbone. Prints one line per variant: the best
validation label accuracy and the first step at which validation reached 0.95.

    python scripts/np_learnability.py --split depth --steps 1500 [--variants base,plain,untied]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn

from arena.blocks import build_model
from arena.runner import prepare
from arena.spec import RunSpec
from arena.train import train


class PlainLSTM(nn.Module):
    """Embedding -> nn.LSTM -> Linear head, PyTorch default initialisation (the reference that learns NP-flat)."""

    def __init__(self, vocab: int, d: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.rnn = nn.LSTM(d, d, batch_first=True)
        self.head = nn.Linear(d, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(self.embed(x))[0])


def variant_model(name: str, res) -> nn.Module:
    import dataclasses

    shape = res.shape
    if name == "plain":
        return PlainLSTM(shape.vocab_size, shape.d_model)
    if name == "plain_arena_init":  # the plain model with the backbone's N(0, 0.02) embedding and head
        m = PlainLSTM(shape.vocab_size, shape.d_model)
        nn.init.normal_(m.embed.weight, std=0.02)
        nn.init.normal_(m.head.weight, std=0.02)
        nn.init.zeros_(m.head.bias)
        return m
    if name == "untied":
        shape = dataclasses.replace(shape, tie_embeddings=False)
    m = build_model(res.arch, shape, res.arch_cfg)
    if name == "no_mlp":
        m.channels = None
    elif name == "no_final_norm":
        m.norm_f = nn.Identity()
    elif name == "emb_std1":
        nn.init.normal_(m.embed.weight, std=1.0)
    return m


SCRATCH = ["train.weight_decay=0", "train.warmup_steps=0", "train.min_lr_ratio=1", "train.grad_clip=1000"]
TRAIN = {"wd0": ["train.weight_decay=0"], "lr1e-3": ["train.lr=1e-3"], "lr1e-2": ["train.lr=1e-2"],
         "no_clip": ["train.grad_clip=1000"], "scratch_opt": SCRATCH}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="depth", help="depth (train depths 1-3 mixed) or iid (one depth)")
    ap.add_argument("--depth", type=int, default=2, help="the depth of split iid")
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--arch", default="rnn")
    ap.add_argument("--n-layers", type=int, default=1)
    ap.add_argument("--variants", default="plain,base,scratch_opt,plain_arena_init,emb_std1,untied,no_final_norm,"
                    "no_mlp,wd0")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    torch.set_num_threads(1)
    for v in args.variants.split(","):
        over = [f"train.max_steps={args.steps}", "train.eval_every=100", "train.early_stop=null",
                "task.n_train=6000", "task.n_val=300", *TRAIN.get(v, []), *args.set]
        task_cfg = {"variant": "flat"} | ({"depth": args.depth} if args.split == "iid" else {})
        res = prepare(RunSpec(arch=args.arch, task="nested-parity", split=args.split, d_model=args.d_model,
                              n_layers=args.n_layers, seed=args.seed, task_config=task_cfg), over)
        torch.manual_seed(args.seed)
        model = variant_model(v if v not in TRAIN else "base", res)
        t0 = time.perf_counter()
        st = train(model, res.task, res.spec.train, args.seed)
        vals = [(c["step"], c["val"]) for c in st.curve if "val" in c]
        first = next((s for s, a in vals if a >= 0.95), None)
        losses = [c["loss"] for c in st.curve if "loss" in c]
        print(json.dumps({"variant": v, "arch": args.arch, "split": args.split, "d_model": args.d_model,
                          "best_val": st.best_val, "first_step_val_0.95": first, "final_loss": losses[-1],
                          "seconds": round(time.perf_counter() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
