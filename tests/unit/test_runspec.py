"""Config validation: strict fields, overrides, the parameter-budget sizing and the config hash."""

from __future__ import annotations

import pytest

from arena.errors import ArenaError
from arena.registry import get_arch, get_task
from arena.runner import prepare
from arena.spec import RunSpec, TrainConfig


def test_unknown_field_rejected():
    with pytest.raises(Exception, match="extra|Extra|forbid"):
        TrainConfig(max_stepz=3)
    with pytest.raises(ArenaError, match="unknown field 'bogus'"):
        prepare(RunSpec(arch="rnn", task="scan-depth", arch_config={"bogus": 1}))


def test_override_routing_and_errors():
    arch, task = get_arch("rnn"), get_task("scan-depth")
    from arena.spec import apply_overrides

    spec = apply_overrides(RunSpec(arch="rnn", task="scan-depth"),
                           ["cell=gru", "train.lr=0.01", "task.n_train=100", "max_steps=7"], arch, task)
    assert spec.arch_config == {"cell": "gru"} and spec.train.lr == 0.01 and spec.train.max_steps == 7
    assert spec.task_config == {"n_train": 100}
    with pytest.raises(ArenaError, match="unknown config key 'celll'.*did you mean 'cell'"):
        apply_overrides(RunSpec(arch="rnn", task="scan-depth"), ["celll=gru"], arch, task)
    with pytest.raises(ArenaError, match="architecture 'rnn'.*cell.*got 'transformer'"):
        prepare(RunSpec(arch="rnn", task="scan-depth"), overrides=["arch.cell=transformer"])
    with pytest.raises(ArenaError, match="KEY=VALUE"):
        apply_overrides(RunSpec(arch="rnn", task="scan-depth"), ["novalue"], arch, task)
    with pytest.raises(ArenaError, match="max_steps"):
        apply_overrides(RunSpec(arch="rnn", task="scan-depth"), ["train.max_steps=-5"], arch, task)


def test_bad_task_values_name_the_field():
    with pytest.raises(ArenaError, match="train_depths"):
        prepare(RunSpec(arch="rnn", task="scan-depth", task_config={"train_depths": [3, 1]}))
    with pytest.raises(ArenaError, match="unknown split 'dept'.*did you mean 'depth'"):
        prepare(RunSpec(arch="rnn", task="scan-depth", split="dept"))


def test_config_hash_is_stable_and_sensitive():
    base = RunSpec(arch="rnn", task="scan-depth", task_config={"n_train": 100})
    a, b = prepare(base), prepare(base)
    assert a.config_hash == b.config_hash and len(a.config_hash) == 64
    c = prepare(base.model_copy(update={"seed": 1}))
    d = prepare(base, overrides=["cell=gru"])
    assert len({a.config_hash, c.config_hash, d.config_hash}) == 3
    # spelling a default explicitly is the same experiment
    e = prepare(base, overrides=["cell=lstm"])
    assert e.config_hash == a.config_hash


def test_new_train_fields_leave_earlier_hashes_unchanged():
    """``patience`` was added after runs were recorded: at its default it must not change any config hash (sweeps
    resume by hash). The pinned value is this spec's hash computed by the code before the field existed."""
    base = RunSpec(arch="rnn", task="scan-depth", task_config={"n_train": 100})
    assert prepare(base).config_hash == "c83c5b78d4515b1b7207d606131904534ad87476270fe604749af917a5210502"
    assert prepare(base, overrides=["train.patience=5"]).config_hash != prepare(base).config_hash


def test_param_budget_lands_within_5_percent():
    for budget in (50_000, 400_000, 2_000_000):
        res = prepare(RunSpec(arch="rnn", task="scan-depth", params=budget, task_config={"n_train": 50}))
        from arena.blocks import analytic_params

        total = analytic_params(res.arch, res.shape, res.arch_cfg)["total"]
        assert abs(total - budget) <= 0.05 * budget, (budget, total)
    with pytest.raises(ArenaError, match="parameter budget"):
        prepare(RunSpec(arch="rnn", task="scan-depth", params=10, task_config={"n_train": 50}))
