"""Pure data functions for the attention parts of the Run-detail page (``arena analyze``, ``train.log_attention``,
``arena prune``): run record or database -> DataFrame, no Streamlit."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from arena.export import has_runs_table, run_columns_present
from arena.store.models import Run

VARIANT_SUFFIX = {"": "trained", "@init": "init", "@uniform": "uniform"}


def analysed_splits(record: dict[str, Any]) -> list[str]:
    """Splits ``arena analyze`` stored for this run (metric split ``attention:<split>``)."""
    return sorted(s.split(":", 1)[1] for s in (record.get("slices") or {}) if s.startswith("attention:"))


def head_frame(record: dict[str, Any], split: str) -> pd.DataFrame:
    """Per-head statistics: layer, head, stat, variant (trained / init / uniform), value."""
    rows = []
    heads = ((record.get("slices") or {}).get(f"attention:{split}") or {}).get("head") or {}
    for key, stats in heads.items():
        layer, head = (int(x) for x in key.split("."))
        for name, value in stats.items():
            stat, _, suffix = name.partition("@")
            rows.append({"layer": layer, "head": head, "stat": stat,
                         "variant": VARIANT_SUFFIX.get(f"@{suffix}" if suffix else "", suffix), "value": value})
    return pd.DataFrame(rows, columns=["layer", "head", "stat", "variant", "value"])


def pattern_frame(record: dict[str, Any], split: str, layer: int, head: int) -> pd.DataFrame:
    """One head's attention on the stored example: query, key (position and token), prob."""
    pattern = (((record.get("extra") or {}).get("attention") or {}).get(split) or {}).get("pattern") or {}
    probs, tokens = pattern.get("probs") or [], pattern.get("tokens") or []
    if layer >= len(probs) or head >= len(probs[layer]):
        return pd.DataFrame(columns=["query", "key", "query_token", "key_token", "prob"])
    rows = []
    for q, row in enumerate(probs[layer][head]):
        for k, p in enumerate(row):
            if p > 0 or k <= q:
                rows.append({"query": q, "key": k, "query_token": f"{q}:{tokens[q] if q < len(tokens) else ''}",
                             "key_token": f"{k}:{tokens[k] if k < len(tokens) else ''}", "prob": p})
    return pd.DataFrame(rows, columns=["query", "key", "query_token", "key_token", "prob"])


def attention_curve_frame(record: dict[str, Any], stat: str = "entropy_norm") -> pd.DataFrame:
    """``train.log_attention`` curve: step, layer, head (-1 = the layer), value of ``stat``, plus the uniform
    baseline of the layer (head = -2)."""
    rows = []
    for point in (record.get("extra") or {}).get("attention_curve") or []:
        for li, lay in enumerate(point.get("layers") or []):
            for hi, h in enumerate(lay.get("heads") or []):
                if stat in h:
                    rows.append({"step": point["step"], "layer": li, "head": hi, "value": h[stat]})
            if stat in (lay.get("layer") or {}):
                rows.append({"step": point["step"], "layer": li, "head": -1, "value": lay["layer"][stat]})
            if stat in (lay.get("uniform") or {}):
                rows.append({"step": point["step"], "layer": li, "head": -2, "value": lay["uniform"][stat]})
    return pd.DataFrame(rows, columns=["step", "layer", "head", "value"])


def pruning_frame(engine: Engine, run_id: int) -> pd.DataFrame:
    """Runs derived from ``run_id`` by ``arena prune``, plus the parent itself (all heads, method "parent")."""
    cols = ["run_id", "method", "heads_kept", "finetune_steps", "score", "params_total", "flops_per_example",
            "latency_p50_ms"]
    if not has_runs_table(engine) or "parent_run_id" not in run_columns_present(engine):
        return pd.DataFrame(columns=cols)  # no runs, or a database older than derived runs (read, never migrated)
    q = select(Run.id, Run.derived_method, Run.heads_kept, Run.finetune_steps, Run.score, Run.params_total,
               Run.flops_forward_per_example, Run.latency_p50_ms, Run.config).where(
        ((Run.parent_run_id == run_id) | (Run.id == run_id)) & (Run.status == "completed"))
    rows = []
    with engine.connect() as conn:
        for r in conn.execute(q):
            cfg = r.config or {}
            heads = (cfg.get("arch_config") or {}).get("n_heads", 0) * (cfg.get("shape") or {}).get("n_layers", 0)
            rows.append({"run_id": r.id, "method": r.derived_method or "parent",
                         "heads_kept": r.heads_kept if r.derived_method else heads,
                         "finetune_steps": r.finetune_steps or 0, "score": r.score, "params_total": r.params_total,
                         "flops_per_example": r.flops_forward_per_example, "latency_p50_ms": r.latency_p50_ms})
    return pd.DataFrame(rows, columns=cols).sort_values(["method", "finetune_steps", "heads_kept"]).reset_index(
        drop=True)


__all__ = ["analysed_splits", "head_frame", "pattern_frame", "attention_curve_frame", "pruning_frame"]
