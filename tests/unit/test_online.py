"""train.online: fresh training examples every step, seeded and resumable, disjoint from the held-out sets."""

from __future__ import annotations

import pytest
import torch

from arena.errors import ArenaError
from arena.runner import build_for, prepare
from arena.spec import RunSpec
from arena.train import make_batches, train

BASE = dict(arch="rnn", task="counter-chain", d_model=16, n_layers=1, seed=3,
            task_config={"depth": 2, "n_train": 32})


def test_online_is_in_the_config_hash_and_earlier_hashes_are_unchanged():
    off = prepare(RunSpec(**BASE), ["train.lr=1e-3"])
    # the hash this run had before train.online existed (computed on the previous main)
    assert off.config_hash == "8b29b2c1a626be9e6fb9e1ee02f8684b8cd16e402f891142ab5d6f4ba1dd9022"
    on = prepare(RunSpec(**BASE), ["train.lr=1e-3", "train.online=true"])
    assert on.config_hash != off.config_hash and on.spec.train.online


@pytest.mark.parametrize("task,cfg", [("counter-chain", {"depth": 2, "n_train": 8}),
                                      ("nested-parity", {"variant": "flat", "n_train": 8}),
                                      ("mqar", {"seq_len": 16, "num_kv_pairs": 2, "n_train": 8, "n_val": 64,
                                                "n_test": 64, "vocab_size": 200, "random_non_queries": False})])
def test_online_batches_are_fresh_seeded_and_never_held_out(task, cfg):
    res = prepare(RunSpec(arch="rnn", task=task, seed=1, task_config=cfg), ["train.online=true",
                                                                             "train.batch_size=16"])
    held = {e.tokens[:-1] for s in res.task.eval_splits for e in res.task.splits[s]}
    a, b = make_batches(res.task, res.spec.train, 1), make_batches(res.task, res.spec.train, 1)
    seen = set()
    for _ in range(20):
        (xa, ya), (xb, yb) = a.next(), b.next()
        assert torch.equal(xa, xb) and torch.equal(ya, yb)  # a function of the seed
        rows = {tuple(t for t in row.tolist() if t != 0) for row in xa}
        assert not rows & held
        seen |= rows
    assert len(seen) > 5 * 8  # far more distinct sequences than the 8 of the fixed train set
    other = make_batches(res.task, res.spec.train, 2).next()[0]
    assert not torch.equal(other, make_batches(res.task, res.spec.train, 1).next()[0])


def test_online_training_resumes_exactly(tmp_path):
    res = prepare(RunSpec(**BASE), ["train.online=true", "train.max_steps=20", "train.checkpoint_every=10",
                                    "train.eval_every=10", "train.early_stop=null"])
    ck = tmp_path / "last.pt"

    def stop(state, info):
        if state.step == 14:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(build_for(res), res.task, res.spec.train, res.spec.seed, checkpoint=ck, config_hash=res.config_hash,
              on_step=stop)
    resumed = build_for(res)
    train(resumed, res.task, res.spec.train, res.spec.seed, checkpoint=ck, resume=True, config_hash=res.config_hash)
    ref = build_for(res)
    train(ref, res.task, res.spec.train, res.spec.seed)
    for p, q in zip(resumed.parameters(), ref.parameters(), strict=True):
        assert torch.equal(p, q)


def test_a_task_that_cannot_draw_online_says_so():
    res = prepare(RunSpec(arch="rnn", task="parity_check", task_config={"n_train": 8}), ["train.online=true"])
    with pytest.raises(ArenaError, match="train.online"):
        make_batches(res.task, res.spec.train, 0)
