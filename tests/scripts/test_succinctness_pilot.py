"""scripts/succinctness_pilot.py diagnostics: ``--head`` overrides the task's output head (seeded as the run is),
``--mixed`` scores validation per depth, ``--cumulative`` trains on 1..d and validates at d."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from succinctness_pilot import build, by_depth, task_setup  # noqa: E402

from arena.runner import build_for, prepare  # noqa: E402
from arena.spec import RunSpec  # noqa: E402


def _res(split: str, task_config: dict):
    return prepare(RunSpec(arch="rnn", task="recall-depth", split=split, d_model=8, n_layers=1, seed=3,
                           task_config={"vocab_size": 40, "n_train": 8, "n_val": 24, "n_test": 4} | task_config), [])


def test_head_override_changes_the_head_and_is_seeded_like_the_run():
    res = _res("iid", {"depth": 1})
    assert res.shape.tie_embeddings  # recall-depth's own choice
    untied = build(res, "untied")
    assert untied.head is not None and build(res, "task").head is None
    for a, b in zip(build(res, "tied").parameters(), build_for(res).parameters(), strict=True):
        torch.testing.assert_close(a, b)  # forcing the task's own choice builds exactly the run's model
    for a, b in zip(untied.parameters(), build(res, "untied").parameters(), strict=True):
        torch.testing.assert_close(a, b)  # seeded: the same model every time


def test_mixed_depths_are_scored_per_depth():
    res = _res("depth", {"train_depths": [1, 2], "test_depths": [3, 3]})
    scores = by_depth(build(res, "task"), res)
    assert sorted(scores) == ["1", "2"]  # the validation set holds both training depths, scored apart
    assert all(0.0 <= v <= 1.0 for v in scores.values())


def test_cumulative_trains_on_every_depth_up_to_d_and_validates_at_d_alone():
    split, cfg = task_setup(3, None, mixed=False, cumulative=True)
    res = _res(split, cfg)
    assert {e.slices["depth"] for e in res.task.splits["train"]} == {1, 2, 3}
    assert {e.slices["depth"] for e in res.task.splits["val"]} == {3}
    assert task_setup(3, "flat", False, False) == ("iid", {"variant": "flat", "depth": 3})
