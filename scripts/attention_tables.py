"""Markdown tables of docs/attention.md from the rows of scripts/attention_study.py (no arena imports)."""

from __future__ import annotations

import statistics
from typing import Any


def _f(v: Any, fmt: str = ".3f") -> str:
    return "–" if v in (None, "") else format(float(v), fmt)


def entropy_table(rows: list[dict[str, Any]]) -> str:
    """Per task and layer: normalised entropy, top-1 mass and mean offset; trained vs init vs uniform."""
    out = ["| model | task | layer | entropy trained | init | uniform | top-1 trained | init | uniform | "
           "offset trained | init | uniform |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    keyed = {(r["arch"], r["task"], r["reg_lambda"], r["layer"], r["variant"]): r for r in rows}
    for arch, task, lam, layer in sorted({k[:4] for k in keyed}, key=lambda k: (k[0] != "transformer", *map(str, k))):
        t, i, u = (keyed.get((arch, task, lam, layer, v)) or {} for v in ("trained", "init", "uniform"))
        model = arch if lam is None else f"{arch} λ={lam:g}"
        out.append(f"| {model} | {task} | {layer} | **{_f(t.get('entropy_norm'))}** | {_f(i.get('entropy_norm'))} | "
                   f"{_f(u.get('entropy_norm'))} | {_f(t.get('top1'))} | {_f(i.get('top1'))} | {_f(u.get('top1'))} | "
                   f"{_f(t.get('offset'), '.2f')} | {_f(i.get('offset'), '.2f')} | {_f(u.get('offset'), '.2f')} |")
    return "\n".join(out)


def rank_table(rows: list[dict[str, Any]], heads: list[dict[str, Any]] | None = None) -> str:
    """Per task and layer: effective rank of the concatenated heads against n_heads x d_head, and the mean
    effective rank of one head's output (bound d_head)."""
    out = ["| model | task | layer | erank trained | init | uniform | bound (heads × d_head) | trained / bound | "
           "n90 | n99 | head erank trained / init / uniform (bound) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    per_head: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for h in heads or []:
        per_head.setdefault((h["task"], int(h["layer"])), []).append(h)
    keyed = {(r["arch"], r["task"], r["reg_lambda"], r["layer"], r["variant"]): r for r in rows}
    for arch, task, lam, layer in sorted({k[:4] for k in keyed}, key=lambda k: (k[0] != "transformer", *map(str, k))):
        t, i, u = (keyed.get((arch, task, lam, layer, v)) or {} for v in ("trained", "init", "uniform"))
        bound = t.get("bound")
        frac = float(t["erank"]) / float(bound) if t.get("erank") not in (None, "") and bound else None
        model = arch if lam is None else f"{arch} λ={lam:g}"
        hs = per_head.get((task, int(layer)), []) if arch == "transformer" else []
        head_cell = (" / ".join(_f(_mean(hs, k), ".1f") for k in ("erank", "erank@init", "erank@uniform"))
                     + f" ({_f(hs[0].get('bound'), '.0f')})") if hs else "–"
        out.append(f"| {model} | {task} | {layer} | **{_f(t.get('erank'), '.1f')}** | {_f(i.get('erank'), '.1f')} | "
                   f"{_f(u.get('erank'), '.1f')} | {_f(bound, '.0f')} | {_f(frac, '.2f')} | {_f(t.get('n90'), '.0f')} | "
                   f"{_f(t.get('n99'), '.0f')} | {head_cell} |")
    return "\n".join(out)


def _mean(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [r.get(key) for r in rows]
    return statistics.mean(float(v) for v in vals) if vals and all(v not in (None, "") for v in vals) else None


def _score(rows: list[dict[str, Any]]) -> str:
    vals = [float(r["score"]) for r in rows if r.get("score") not in (None, "")]
    if not vals:
        return "–"
    if len(vals) == 1:
        return f"{vals[0]:.3f}"
    return f"{statistics.mean(vals):.3f} ± {statistics.stdev(vals):.3f}"


def pruning_table(rows: list[dict[str, Any]], latency: list[dict[str, Any]]) -> str:
    """Per task and heads kept: score by method, without and with fine-tune, and the measured costs."""
    lat = {(r["task"], r["model"]): float(r["ratio_to_parent"]) for r in latency}
    out = ["| task (metric) | heads kept | params | FLOPs/example | latency (side by side) | importance | +ft | "
           "magnitude | +ft | random (3 seeds) | +ft |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for task in sorted({r["task"] for r in rows}, key=lambda t: ("scan", "mqar", "lm").index(t) if t in
                       ("scan", "mqar", "lm") else 9):
        sub = [r for r in rows if r["task"] == task]
        parent = next(r for r in sub if r["method"] == "parent")
        metric = f"{parent['metric']}, {'higher' if parent['higher_is_better'] else 'lower'} is better"
        same = " | ".join([_f(parent["score"])] * 6)  # keeping every head is the parent, whatever the method
        out.append(f"| {task} ({metric}) | {parent['heads_kept']} (all) | {int(parent['params_total']):,} | "
                   f"{float(parent['flops_per_example']):.3g} | 1 | {same} |")
        for k in sorted({int(r["heads_kept"]) for r in sub if r["method"] != "parent"}, reverse=True):
            at = [r for r in sub if int(r["heads_kept"]) == k and r["method"] != "parent"]
            cost = at[0]
            dp = 1 - float(cost["params_total"]) / float(parent["params_total"])
            df = 1 - float(cost["flops_per_example"]) / float(parent["flops_per_example"])
            cells = []
            for method in ("importance", "magnitude", "random"):
                for ft in (False, True):
                    cells.append(_score([r for r in at if r["method"] == method and bool(int(r["finetune_steps"]))
                                         == ft]))
            ratio = lat.get((task, f"keep {k}"))
            out.append(f"| | {k} | {int(cost['params_total']):,} (−{dp:.1%}) | {float(cost['flops_per_example']):.3g} "
                       f"(−{df:.1%}) | {_f(ratio, '.2f')} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def curve_table(rows: list[dict[str, Any]]) -> str:
    """Per transformer task and evaluation step (0 = initialisation): the validation score and, per layer, the
    normalised entropy (mean of heads, with the lowest and highest head) and the layer's effective rank."""
    tf = [r for r in rows if r["arch"] == "transformer"]
    layers = sorted({int(r["layer"]) for r in tf})
    head = ["| task | step | val score | train loss |"] + [f" L{li} entropy (heads min–max) | L{li} erank |"
                                                          for li in layers]
    out = ["".join(head), "|---|---:|---:|---:|" + "---:|---:|" * len(layers)]
    for task in [t for t in ("scan", "mqar", "lm") if any(r["task"] == t for r in tf)]:
        sub = [r for r in tf if r["task"] == task]
        for i, step in enumerate(sorted({int(r["step"]) for r in sub})):
            at = {int(r["layer"]): r for r in sub if int(r["step"]) == step}
            val, loss = next(iter(at.values())).get("val"), next(iter(at.values())).get("train_loss")
            cells = [f"{_f(at[li].get('entropy_norm'))} ({_f(at[li].get('head_entropy_min'), '.2f')}–"
                     f"{_f(at[li].get('head_entropy_max'), '.2f')}) | {_f(at[li].get('erank'), '.1f')}"
                     if li in at else "– | –" for li in layers]
            out.append(f"| {task if i == 0 else ''} | {step} | {_f(val)} | {_f(loss)} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def _better(score: float, parent: float, higher_is_better: bool) -> float:
    """Relative improvement over the parent (positive = better), in the metric's own units."""
    return (score - parent) / abs(parent) if higher_is_better else (parent - score) / abs(parent)


def claim_table(rows: list[dict[str, Any]], latency: list[dict[str, Any]]) -> str:
    """The '37 % better with 30-50 % less compute' test: per task and heads kept, the measured compute saved and the
    relative score change against the unpruned parent (positive = better) for each method, without / with the
    fine-tune (random: mean of its seeds)."""
    lat = {(r["task"], r["model"]): float(r["ratio_to_parent"]) for r in latency}
    out = ["| task | heads removed | FLOPs saved | params saved | latency saved (side by side) | importance | "
           "importance +ft | random (mean) | random +ft (mean) | magnitude |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for task in [t for t in ("scan", "mqar", "lm") if any(r["task"] == t for r in rows)]:
        sub = [r for r in rows if r["task"] == task]
        parent = next(r for r in sub if r["method"] == "parent")
        p, hib, total = float(parent["score"]), bool(int(parent["higher_is_better"])), int(parent["heads_total"])
        for k in sorted({int(r["heads_kept"]) for r in sub if r["method"] != "parent"}, reverse=True):
            at = [r for r in sub if int(r["heads_kept"]) == k and r["method"] != "parent"]
            cost = at[0]
            df = 1 - float(cost["flops_per_example"]) / float(parent["flops_per_example"])
            dp = 1 - float(cost["params_total"]) / float(parent["params_total"])
            ratio = lat.get((task, f"keep {k}"))
            cells = []
            for method, ft in (("importance", False), ("importance", True), ("random", False), ("random", True),
                               ("magnitude", False)):
                vals = [float(r["score"]) for r in at if r["method"] == method and bool(int(r["finetune_steps"])) == ft
                        and r.get("score") not in (None, "")]
                cells.append(f"{statistics.mean(_better(v, p, hib) for v in vals):+.1%}" if vals else "–")
            out.append(f"| {task} | {total - k} of {total} ({(total - k) / total:.0%}) | {df:.1%} | {dp:.1%} | "
                       + (f"{1 - ratio:.1%}" if ratio is not None else "–") + " | " + " | ".join(cells) + " |")
    return "\n".join(out)


def compressive_table(rows: list[dict[str, Any]]) -> str:
    """The compressive runs' curves, one column group per regulariser weight λ: per evaluation step (0 =
    initialisation) the training loss (the LM loss alone, without λR) and each layer's normalised entropy (mean of
    heads, with the lowest and highest head)."""
    comp = [r for r in rows if r["arch"] == "compressive"]
    lams = sorted({float(r["reg_lambda"]) for r in comp})
    layers = sorted({int(r["layer"]) for r in comp})
    head = "| task | step |" + "".join(f" λ={lam:g} train loss |" + "".join(f" L{li} entropy (heads min–max) |"
                                                                         for li in layers) for lam in lams)
    out = [head, "|---|---:|" + "---:|" * (len(lams) * (1 + len(layers)))]
    for task in sorted({r["task"] for r in comp}):
        sub = [r for r in comp if r["task"] == task]
        for i, step in enumerate(sorted({int(r["step"]) for r in sub})):
            cells = []
            for lam in lams:
                at = {int(r["layer"]): r for r in sub if int(r["step"]) == step and float(r["reg_lambda"]) == lam}
                cells.append(_f(next(iter(at.values())).get("train_loss")) if at else "–")
                cells += [f"{_f(at[li].get('entropy_norm'))} ({_f(at[li].get('head_entropy_min'), '.2f')}–"
                          f"{_f(at[li].get('head_entropy_max'), '.2f')})" if li in at else "–" for li in layers]
            out.append(f"| {task if i == 0 else ''} | {step} | " + " | ".join(cells) + " |")
    return "\n".join(out)
