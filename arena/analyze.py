"""``arena analyze``: does attention compress by itself? Per layer and head, on a trained model, at initialisation
and under uniform attention (SPECS.md, "Attention analysis: definitions"; the statistics are in
:mod:`arena.attention_stats`).

A model's attention is read through the declared capture capability (:class:`arena.api.AttentionCapturable`):
forward pre-hooks record each mixer's input during one ordinary forward pass, then every mixer recomputes its
attention on that input with the explicit kernel. The training path (SDPA) is never changed.

A report is ``{"layers": [{"heads": [{stat: value}, ...], "layer": {...}, "uniform": {...}}, ...], "n_queries",
"n_rows", "n_examples"}``: per head the attention statistics and the effective rank of the head's output; per layer
the head means and the effective rank of the concatenated heads against n_heads x d_head; ``uniform`` the same
statistics had every head attended uniformly (ranks of the uniform average of the trained values).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from arena.api import AttentionCapturable, AttentionCapture, Example
from arena.attention_stats import ATTENTION_STATS, attention_sums, effective_rank, uniform_probs
from arena.errors import ArenaError
from arena.evaluate import collate

MAX_RANK_ROWS = 4096  # tokens kept per layer for the SVDs (a 4096 x 128 SVD takes milliseconds)


def attention_mixers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The backbone's mixers, each of which must implement ``capture_attention``."""
    mixers = getattr(model, "mixers", None)
    if mixers is None or not len(mixers):
        raise ArenaError("attention analysis needs a mixer architecture (a Backbone of attention mixers); this "
                         "model has no mixers")
    bad = [type(m).__name__ for m in mixers if not isinstance(m, AttentionCapturable)]
    if bad:
        raise ArenaError(f"mixer {bad[0]} does not implement capture_attention (arena.api.AttentionCapturable): "
                         "its architecture has no attention heads to analyse")
    return list(mixers)


@torch.no_grad()
def capture_layers(model: torch.nn.Module, input_ids: torch.Tensor) -> list[AttentionCapture]:
    """One capture per layer for a batch of token ids (B, T), in eval mode."""
    mixers = attention_mixers(model)
    inputs: dict[int, torch.Tensor] = {}
    hooks = [m.register_forward_pre_hook(lambda mod, args, i=i: inputs.__setitem__(i, args[0]))
             for i, m in enumerate(mixers)]
    was_training = model.training
    model.eval()
    try:
        model(input_ids)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return [m.capture_attention(inputs[i]) for i, m in enumerate(mixers)]


