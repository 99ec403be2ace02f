"""Why did arena's backbone stay at chance on NP-flat where a plain LSTM + linear head learns it?

Controlled ablations on one task (nested-parity flat), one training loop (arena.train) and one seed per variant;
each variant changes one thing of the model. Prints one line per variant: the best validation label accuracy, the
first step at which validation reached 0.95, per-depth validation accuracy at the end, and ``cos_B0_B1``: the
cosine of the input embeddings of the two leaf tokens B0 and B1 after training (near 1: the model can no longer
tell its input bits apart).

The cause it found (docs/succinctness.md, NP-flat): the tied head. NP's only targets are Y0/Y1, never read as
input, so the softmax at ``?`` pushes every input token's (tied) embedding row in the same direction; Adam turns
that into equal per-coordinate steps, which swamp the N(0, 0.02) initial rows within a few hundred steps, and the
pre-norm then hands the mixer nearly the same vector for every token. nested-parity therefore declares
``tie_embeddings = False``; variant ``tied`` restores the old head.

    python scripts/np_learnability.py --split depth --d-model 64 --steps 1500 --variants base,tied,plain
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
    if name in ("untied", "tied"):
        shape = dataclasses.replace(shape, tie_embeddings=name == "tied")
    m = build_model(res.arch, shape, res.arch_cfg)
    if name == "no_mlp":
        m.channels = None
    elif name == "no_final_norm":
        m.norm_f = nn.Identity()
    elif name == "emb_std1":
        nn.init.normal_(m.embed.weight, std=1.0)
    return m


def accuracy_by_depth(model: nn.Module, examples: list) -> dict[int, float]:
    """Label accuracy per tree depth (the label is the one scored position)."""
    from arena.api import IGNORE
    from arena.train import _pad

    hits: dict[int, list[bool]] = {}
    model.eval()
    with torch.no_grad():
        for i in range(0, len(examples), 64):
            batch = examples[i : i + 64]
            x, y = _pad(batch, "cpu")
            ok = ((model(x).argmax(-1) == y) | (y == IGNORE)).all(-1)
            for e, h in zip(batch, ok.tolist(), strict=True):
                hits.setdefault(e.slices["depth"], []).append(h)
    return {d: round(sum(h) / len(h), 3) for d, h in sorted(hits.items())}


def leaf_cosine(model: nn.Module, task) -> float:
    """Cosine of the input embeddings of B0 and B1."""
    b0, b1 = task.vocab.ids(["B0", "B1"])
    e = model.embed.weight.detach()
    return round(float(torch.nn.functional.cosine_similarity(e[b0], e[b1], dim=0)), 3)


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
    ap.add_argument("--variants", default="plain,base,tied,scratch_opt,plain_arena_init,emb_std1,no_final_norm,"
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
                          "steps": args.steps, "best_val": st.best_val, "first_step_val_0.95": first,
                          "val_by_depth": accuracy_by_depth(model, res.task.splits["val"]),
                          "cos_B0_B1": leaf_cosine(model, res.task), "final_loss": losses[-1],
                          "seconds": round(time.perf_counter() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
