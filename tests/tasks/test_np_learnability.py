"""NP-flat learnability: nested-parity's head is untied from the input embedding (Task.tie_embeddings).

With the tied head, the only targets (Y0/Y1) are never read as input, so the softmax at '?' pushes every input
embedding row the same way, Adam makes that an equal per-coordinate step, and the leaf tokens B0 and B1 become
nearly the same vector: the backbone stayed at chance (docs/succinctness.md, NP-flat).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.nn.functional import cosine_similarity

from arena.blocks import analytic_params, build_model
from arena.runner import build_for, prepare
from arena.spec import RunSpec
from arena.train import train

FLAT = {"variant": "flat"}


def _input_cosine(model: torch.nn.Module, task) -> float:
    """Mean pairwise cosine of the input embeddings of NP-flat's input tokens (near 1: all alike)."""
    ids = torch.tensor(task.vocab.ids(["<bos>", "B0", "B1", "~", "(", ")", "^", "?"]))
    e = model.embed.weight.detach()[ids]
    cos = cosine_similarity(e[:, None], e[None], dim=-1)
    n = len(ids)
    return float((cos.sum() - n) / (n * n - n))


def test_nested_parity_unties_the_head_and_other_tasks_stay_tied():
    res = prepare(RunSpec(arch="rnn", task="nested-parity", d_model=16, n_layers=1, task_config=FLAT))
    assert res.shape.tie_embeddings is False and res.config["shape"]["tie_embeddings"] is False
    model = build_model(res.arch, res.shape, res.arch_cfg)
    assert model.head is not None and model.head.weight is not model.embed.weight
    assert analytic_params(res.arch, res.shape, res.arch_cfg)["total"] == sum(p.numel() for p in model.parameters())
    other = prepare(RunSpec(arch="rnn", task="counter-chain", d_model=16, n_layers=1))
    assert other.shape.tie_embeddings is True


def test_parameter_budget_fit_counts_the_untied_head():
    res = prepare(RunSpec(arch="rnn", task="nested-parity", params=20_000, n_layers=1, task_config=FLAT))
    assert res.shape.tie_embeddings is False
    assert abs(analytic_params(res.arch, res.shape, res.arch_cfg)["total"] - 20_000) <= 1_000


def _short_run(tied: bool | None, steps: int = 200):
    res = prepare(RunSpec(arch="rnn", task="nested-parity", d_model=32, n_layers=1, seed=0,
                          task_config=FLAT | {"n_train": 2000, "n_val": 100}),
                  [f"train.max_steps={steps}", "train.eval_every=100000", "train.early_stop=null"])
    shape = res.shape if tied is None else dataclasses.replace(res.shape, tie_embeddings=tied)
    torch.manual_seed(0)
    model = build_model(res.arch, shape, res.arch_cfg)
    train(model, res.task, res.spec.train, 0)
    return model, res


def test_tied_head_collapses_the_input_embeddings_and_the_default_does_not():
    """The mechanism, in 200 steps: tied, the input tokens' embeddings end up nearly parallel (measured 0.90);
    with the task's default (untied) head they stay apart (0.18). They start near orthogonal either way."""
    tied, res = _short_run(tied=True)
    default, _ = _short_run(tied=None)
    assert _input_cosine(tied, res.task) > 0.8
    assert _input_cosine(default, res.task) < 0.4


@pytest.mark.slow
def test_rnn_learns_np_flat_depths_1_and_2_in_a_short_run():
    """A small rnn (d_model 64, 1 layer) at default training settings (AdamW 3e-3, warmup, cosine, clip 1) on the
    default mixed-depth split learns NP-flat depth 1 and most of depth 2 in 1,500 steps (measured 1.0 / 0.88);
    with the tied head it stayed at chance (0.42/0.58, a constant label). Escaping the plateau is seed-dependent
    (seed 2 of this run stays at chance at 1,500 steps): seed 0 is pinned, not chosen as a best case of many."""
    res = prepare(RunSpec(arch="rnn", task="nested-parity", d_model=64, n_layers=1, seed=0, task_config=FLAT),
                  ["train.eval_every=500", "train.early_stop=null"])
    assert res.spec.train.max_steps == 1500
    torch.manual_seed(0)
    model = build_model(res.arch, res.shape, res.arch_cfg)
    train(model, res.task, res.spec.train, 0)
    by_depth = _accuracy_by_depth(model, res.task.splits["val"])
    assert by_depth[1] >= 0.95 and by_depth[2] >= 0.75


def _accuracy_by_depth(model: torch.nn.Module, examples: list) -> dict[int, float]:
    from arena.api import IGNORE
    from arena.train import _pad

    hits: dict[int, list[bool]] = {}
    model.eval()
    with torch.no_grad():
        x, y = _pad(examples, "cpu")
        ok = ((model(x).argmax(-1) == y) | (y == IGNORE)).all(-1)
    for e, h in zip(examples, ok.tolist(), strict=True):
        hits.setdefault(e.slices["depth"], []).append(h)
    return {d: sum(h) / len(h) for d, h in hits.items()}


