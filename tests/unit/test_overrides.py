"""One --set parser for every command, typed options never re-parsed from text, one validation-error format."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from arena.data import make_task_config, parse_overrides
from arena.errors import ArenaError, format_errors
from arena.registry import get_arch, get_task
from arena.spec import RunSpec, apply_overrides, parse_pair


def test_data_and_run_parse_set_values_alike():
    pairs = ["n_train=12", "train_depths=[1, 2]", "data_dir=some/path", "flag=true", "x=null"]
    assert parse_overrides(pairs) == dict(parse_pair(p) for p in pairs) == {
        "n_train": 12, "train_depths": [1, 2], "data_dir": "some/path", "flag": True, "x": None}
    with pytest.raises(ArenaError, match="KEY=VALUE"):
        parse_overrides(["oops"])


def test_typed_overrides_stay_typed_and_win_over_set():
    spec = RunSpec(arch="rnn", task="counter-chain")
    out = apply_overrides(spec, ["train.max_steps=7", ("train.max_steps", 9), ("train.lr", 3e-4)],
                          get_arch("rnn"), get_task("counter-chain"))
    assert out.train.max_steps == 9 and out.train.lr == 3e-4


def test_validation_errors_read_alike():
    with pytest.raises(ArenaError, match=r"invalid config for task 'counter-chain': depth: .*\(got 0\)"):
        make_task_config(get_task("counter-chain").config, {"depth": 0}, "counter-chain")
    with pytest.raises(ValidationError) as err:
        RunSpec.model_validate({"arch": "rnn", "task": "x", "bogus": 1})
    assert format_errors(err.value) == "unknown field 'bogus'"
