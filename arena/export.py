"""Leaderboard table and exports: runs aggregated over seeds, gated efficiency ratios, Pareto flags.

One row per (arch, task, split, size, variant, training steps) over completed runs, where *size* is the size
preset or the parameter budget and *variant* lists the run options that differ from the defaults (arch/task
config, widths, training settings) — so only seeds are averaged, never different experiments. Each row carries mean, std and n of
the raw and normalized score; the costs (params total/active, analytic forward FLOPs per example, latency p50 at
batch 1, peak memory); the three ratios, normalized score per million parameters / per GFLOP / per millisecond,
left blank (NaN) when the mean normalized score is below the gate so a chance-level model can never top a ratio
ranking; and Pareto flags (score vs each cost) within each (task, split).

Exports: CSV, Parquet and JSON keep every numeric column (JSON adds the full record and provenance of every run);
Markdown and LaTeX give a compact "mean ± std" table ready to paste into a paper, with special characters escaped.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import inspect, select
from sqlalchemy.engine import Engine

from arena.errors import ArenaError
from arena.store.models import Run

DEFAULT_GATE = 0.5
FORMATS = ("csv", "md", "latex", "json", "parquet")
SUFFIX_FORMAT = {".csv": "csv", ".md": "md", ".markdown": "md", ".tex": "latex", ".latex": "latex",
                 ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
GROUP_KEYS = ["arch", "arch_version", "task", "task_version", "split", "size", "variant", "max_steps", "source",
              "plugin_name", "plugin_version", "plugin_sha256"]
# cost axis -> (cost column, ratio column, pareto column, unit divisor, human label)
COST_AXES: dict[str, tuple[str, str, str, float, str]] = {
    "params": ("params_total", "norm_per_mparam", "pareto_params", 1e6, "parameters"),
    "flops": ("flops_per_example", "norm_per_gflop", "pareto_flops", 1e9, "forward FLOPs per example"),
    "latency": ("latency_p50_ms", "norm_per_ms", "pareto_latency", 1.0, "latency p50 (ms, batch 1)"),
}
RATIO_COLUMNS = [v[1] for v in COST_AXES.values()]
PARETO_COLUMNS = ["pareto"] + [v[2] for v in COST_AXES.values()]

_RUN_COLUMNS = [
    Run.id, Run.arch, Run.arch_version, Run.arch_family, Run.task, Run.task_version, Run.split, Run.size, Run.seed,
    Run.config, Run.status, Run.created_at, Run.finished_at, Run.params_total, Run.params_active,
    Run.params_non_embedding, Run.state_size, Run.flops_forward_per_example, Run.flops_counted_per_example,
    Run.latency_p50_ms, Run.memory_mb, Run.metric, Run.headline_split, Run.score, Run.normalized_score,
    Run.chance, Run.higher_is_better, Run.source, Run.plugin_name, Run.plugin_version, Run.plugin_sha256,
    Run.task_specific, Run.hardware, Run.error,
]
RUN_FRAME_COLUMNS = [c.key for c in _RUN_COLUMNS if c.key not in ("config", "hardware")] + [
    "hardware_label", "variant", "max_steps"]


# ----------------------------------------------------------------------------------------------------------------
# loading


def has_runs_table(engine: Engine) -> bool:
    """False for an empty file or a database arena has never written to (treated as "no runs")."""
    return "runs" in inspect(engine).get_table_names()


def hardware_label(hw: dict | None) -> str | None:
    """Same label as ``arena.measure.hardware.hardware_label`` (that module imports torch; this one stays light)."""
    if not hw:
        return None
    gpu = hw.get("gpu")
    return f"{gpu}" if gpu else f"{hw.get('cpu')} x{hw.get('threads')}t"


def _train_defaults() -> dict[str, Any]:
    from arena.spec import TrainConfig

    return TrainConfig().model_dump(mode="json")


def _short(v: Any) -> str:
    return json.dumps(v, separators=(",", ":")) if isinstance(v, (list, dict, bool)) or v is None else str(v)


def size_label(size: str | None, config: dict | None) -> str:
    """The size preset, or ``budget <N>`` for a run sized by a parameter budget."""
    spec = (config or {}).get("spec") or {}
    if spec.get("params"):
        return f"budget {human_int(spec['params'])}"
    return size or spec.get("size") or "?"


def variant_label(config: dict | None, train_defaults: dict[str, Any] | None = None) -> str:
    """Run options that differ from the defaults, except the seed: ``d_model=64; arch.cell=gru; train.lr=0.001``."""
    spec = (config or {}).get("spec")
    if not isinstance(spec, dict):
        return ""
    train_defaults = train_defaults if train_defaults is not None else _train_defaults()
    parts = [f"{k}={spec[k]}" for k in ("d_model", "n_layers") if spec.get(k)]
    parts += [f"arch.{k}={_short(v)}" for k, v in sorted((spec.get("arch_config") or {}).items())]
    parts += [f"task.{k}={_short(v)}" for k, v in sorted((spec.get("task_config") or {}).items())]
    for k, v in sorted((spec.get("train") or {}).items()):
        if k in ("max_steps", "eval_batch_size", "checkpoint_every"):
            continue  # steps get their own column; the others do not change the result
        if k in train_defaults and v != train_defaults[k]:
            parts.append(f"train.{k}={_short(v)}")
    return "; ".join(parts)


def load_runs(engine: Engine, *, task: str | None = None, split: str | None = None,
              statuses: Sequence[str] = ("completed",)) -> pd.DataFrame:
    """One row per run (flat columns of :data:`RUN_FRAME_COLUMNS`), newest first."""
    if not has_runs_table(engine):
        return pd.DataFrame(columns=RUN_FRAME_COLUMNS)
    q = select(*_RUN_COLUMNS).where(Run.status.in_(list(statuses))).order_by(Run.id.desc())
    if task:
        q = q.where(Run.task == task)
    if split:
        q = q.where(Run.split == split)
    with engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    if not rows:
        return pd.DataFrame(columns=RUN_FRAME_COLUMNS)
    defaults = _train_defaults()
    records = []
    for r in rows:
        d = dict(r)
        cfg = d.pop("config") or {}
        hw = d.pop("hardware")
        d["hardware_label"] = hardware_label(hw) if d["latency_p50_ms"] is not None else None
        d["size"] = size_label(d["size"], cfg)
        d["variant"] = variant_label(cfg, defaults)
        d["max_steps"] = ((cfg.get("spec") or {}).get("train") or {}).get("max_steps")
        records.append(d)
    df = pd.DataFrame.from_records(records, columns=RUN_FRAME_COLUMNS)
    for col in ("created_at", "finished_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    num = ["params_total", "params_active", "params_non_embedding", "state_size", "flops_forward_per_example",
           "flops_counted_per_example", "latency_p50_ms", "memory_mb", "score", "normalized_score", "chance"]
    df[num] = df[num].astype("float64")
    return df


# ----------------------------------------------------------------------------------------------------------------
# aggregation


def pareto_front(cost: Iterable[float], score: Iterable[float]) -> np.ndarray:
    """True where no other point has cost <= and score >= with one of them strict (NaNs are never on the front)."""
    c = np.asarray(list(cost), dtype=float)
    s = np.asarray(list(score), dtype=float)
    ok = ~(np.isnan(c) | np.isnan(s))
    out = np.zeros(len(c), dtype=bool)
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return out
    order = idx[np.lexsort((-s[idx], c[idx]))]  # cheapest first; for equal cost, best score first
    best = -math.inf
    last_front: tuple[float, float] | None = None
    for i in order:
        if s[i] > best:
            out[i] = True
            best = s[i]
            last_front = (c[i], s[i])
        elif last_front == (c[i], s[i]):
            out[i] = True  # an exact tie with a front point is also on the front
    return out


def _first(values: pd.Series) -> Any:
    v = values.dropna()
    return v.iloc[0] if len(v) else None


def _one_or_mixed(values: pd.Series) -> Any:
    v = values.dropna().unique()
    if len(v) == 0:
        return None
    return v[0] if len(v) == 1 else "mixed"


def aggregate(runs: pd.DataFrame, gate: float = DEFAULT_GATE) -> pd.DataFrame:
    """Leaderboard rows from :func:`load_runs` output (completed runs; other statuses only counted in n_failed)."""
    cols = leaderboard_columns()
    if runs.empty:
        return pd.DataFrame(columns=cols)
    runs = runs.copy()
    for k in GROUP_KEYS:
        runs[k] = runs[k].astype(object).where(runs[k].notna(), "")
    done = runs["status"] == "completed"
    runs["_ok"] = done
    for c in ("score", "normalized_score"):
        runs[c] = runs[c].where(done)
    g = runs.groupby(GROUP_KEYS, sort=False, dropna=False)
    out = g.agg(
        arch_family=("arch_family", _first), metric=("metric", _first), headline_split=("headline_split", _first),
        chance=("chance", "mean"), higher_is_better=("higher_is_better", _first),
        n=("_ok", "sum"), n_runs=("id", "size"),
        score_mean=("score", "mean"), score_std=("score", "std"),
        normalized_mean=("normalized_score", "mean"), normalized_std=("normalized_score", "std"),
        params_total=("params_total", "mean"), params_active=("params_active", "mean"),
        params_non_embedding=("params_non_embedding", "mean"), state_size=("state_size", "mean"),
        flops_per_example=("flops_forward_per_example", "mean"),
        flops_counted_per_example=("flops_counted_per_example", "mean"),
        latency_p50_ms=("latency_p50_ms", "median"), memory_mb=("memory_mb", "mean"),
        hardware=("hardware_label", _one_or_mixed),
        task_specific=("task_specific", "max"),
        seeds=("seed", lambda s: ",".join(str(x) for x in sorted(s))),
        run_ids=("id", lambda s: ",".join(str(x) for x in sorted(s))),
        last_finished=("finished_at", "max"),
    ).reset_index()
    out["n"] = out["n"].astype(int)
    out["n_failed"] = (out["n_runs"] - out["n"]).astype(int)
    out = out.drop(columns=["n_runs"])
    # std over one seed is undefined: leave NaN (shown as "n=1")
    out = apply_gate(out, gate)
    out = add_pareto(out)
    for k in ("plugin_name", "plugin_version", "plugin_sha256", "max_steps"):
        out[k] = out[k].astype(object).where(out[k].astype(str) != "", None)
    return out[cols].sort_values(["task", "split", "normalized_mean", "score_mean"],
                                 ascending=[True, True, False, False], na_position="last").reset_index(drop=True)


def leaderboard_columns() -> list[str]:
    return ["arch", "arch_version", "arch_family", "task", "task_version", "split", "size", "variant", "max_steps",
            "metric", "headline_split", "chance", "n", "n_failed", "seeds", "score_mean", "score_std",
            "normalized_mean", "normalized_std", "params_total", "params_active", "params_non_embedding",
            "state_size", "flops_per_example", "flops_counted_per_example", "latency_p50_ms", "memory_mb",
            *RATIO_COLUMNS, *PARETO_COLUMNS, "hardware", "source", "plugin_name", "plugin_version", "plugin_sha256",
            "task_specific", "higher_is_better", "run_ids", "last_finished"]


def apply_gate(frame: pd.DataFrame, gate: float = DEFAULT_GATE) -> pd.DataFrame:
    """(Re)compute the three ratios: blank where the mean normalized score is below ``gate``, 0 or unknown.

    Latency ratios are also blank when the seeds ran on different hardware ("mixed"): not comparable.
    """
    frame = frame.copy()
    norm = frame["normalized_mean"].astype(float)
    passed = norm.notna() & (norm >= gate) & (norm > 0)  # even at gate 0, chance level earns no ratio
    for axis, (cost_col, ratio_col, _, unit, _) in COST_AXES.items():
        cost = frame[cost_col].astype(float) / unit
        ok = passed & cost.notna() & (cost > 0)
        if axis == "latency":
            ok &= frame["hardware"].astype(object).ne("mixed")
        frame[ratio_col] = np.where(ok, norm / cost.where(cost > 0), np.nan)
    return frame


def _pareto_score(frame: pd.DataFrame) -> pd.Series:
    """Normalized score where defined, else the raw score oriented so that higher is better."""
    raw = frame["score_mean"].astype(float)
    hib = frame["higher_is_better"].astype(object).fillna(True).astype(bool)
    return frame["normalized_mean"].astype(float).fillna(raw.where(hib, -raw))


def add_pareto(frame: pd.DataFrame) -> pd.DataFrame:
    """Pareto flags (score vs params, FLOPs, latency) within each (task, split); latency also within one hardware.

    Rows whose normalized score is 0 (no better than chance) are never on a front: reaching nothing cheaply is
    not a trade-off worth showing.
    """
    frame = frame.copy()
    score = _pareto_score(frame)
    score = score.where(~(frame["normalized_mean"].astype(float) <= 0))
    for axis, (cost_col, _, pareto_col, _, _) in COST_AXES.items():
        flags = pd.Series(False, index=frame.index)
        keys = ["task", "split"] + (["hardware"] if axis == "latency" else [])
        for _, idx in frame.groupby(keys, dropna=False).groups.items():
            sub = frame.loc[idx]
            if axis == "latency":
                bad = sub["hardware"].isna() | (sub["hardware"] == "mixed")
                idx = sub.index[~bad]
            flags.loc[idx] = pareto_front(frame.loc[idx, cost_col].astype(float), score.loc[idx])
        frame[pareto_col] = flags.astype(bool)
    frame["pareto"] = frame["pareto_params"]
    return frame


def leaderboard_frame(engine: Engine, task: str | None = None, split: str | None = None,
                      gate: float = DEFAULT_GATE, include_failed: bool = False) -> pd.DataFrame:
    """The leaderboard: one row per (arch, task, split, size, variant) over completed runs, aggregated over seeds.

    With ``include_failed`` the failed/interrupted runs are counted in ``n_failed`` (and groups with only failed
    runs appear with blank scores); they never contribute to a mean.
    """
    statuses = ("completed", "failed", "interrupted") if include_failed else ("completed",)
    return aggregate(load_runs(engine, task=task, split=split, statuses=statuses), gate)


# ----------------------------------------------------------------------------------------------------------------
# formatting


def human_int(v: Any) -> str:
    """17664 -> 17.7K, 1_200_000 -> 1.2M (paper-style compact counts)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    v = float(v)
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.0f}"


