"""The trainer's two stopping rules: the validation target (``early_stop``) and the plateau (``patience``)."""

from __future__ import annotations

import torch

from arena.blocks import build_model
from arena.runner import prepare
from arena.spec import RunSpec
from arena.train import train


def _setup(*overrides: str):
    res = prepare(RunSpec(arch="rnn", task="scan-depth", size="tiny", task_config={"n_train": 64, "n_val": 16, "n_test_per_depth": 2}),
                  overrides=list(overrides))
    torch.manual_seed(0)
    return build_model(res.arch, res.shape, res.arch_cfg), res


def test_plateau_stops_after_patience_checks_without_a_new_best():
    # a learning rate of 1e-9 leaves the weights (hence the validation score) unchanged: the first check sets the
    # best, the next `patience` checks cannot beat it
    model, res = _setup("train.lr=1e-9", "train.eval_every=2", "train.patience=3", "train.max_steps=100",
                        "train.warmup_steps=0", "train.early_stop=null")
    state = train(model, res.task, res.spec.train, seed=0)
    assert state.stop_reason == "plateau" and state.stopped_early
    assert state.step == 2 * (1 + 3)
    assert [c["step"] for c in state.curve if "val" in c] == [2, 4, 6, 8]


def test_no_patience_runs_the_budget_and_target_stop_is_reported():
    model, res = _setup("train.lr=1e-9", "train.eval_every=2", "train.max_steps=10", "train.warmup_steps=0",
                        "train.early_stop=null")
    state = train(model, res.task, res.spec.train, seed=0)
    assert state.step == 10 and state.stop_reason is None and not state.stopped_early
    model, res = _setup("train.eval_every=2", "train.max_steps=10", "train.early_stop=0.0", "train.patience=1")
    state = train(model, res.task, res.spec.train, seed=0)
    assert state.step == 2 and state.stop_reason == "target"