class _LayerAccumulator:
    """Running sums of one layer's statistics and a bounded sample of its token rows for the SVDs."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.uniform: dict[str, torch.Tensor] = {}
        self.count = 0
        self.rows: list[torch.Tensor] = []  # (n, H, d_head) head outputs of real tokens
        self.urows: list[torch.Tensor] = []
        self.n_rows = 0

    def add(self, cap: AttentionCapture, query_mask: torch.Tensor) -> None:
        sums, n = attention_sums(cap.probs, cap.visible, cap.offsets, query_mask)
        usums, _ = attention_sums(uniform_probs(cap.visible, cap.probs.dtype).expand(query_mask.shape[0], 1, -1, -1),
                                  cap.visible, cap.offsets, query_mask)
        for k, v in sums.items():
            self.sums[k] = self.sums.get(k, 0) + v
            self.uniform[k] = self.uniform.get(k, 0) + usums[k]
        self.count += int(n)
        room = MAX_RANK_ROWS - self.n_rows
        if room > 0:
            take = cap.head_outputs.permute(0, 2, 1, 3)[query_mask][:room]  # (n, H, d_head)
            self.rows.append(take)
            if cap.uniform_outputs is not None:
                self.urows.append(cap.uniform_outputs.permute(0, 2, 1, 3)[query_mask][:room])
            self.n_rows += take.shape[0]

    def report(self) -> dict[str, Any]:
        c = max(self.count, 1)
        rows = torch.cat(self.rows) if self.rows else torch.zeros(0, 0, 0)
        n_heads = rows.shape[1] if rows.dim() == 3 else 0
        heads = []
        for h in range(n_heads):
            stats = {k: float(self.sums[k][h]) / c for k in ATTENTION_STATS}
            heads.append(stats | effective_rank(rows[:, h]))
        layer = {k: (sum(hd[k] for hd in heads) / n_heads if n_heads else None) for k in ATTENTION_STATS}
        layer |= effective_rank(rows.reshape(rows.shape[0], -1)) if n_heads else {"erank": 0.0, "bound": 0}
        uniform = {k: float(self.uniform[k][0]) / c for k in ATTENTION_STATS} if self.uniform else {}
        if self.urows:
            urows = torch.cat(self.urows)
            uniform |= effective_rank(urows.reshape(urows.shape[0], -1))
            uniform["head_erank"] = [effective_rank(urows[:, h])["erank"] for h in range(n_heads)]
        return {"heads": heads, "layer": layer, "uniform": uniform, "n_heads": n_heads}


@torch.no_grad()
def analyze_examples(model: torch.nn.Module, examples: Sequence[Example], batch_size: int = 32,
                     device: str = "cpu") -> dict[str, Any]:
    """The attention report of ``model`` on ``examples`` (their inputs ``tokens[:-1]``, padding excluded)."""
    if not examples:
        raise ArenaError("no examples to analyse")
    acc: list[_LayerAccumulator] | None = None
    for s in range(0, len(examples), batch_size):
        chunk = list(examples[s:s + batch_size])
        x, _ = collate(chunk, 0, device)
        lens = torch.tensor([len(e.tokens) - 1 for e in chunk], device=device)
        query_mask = torch.arange(x.shape[1], device=device)[None, :] < lens[:, None]  # (B, T)
        caps = capture_layers(model, x)
        acc = acc or [_LayerAccumulator() for _ in caps]
        for a, cap in zip(acc, caps, strict=True):
            a.add(cap, query_mask)
    assert acc is not None
    layers = [a.report() for a in acc]
    return {"layers": layers, "n_examples": len(examples), "n_queries": acc[0].count, "n_rows": acc[0].n_rows}


def compact(report: dict[str, Any], digits: int = 4) -> dict[str, Any]:
    """The report rounded for storage (a curve point or a run's extra)."""

    def r(v: Any) -> Any:
        if isinstance(v, float):
            return round(v, digits)
        if isinstance(v, dict):
            return {k: r(x) for k, x in v.items()}
        if isinstance(v, list):
            return [r(x) for x in v]
        return v

    return r(report)


PATTERN_MAX_TOKENS = 48  # the stored attention-pattern image of one example: every head, at most this many tokens
VARIANTS = ("trained", "init", "uniform")
RANK_KEYS = ("erank", "n90", "n99", "bound")


@torch.no_grad()
def attention_pattern(model: torch.nn.Module, example: Example, vocab: Any) -> dict[str, Any]:
    """Every head's attention probabilities on one example (first PATTERN_MAX_TOKENS tokens), for an image."""
    ids = list(example.tokens[:-1])[:PATTERN_MAX_TOKENS]
    caps = capture_layers(model, torch.tensor([ids], dtype=torch.long, device=next(model.parameters()).device))
    layers = []
    for cap in caps:
        t = len(ids)
        # key slot s of a causal layer is token s; a memory layer's slots are not tokens, so keep its own axis
        layers.append([[[round(float(v), 3) for v in row] for row in cap.probs[0, h, :t, :]]
                       for h in range(cap.probs.shape[1])])
    return {"tokens": vocab.decode(ids) if vocab is not None else [str(i) for i in ids], "probs": layers}


def analyze_run(engine: Any, run_id: int, split: str = "val", n_examples: int = 256, batch_size: int = 32,
                device: str = "cpu", save: bool = True) -> dict[str, Any]:
    """Analyse a stored run against its initialisation and uniform attention; store the result as metrics of the
    run (split ``attention:<split>``, slices ``layer`` and ``head`` = ``layer.head``) when ``save``."""
    from arena.stored import build_run_model, load_run

    stored = load_run(engine, run_id, device=device)
    if not stored.res.arch.captures_attention:
        raise ArenaError(f"architecture {stored.res.arch.name!r} declares no attention capture (it has no attention "
                         "heads); arena analyze works on transformer, moe, compressive and plugins that declare it")
    try:
        examples = stored.res.task.analysis_examples(split, n_examples)
    except ValueError as exc:
        raise ArenaError(str(exc)) from None
    if not examples:
        raise ArenaError(f"split {split!r} of task {stored.res.task.name!r} has no examples to analyse")
    trained = analyze_examples(stored.model, examples, batch_size, device)
    init_model = build_run_model(stored.run, stored.res).to(device).eval()
    init = analyze_examples(init_model, examples, batch_size, device)
    out = {"run_id": run_id, "arch": stored.run.arch, "task": stored.run.task, "split": split,
           "n_examples": trained["n_examples"], "n_queries": trained["n_queries"], "n_rows": trained["n_rows"],
           "layers": [{"trained": t, "init": i} for t, i in zip(trained["layers"], init["layers"], strict=True)]}
    out["summary"] = summarize(out["layers"])
    if save:
        pattern = attention_pattern(stored.model, examples[0], stored.res.task.vocab)
        previous = dict((stored.run.extra or {}).get("attention") or {})
        previous[split] = {"n_examples": out["n_examples"], "n_queries": out["n_queries"], "n_rows": out["n_rows"],
                           "summary": compact(out["summary"]), "pattern": pattern}
        from arena.store.repo import replace_metrics

        replace_metrics(engine, run_id, [f"attention:{split}"], metric_rows(out), extra={"attention": previous})
    return compact(out)


def summarize(layers: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Whole-model numbers per variant: the attention statistics averaged over layers, and the layer rank
    fraction erank / (n_heads x d_head) averaged over layers."""
    out: dict[str, dict[str, float]] = {}
    for variant in VARIANTS:
        rows = [lay["trained"]["uniform"] if variant == "uniform" else lay[variant]["layer"] for lay in layers]
        rows = [r for r in rows if r]
        stats = {k: sum(r[k] for r in rows) / len(rows) for k in ATTENTION_STATS if rows and k in rows[0]}
        fracs = [r["erank"] / r["bound"] for r in rows if r.get("bound")]
        if fracs:
            stats["erank_frac"] = sum(fracs) / len(fracs)
        out[variant] = stats
    return out


def metric_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Metric rows: ``<stat>`` (trained), ``<stat>@init``, ``<stat>@uniform``; no slice = the whole model,
    slice ``layer`` = one layer (heads averaged; ranks of the concatenated heads), slice ``head`` = ``L.H``."""
    split, n = f"attention:{result['split']}", result["n_queries"]
    rows: list[dict[str, Any]] = []

    def add(stats: dict[str, Any], suffix: str, key: str | None = None, value: str | None = None) -> None:
        for name, v in stats.items():
            if isinstance(v, (int, float)) and v is not None:
                rows.append({"split": split, "name": name + suffix, "value": float(v), "slice_key": key,
                             "slice_value": value, "n": n})

    for variant, stats in result["summary"].items():
        add(stats, "" if variant == "trained" else f"@{variant}")
    for li, lay in enumerate(result["layers"]):
        add(lay["trained"]["layer"], "", "layer", str(li))
        add(lay["init"]["layer"], "@init", "layer", str(li))
        add(lay["trained"]["uniform"], "@uniform", "layer", str(li))
        for hi, head in enumerate(lay["trained"]["heads"]):
            add(head, "", "head", f"{li}.{hi}")
            add(lay["init"]["heads"][hi], "@init", "head", f"{li}.{hi}")
            uni = lay["trained"]["uniform"].get("head_erank")
            if uni:
                add({"erank": uni[hi]}, "@uniform", "head", f"{li}.{hi}")
    return rows


__all__ = ["attention_mixers", "capture_layers", "analyze_examples", "analyze_run", "attention_pattern",
           "metric_rows", "summarize", "compact", "MAX_RANK_ROWS"]