def _num(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{float(v):.{digits}g}" if abs(float(v)) >= 1e-3 or v == 0 else f"{float(v):.2e}"


def _mean_std(mean: Any, std: Any, n: Any, pm: str) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return ""
    s = f"{float(mean):.3f}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)) and int(n or 0) > 1:
        s += f"{pm}{float(std):.3f}"
    return s


PAPER_COLUMNS = [
    ("arch", "Arch"), ("task", "Task"), ("split", "Split"), ("size", "Size"), ("variant", "Variant"), ("n", "n"),
    ("score", "Score"), ("normalized", "Norm. score"), ("params_total", "Params"), ("params_active", "Active"),
    ("flops_per_example", "GFLOPs/ex"), ("latency_p50_ms", "p50 ms"), ("memory_mb", "Mem MB"),
    ("norm_per_mparam", "Norm/Mparam"), ("norm_per_gflop", "Norm/GFLOP"), ("norm_per_ms", "Norm/ms"),
    ("pareto", "Pareto"), ("hardware", "Hardware"),
]


def paper_table(frame: pd.DataFrame, pm: str = " ± ", blank: str = "—") -> list[tuple[str, list[str]]]:
    """Columns of display strings for the Markdown/LaTeX tables (variant only when some row has one)."""
    cols = []
    for key, title in PAPER_COLUMNS:
        if key == "variant" and not frame["variant"].astype(str).str.len().gt(0).any():
            continue
        vals = []
        for _, r in frame.iterrows():
            if key == "score":
                v = _mean_std(r["score_mean"], r["score_std"], r["n"], pm)
            elif key == "normalized":
                v = _mean_std(r["normalized_mean"], r["normalized_std"], r["n"], pm)
            elif key in ("params_total", "params_active"):
                v = human_int(r[key])
            elif key == "flops_per_example":
                v = _num(r[key] / 1e9) if pd.notna(r[key]) else ""
            elif key in RATIO_COLUMNS:
                v = _num(r[key]) if pd.notna(r[key]) else blank
            elif key in ("latency_p50_ms", "memory_mb"):
                v = _num(r[key])
            elif key == "pareto":
                v = "yes" if bool(r[key]) else ""
            elif key == "arch" and isinstance(r.get("plugin_name"), str) and r["plugin_name"]:
                v = f"{r['arch']} ({r['plugin_name']} {r.get('plugin_version') or ''})".strip()
            else:
                v = "" if r[key] is None or (isinstance(r[key], float) and math.isnan(r[key])) else str(r[key])
            vals.append(v)
        cols.append((title, vals))
    return cols


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md_escape(text: Any) -> str:
    """Backslash-escape Markdown punctuation (also neutralizes raw HTML such as ``<script>``); newlines -> space."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\r", " ").replace("\n", " ")


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


def latex_escape(text: Any) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text)).replace("\n", " ")


def to_markdown(frame: pd.DataFrame, gate: float = DEFAULT_GATE) -> str:
    cols = paper_table(frame)
    lines = ["| " + " | ".join(md_escape(t) for t, _ in cols) + " |",
             "|" + "|".join("---" if t in ("Arch", "Task", "Split", "Size", "Variant", "Hardware") else "---:"
                            for t, _ in cols) + "|"]
    for i in range(len(frame)):
        lines.append("| " + " | ".join(md_escape(vals[i]) for _, vals in cols) + " |")
    lines.append("")
    lines.append(f"Mean ± std over n seeds. Norm. score = max(0, (s − chance)/(1 − chance)); ratios are normalized "
                 f"score per M params / per GFLOP (forward, per example) / per ms (p50, batch 1), blank (—) below "
                 f"the gate {gate:g}. Pareto: score vs params within each task and split.")
    return "\n".join(lines) + "\n"


def to_latex(frame: pd.DataFrame, gate: float = DEFAULT_GATE) -> str:
    cols = paper_table(frame, pm=r" $\pm$ ", blank="--")
    align = "".join("l" if t in ("Arch", "Task", "Split", "Size", "Variant", "Hardware") else "r" for t, _ in cols)
    out = ["% requires \\usepackage{booktabs}", "\\begin{table}[t]", "\\centering", "\\small",
           f"\\begin{{tabular}}{{{align}}}", "\\toprule",
           " & ".join(latex_escape(t) for t, _ in cols) + " \\\\", "\\midrule"]
    for i in range(len(frame)):
        cells = []
        for _, vals in cols:
            v = vals[i]
            # the " $\pm$ " we inserted is already LaTeX; escape the pieces around it
            cells.append(r" $\pm$ ".join(latex_escape(p) for p in v.split(r" $\pm$ ")))
        out.append(" & ".join(cells) + " \\\\")
    out += ["\\bottomrule", "\\end{tabular}",
            f"\\caption{{Mean $\\pm$ std over $n$ seeds. Ratios (normalized score per M parameters, per GFLOP, per ms "
            f"at p50, batch 1) are blank below a normalized-score gate of {gate:g}.}}",
            "\\end{table}"]
    return "\n".join(out) + "\n"


def _jsonable(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, (pd.Timestamp, datetime)):
        return v.isoformat()
    return v


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _jsonable(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def run_records(engine: Engine, run_ids: Iterable[int], chunk: int = 500) -> dict[int, dict[str, Any]]:
    """Full records (``arena show --json`` shape, including provenance and the reproduce command) by run id.

    Reads the three tables with plain SELECTs (no ORM identity map: ~10x faster for thousands of runs) and hands
    ``run_record`` attribute views of the rows.
    """
    from types import SimpleNamespace

    from arena.runner import reproduce_command, run_record
    from arena.store.models import Metric, Provenance

    ids = sorted(set(int(i) for i in run_ids))
    out: dict[int, dict[str, Any]] = {}
    runs_t, metrics_t, prov_t = Run.__table__, Metric.__table__, Provenance.__table__
    with engine.connect() as conn:
        for i in range(0, len(ids), chunk):
            part = ids[i:i + chunk]
            metrics: dict[int, list[Any]] = {}
            for m in conn.execute(select(metrics_t).where(metrics_t.c.run_id.in_(part)).order_by(metrics_t.c.id)):
                metrics.setdefault(m.run_id, []).append(m)
            provs = {p.run_id: p for p in conn.execute(select(prov_t).where(prov_t.c.run_id.in_(part)))}
            for row in conn.execute(select(runs_t).where(runs_t.c.id.in_(part))):
                run = SimpleNamespace(**row._asdict(), metrics=metrics.get(row.id, []), provenance=provs.get(row.id))
                rec = run_record(run)
                try:
                    rec["reproduce"] = reproduce_command(rec) if rec.get("config") else None
                except (KeyError, TypeError):  # a config written by a plugin without the usual spec
                    rec["reproduce"] = None
                out[row.id] = rec
    return out


def to_json(frame: pd.DataFrame, engine: Engine | None = None, gate: float = DEFAULT_GATE) -> str:
    """``{"meta", "rows", "runs"}``: rows reference their runs by id; ``runs`` holds every run's full record."""
    from arena import METHODOLOGY_VERSION, __version__

    ids = [int(x) for ids in frame["run_ids"].dropna() for x in str(ids).split(",") if x]
    runs = run_records(engine, ids) if engine is not None and ids else {}
    doc = {
        "meta": {"arena_version": __version__, "methodology_version": METHODOLOGY_VERSION, "gate": gate,
                 "generated_at": datetime.now(UTC).isoformat(), "n_rows": len(frame), "n_runs": len(runs),
                 "columns": list(frame.columns)},
        "rows": [{**r, "run_ids": [int(x) for x in str(r["run_ids"] or "").split(",") if x]}
                 for r in frame_records(frame)],
        "runs": {str(k): v for k, v in runs.items()},
    }
    return json.dumps(doc, separators=(",", ":"), default=str, allow_nan=False) + "\n"  # compact: C encoder


def to_csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ArenaError("--format parquet needs pyarrow: pip install 'arena[leaderboard]'") from None
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def render(frame: pd.DataFrame, fmt: str, *, engine: Engine | None = None, gate: float = DEFAULT_GATE) -> str | bytes:
    if fmt == "csv":
        return to_csv(frame)
    if fmt == "md":
        return to_markdown(frame, gate)
    if fmt == "latex":
        return to_latex(frame, gate)
    if fmt == "json":
        return to_json(frame, engine, gate)
    if fmt == "parquet":
        return to_parquet_bytes(frame)
    raise ArenaError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")


def format_for(out: str | Path | None, fmt: str | None) -> str:
    """Explicit ``--format`` wins; otherwise the ``--out`` suffix; otherwise CSV."""
    if fmt:
        fmt = {"markdown": "md", "tex": "latex"}.get(fmt.lower(), fmt.lower())
        if fmt not in FORMATS:
            raise ArenaError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    if out:
        return SUFFIX_FORMAT.get(Path(out).suffix.lower(), "csv")
    return "csv"


__all__ = ["leaderboard_frame", "load_runs", "aggregate", "apply_gate", "add_pareto", "pareto_front", "render",
           "to_markdown", "to_latex", "to_json", "to_csv", "to_parquet_bytes", "md_escape", "latex_escape",
           "format_for", "run_records", "hardware_label", "COST_AXES", "DEFAULT_GATE", "FORMATS"]
