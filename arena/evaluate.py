"""Scoring: teacher-forced accuracy, greedy-generation exact match, and per-slice aggregation.

Metrics per example: ``token_acc`` (argmax correct at the scored positions, pooled), ``accuracy`` (per-example
mean of that, then the mean over examples — MQAR/Chomsky style), ``exact_match`` (every scored position right).
For generative tasks ``exact_match`` is the greedy generation of ``tokens[prompt_len:]`` compared as a whole, and
``tf_exact_match`` keeps the teacher-forced version (they agree for a deterministic greedy decoder; a test
checks it). Slices give the task's primary metric (and the others) for every value of every slice key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import torch

from arena.api import IGNORE, Example, Task
from arena.blocks import can_step
from arena.metrics import aggregate


def collate(examples: Sequence[Example], pad_id: int = 0, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded inputs ``tokens[:-1]`` and targets ``tokens[1:]`` (IGNORE where unscored or padded)."""
    T = max(len(e.tokens) - 1 for e in examples)
    x = torch.full((len(examples), T), pad_id, dtype=torch.long)
    y = torch.full((len(examples), T), IGNORE, dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.tokens) - 1
        toks = torch.tensor(e.tokens, dtype=torch.long)
        x[i, :n] = toks[:-1]
        m = torch.tensor(e.mask, dtype=torch.bool)
        lab = torch.tensor(e.labels, dtype=torch.long)
        y[i, :n] = torch.where(m, lab, torch.full_like(lab, IGNORE))
    return x.to(device), y.to(device)


@torch.no_grad()
def teacher_forced(model: torch.nn.Module, examples: Sequence[Example], batch_size: int, pad_id: int = 0,
                   device: str = "cpu") -> list[tuple[int, int]]:
    """Per example: (correct scored positions, scored positions)."""
    out: list[tuple[int, int]] = []
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].tokens))  # similar lengths pad less
    res: dict[int, tuple[int, int]] = {}
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        x, y = collate([examples[i] for i in idx], pad_id, device)
        pred = model(x).argmax(-1)
        scored = y != IGNORE
        correct = ((pred == y) & scored).sum(1)
        for j, i in enumerate(idx):
            res[i] = (int(correct[j]), int(scored[j].sum()))
    out = [res[i] for i in range(len(examples))]
    return out


@torch.no_grad()
def greedy_generate(model: torch.nn.Module, examples: Sequence[Example], batch_size: int,
                    device: str = "cpu") -> list[list[int]]:
    """Greedy continuation of each prompt for as many tokens as its target has (batched by prompt length)."""
    results: dict[int, list[int]] = {}
    buckets: dict[int, list[int]] = defaultdict(list)
    for i, e in enumerate(examples):
        assert e.prompt_len is not None, "generation needs prompt_len"
        buckets[e.prompt_len].append(i)
    use_step = can_step(model)
    for plen, idxs in buckets.items():
        for s in range(0, len(idxs), batch_size):
            chunk = idxs[s : s + batch_size]
            prompts = torch.tensor([examples[i].tokens[:plen] for i in chunk], dtype=torch.long, device=device)
            n_new = max(len(examples[i].tokens) - plen for i in chunk)
            gen = _generate_step(model, prompts, n_new) if use_step else _generate_full(model, prompts, n_new)
            for j, i in enumerate(chunk):
                results[i] = gen[j].tolist()
    return [results[i] for i in range(len(examples))]


def _generate_full(model: torch.nn.Module, prompts: torch.Tensor, n_new: int) -> torch.Tensor:
    seq = prompts
    for _ in range(n_new):
        nxt = model(seq)[:, -1].argmax(-1, keepdim=True)  # (B, 1)
        seq = torch.cat([seq, nxt], 1)
    return seq[:, prompts.shape[1] :]


def _generate_step(model: Any, prompts: torch.Tensor, n_new: int) -> torch.Tensor:
    state = model.init_state(prompts.shape[0])
    logits = None
    for t in range(prompts.shape[1]):
        logits, state = model.step(prompts[:, t], state)
    out = []
    for _ in range(n_new):
        nxt = logits.argmax(-1)  # (B,)
        out.append(nxt)
        logits, state = model.step(nxt, state)
    return torch.stack(out, 1)


def evaluate_examples(model: torch.nn.Module, task: Task, examples: Sequence[Example], batch_size: int = 64,
                      device: str = "cpu", generate: bool | None = None,
                      generator: Callable[[Sequence[Example]], list[list[int]]] | None = None) -> dict[str, Any]:
    """Metrics and slices for one split. ``generator`` (default: :func:`greedy_generate` with ``model``) makes the
    greedy continuations: ``arena submit`` decodes in the parent against a fresh worker, so a generation pass
    never follows a teacher-forced one in one process."""
    model.eval()
    generate = task.scoring == "generate" if generate is None else generate
    gen_match = None
    if generate:
        gens = greedy_generate(model, examples, batch_size, device) if generator is None else generator(examples)
        gen_match = [float(g[: len(e.tokens) - e.prompt_len] == list(e.tokens[e.prompt_len :]))
                     for g, e in zip(gens, examples, strict=True)]
    per = per_example(teacher_forced(model, examples, batch_size, 0, device), gen_match)
    metrics = _aggregate(per, range(len(examples)), task.metric)
    slices: dict[str, dict[str, dict[str, float]]] = {}
    keys = sorted({k for e in examples for k in e.slices})
    for key in keys:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, e in enumerate(examples):
            if key in e.slices:
                groups[str(e.slices[key])].append(i)
        slices[key] = {v: _aggregate(per, idx, task.metric) for v, idx in sorted(groups.items(), key=_slice_order)}
    return {"metrics": metrics, "slices": slices}


def _slice_order(item: tuple[str, list[int]]) -> tuple[int, float | str]:
    try:
        return (0, float(item[0]))
    except ValueError:
        return (1, item[0])


def per_example(tf: Sequence[tuple[int, int]], generated_match: Sequence[float] | None = None) -> dict[str, list[Any]]:
    """Per-example values of the built-in metrics (:mod:`arena.metrics`) from teacher-forced (correct, scored)
    counts and, for generative scoring, whether each greedy generation matched (else exact match is
    teacher-forced)."""
    tf_exact = [float(c == n and n > 0) for c, n in tf]
    return {"token_acc": list(tf), "accuracy": [c / n if n else 0.0 for c, n in tf],
            "exact_match": list(generated_match) if generated_match is not None else tf_exact,
            "tf_exact_match": tf_exact}


def _aggregate(per: dict[str, list[Any]], idx: Sequence[int] | range, primary: str) -> dict[str, float]:
    return aggregate(per, list(idx), primary)


def evaluate_task(model: torch.nn.Module, task: Task, batch_size: int = 64, device: str = "cpu",
                  max_examples: int | None = None,
                  progress: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """Evaluate every non-train split: ``{split: {"metrics": {...}, "slices": {...}}}``."""
    results = {}
    for split in task.eval_splits:
        if progress:
            progress(split)
        if task.scoring == "custom":
            custom = task.evaluate(model, split, device)
            if custom is None:
                raise ValueError(f"task {task.name!r} declares custom scoring but evaluate() returned nothing")
            results[split] = custom
            continue
        exs = task.splits[split]
        if max_examples is not None:
            exs = exs[:max_examples]
        results[split] = evaluate_examples(model, task, exs, batch_size, device)
    return results
