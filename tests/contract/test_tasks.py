"""Contract over EVERY registered task (built-in or plugin), on a CPU-sized config: a new task is checked with no
new test. Sizes are shrunk by setting every integer ``n_*`` config field to a small number.

Checked: the registry entry loads and its metadata is coherent; every declared split builds non-empty sets;
token ids stay below the vocabulary size and the pad id 0 is ``<pad>``-like; masks have length len(tokens) - 1
and score at least one position; every example carries slices (custom-scored tasks excepted); prompts are in range for generative tasks; the
same seed gives identical data and (for generated tasks) another seed different training data.
"""

from __future__ import annotations

import types
import typing

import pytest

from arena.api import Task
from arena.errors import ArenaError
from arena.registry import TASKS, get_task

SMALL = 12
METRICS = {"token_acc", "accuracy", "exact_match"}


def _is_int_field(annotation) -> bool:
    if annotation is int:
        return True
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return int in typing.get_args(annotation)
    return False


def small_overrides(config_cls) -> dict[str, int]:
    return {name: SMALL for name, f in config_cls.model_fields.items()
            if name.startswith("n_") and _is_int_field(f.annotation)}


def build(name: str, split: str | None = None, seed: int = 0) -> Task:
    spec = get_task(name)
    task = spec.cls(spec.config(**small_overrides(spec.config)), seed=seed, split=split)
    try:
        task.splits  # noqa: B018 - building is the point
    except ArenaError as exc:  # tasks reading external data (ARENA_DATA_DIR) say so with an ArenaError
        if "data" in str(exc).lower():
            pytest.skip(f"{name}: external data not available ({exc})")
        raise
    return task


@pytest.mark.parametrize("name", TASKS.names())
def test_task_metadata(name):
    spec = get_task(name)
    cls = spec.cls
    assert spec.name == name == cls.name
    assert cls.scoring in ("generate", "teacher_forced", "custom")
    assert cls.default_split in cls.split_names
    assert cls.scoring == "custom" or cls.metric in METRICS, f"teacher-forced/generate metric {cls.metric!r}"
    assert cls.description, "a one-line description is shown by `arena list tasks`"
    cfg = spec.config()
    assert spec.config.model_validate_json(cfg.model_dump_json()) == cfg


@pytest.mark.parametrize("name", TASKS.names())
def test_task_contract(name):
    spec = get_task(name)
    for split in spec.cls.split_names:
        task = build(name, split)
        vocab = task.vocab
        assert vocab.size >= 2 and "pad" in vocab.tokens[0].lower()
        if task.higher_is_better:  # a probability-like score; lower-is-better metrics (bits/char) set their own
            assert 0.0 <= task.chance < 1.0
        else:
            assert task.chance > 0.0
        assert "train" in task.splits and task.eval_splits
        for set_name, examples in task.splits.items():
            # a custom-scored task may evaluate a split from its own data (the lm track reads its text)
            assert examples or (task.scoring == "custom" and set_name != "train"), f"{name}/{split}/{set_name} is empty"
            for ex in examples:
                assert len(ex.tokens) >= 2 and len(ex.mask) == len(ex.tokens) - 1
                assert min(ex.tokens) >= 0 and max(ex.tokens) < vocab.size, f"{name}/{split}: id out of range"
                assert any(ex.mask), f"{name}/{split}/{set_name}: an example scores nothing"
                # custom-scored tasks (e.g. the lm track) report their slices from their own evaluate()
                assert ex.slices or task.scoring == "custom", f"{name}/{split}/{set_name}: example without slices"
                if task.scoring == "generate":
                    assert ex.prompt_len is not None and 1 <= ex.prompt_len < len(ex.tokens)
                    assert all(ex.mask[ex.prompt_len - 1 :]), "generated tokens must all be scored"


@pytest.mark.parametrize("name", TASKS.names())
def test_task_determinism(name):
    a, b, c = build(name), build(name), build(name, seed=1)
    assert a.splits == b.splits, "the same seed must give identical data"
    # generated tasks only: a fixed corpus (custom-scored lm track) legitimately ignores the seed
    if len(a.splits["train"]) > 1 and a.scoring != "custom":
        assert c.splits["train"] != a.splits["train"], "another seed must give other training data"