def test_an_untied_head_trains_the_same_stacked_and_alone():
    """arena.batched (the succinctness sweep's stacked training) handles the untied head like one run alone."""
    from arena.batched import stack_problem, train_many

    res = [prepare(RunSpec(arch="rnn", task="nested-parity", d_model=16, n_layers=1, seed=s,
                           task_config=FLAT | {"n_train": 64, "n_val": 16, "n_test": 16}),
                   [f"train.lr={lr}", "train.max_steps=20", "train.eval_every=10", "train.early_stop=null"])
           for s, lr in ((0, 3e-3), (1, 1e-3))]
    alone, together = [build_for(r) for r in res], [build_for(r) for r in res]
    assert together[0].head is not None and stack_problem(together, [r.spec.train for r in res]) is None
    for m, r in zip(alone, res, strict=True):
        train(m, r.task, r.spec.train, r.spec.seed)
    train_many(together, [r.task for r in res], [r.spec.train for r in res], [r.spec.seed for r in res])
    for a, b in zip(alone, together, strict=True):
        assert max(float((p - q).detach().abs().max()) for p, q in zip(a.parameters(), b.parameters(), strict=True)) < 1e-5


def _mamba_np_flat_default_split(eigen_range: str) -> dict[int, float]:
    """Validation accuracy per depth of a 2-layer mamba (d_model 64, seed 0) on NP-flat's default split (train
    depths 1-3 mixed, 6,000 fixed examples) at the default 1,500 steps and lr 3e-3, with weight decay 1.0."""
    res = prepare(RunSpec(arch="mamba", task="nested-parity", d_model=64, n_layers=2, seed=0, task_config=FLAT),
                  ["train.weight_decay=1.0", "train.eval_every=100000", "train.early_stop=null",
                   f"arch.eigen_range={eigen_range}"])
    assert res.spec.train.max_steps == 1500 and res.spec.train.lr == 3e-3
    model = build_for(res)
    train(model, res.task, res.spec.train, 0)
    return _accuracy_by_depth(model, res.task.splits["val"])


@pytest.mark.slow
def test_mamba_learns_np_flat_depths_1_and_2_only_with_signed_transitions():
    """Mamba-1's transition exp(ΔA) lies in (0, 1), so its state cannot flip sign, which parity needs (Sarrof et
    al. 2024; Grazzi et al. 2025); ``arch.eigen_range=signed`` maps it to (-1, 1). Same seed, data and settings
    (measured, val d = 1 / 2 / 3): signed 1.0 / 1.0 / 0.96, the published range 0.27 / 0.49 / 0.52. Seeds 1 and 2 of the signed
    model do not learn d = 2 (1.0 / 0.46 / 0.50, 0.64 / 0.43 / 0.60): seed 0 is pinned and is 1 of 3; weight
    decay 0.01 at lr 3e-3 left seed 0 at chance (0.40 / 0.61 / 0.47). About 3.5 CPU minutes per model."""
    signed, positive = (_mamba_np_flat_default_split(r) for r in ("signed", "positive"))
    assert signed[1] >= 0.95 and signed[2] >= 0.95, signed
    assert positive[2] < 0.75, positive


def _transformer_np_flat_d2(weight_decay: float) -> float:
    """Validation accuracy of the default transformer (2 layers × 4 heads, d_model 64, seed 1) on NP-flat depth 2
    (6,000 fixed examples) after 6,000 steps at lr 1e-3."""
    res = prepare(RunSpec(arch="transformer", task="nested-parity", split="iid", d_model=64, n_layers=2, seed=1,
                          task_config=FLAT | {"depth": 2}),
                  ["train.lr=1e-3", "train.max_steps=6000", f"train.weight_decay={weight_decay}",
                   "train.eval_every=100000", "train.early_stop=null"])
    model = build_for(res)
    train(model, res.task, res.spec.train, 1)
    return _accuracy_by_depth(model, res.task.splits["val"])[2]


@pytest.mark.slow
def test_transformer_generalises_on_np_flat_depth_2_with_strong_weight_decay():
    """Parity of ~11 bits from 7/8 of the sequences, same seed (1), data and 6,000 steps: with weight decay 1.0 the
    transformer sits at chance for ~4,500 steps and then generalises to the held-out eighth (measured ≥ 0.95 here;
    0.95 at step 5,000 and 0.98 at 6,000 in the stacked pilot), the memorise-then-generalise pattern of grokking;
    with the default weight decay (0.01) it has not generalised by 6,000 steps (measured 0.67 here, 0.40 in the
    stacked pilot, whose float rounding differs). Seed 1 is pinned; seed 0 with weight decay 1.0 generalises
    sooner (0.96 at 2,500 steps). About 5 CPU minutes."""
    strong, default = _transformer_np_flat_d2(1.0), _transformer_np_flat_d2(0.01)
    assert strong >= 0.95, strong
    assert default < 0.9, default
