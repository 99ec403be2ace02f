"""Tasks without the trainer: build a task by name, sample padded batches, export a split to files.

Example::

    from arena.data import load_task, sample_batch
    task = load_task("scan", split="length", n_train_max=2000)
    x, y, slices = sample_batch(task, "train", n=32, seed=0)   # x, y: LongTensor[32, T]; y is -100 where unscored

``--set key=value`` strings from the CLI go through :func:`parse_overrides` then :func:`make_task_config`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from arena.api import IGNORE, Example, Task, TaskConfig
from arena.errors import ArenaError, format_errors, suggest


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """``["a=1", "b=[0,3]", "c=some/path"]`` -> ``{"a": 1, "b": [0, 3], "c": "some/path"}``, parsed as every
    ``--set`` is (:func:`arena.spec.parse_value`)."""
    from arena.spec import parse_pair

    return dict(parse_pair(p) for p in pairs)


def make_task_config(config_cls: type[TaskConfig], overrides: Mapping[str, Any], task: str = "") -> TaskConfig:
    """Validate overrides into the task's config; unknown or invalid fields become a clean :class:`ArenaError`."""
    fields = config_cls.model_fields
    unknown = [k for k in overrides if k not in fields]
    if unknown:
        k = unknown[0]
        hint = suggest(k, fields)
        if "did you mean" in hint:
            hint += f" (valid fields: {', '.join(fields)})"
        raise ArenaError(f"unknown config field {k!r} for task {task!r}{hint or '; it takes no config fields'}")
    try:
        return config_cls(**overrides)
    except ValidationError as exc:
        raise ArenaError(f"invalid config for task {task!r}: {format_errors(exc)}") from None


def load_task(name: str, split: str | None = None, seed: int = 0, **cfg: Any) -> Task:
    """Build a registered task (unknown names and fields raise :class:`ArenaError` with suggestions)."""
    from arena.registry import get_task

    spec = get_task(name)
    config = make_task_config(spec.config, cfg, name)
    if split is not None and split not in spec.cls.split_names:
        raise ArenaError(f"unknown split {split!r} for task {name!r}{suggest(split, spec.cls.split_names)}")
    return spec.cls(config, seed=seed, split=split)


def collate(examples: list[Example]) -> tuple[Any, Any]:
    """Right-padded ``(inputs, targets)``: inputs = tokens[:-1] (pad 0), targets = tokens[1:] where the mask is
    set, else -100."""
    import torch

    t = max(len(e.tokens) for e in examples) - 1
    x = torch.zeros(len(examples), t, dtype=torch.long)
    y = torch.full((len(examples), t), IGNORE, dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.tokens) - 1
        x[i, :n] = torch.tensor(e.tokens[:-1])
        tgt = torch.tensor(e.labels)
        m = torch.tensor(e.mask, dtype=torch.bool)
        y[i, :n] = torch.where(m, tgt, torch.full_like(tgt, IGNORE))
    return x, y


def sample_batch(task: Task, split: str, n: int, seed: int = 0) -> tuple[Any, Any, dict[str, Any]]:
    """``n`` examples of ``split`` drawn with replacement (a pure function of task, split, n and seed).

    Returns ``(inputs LongTensor[N, T], targets LongTensor[N, T] with -100, slices)``; ``slices`` maps each slice
    name to a LongTensor[N] (or a list when its values are strings).
    """
    import torch

    if split not in task.splits:
        raise ArenaError(f"task {task.name!r} has no split {split!r}{suggest(split, task.splits)}")
    pool = task.splits[split]
    rng = random.Random(f"sample:{task.name}:{split}:{seed}")
    chosen = [pool[rng.randrange(len(pool))] for _ in range(n)]
    x, y = collate(chosen)
    keys = sorted({k for e in chosen for k in e.slices})
    slices: dict[str, Any] = {}
    for k in keys:
        vals = [e.slices.get(k) for e in chosen]
        slices[k] = torch.tensor(vals) if all(isinstance(v, int) for v in vals) else vals
    return x, y, slices


def export_task(task: Task, out: Path) -> dict[str, int]:
    """Write the task's examples under ``out``; return ``{file name: lines}``.

    A task with ``official_lines()`` (SCAN) writes ``<set>.txt`` in its own line format; every other task writes
    ``<set>.jsonl`` with ``input``, ``target`` and ``slices`` per line, for every set of the split.
    """
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    official = task.official_lines()
    if official is not None:
        for key, lines in official.items():
            path = out / f"{key}.txt"
            path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
            written[path.name] = len(lines)
        return written
    for key, examples in task.splits.items():
        path = out / f"{key}.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for ex in examples:
                f.write(json.dumps(task.describe_example(ex)) + "\n")
        written[path.name] = len(examples)
    return written
