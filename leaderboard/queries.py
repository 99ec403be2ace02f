"""Pure data functions behind the leaderboard pages: SQLAlchemy ``select`` -> DataFrame, no Streamlit.

Every page calls these through the cached wrappers in ``ui.py``; tests call them directly. All reads go through
an engine opened with ``open_store(url, readonly=True)`` (SQLite ``mode=ro``), so the app never writes and never
takes a write lock on a database a sweep is filling.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.engine import Engine, make_url

from arena.export import (
    COST_AXES,
    DEFAULT_GATE,
    add_pareto,
    aggregate,
    apply_gate,
    has_runs_table,
    load_runs,
    md_escape,
)
from arena.store.models import Metric, Run

SUCCINCTNESS_COLUMNS = ["task", "arch", "depth", "p_star", "state_size", "flops", "reached"]
SUCCINCTNESS_OPTIONAL = ["status", "p_star_lower", "seeds_passed", "d_model", "n_layers"]  # kept when present
SUCCINCTNESS_GLOB = "succinctness*.csv"


def safe_md(text: Any) -> str:
    """Run metadata inside Markdown (titles, captions): every Markdown/HTML character escaped."""
    return md_escape(text)


def db_label(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


# ----------------------------------------------------------------------------------------------------------------
# runs and the leaderboard


def runs_frame(engine: Engine) -> pd.DataFrame:
    """Every completed run (one row each), newest first."""
    return load_runs(engine)


def status_counts(engine: Engine) -> dict[str, int]:
    if not has_runs_table(engine):
        return {}
    with engine.connect() as conn:
        return {s: int(n) for s, n in conn.execute(select(Run.status, func.count()).group_by(Run.status))}


def last_updated(engine: Engine) -> pd.Timestamp | None:
    """Time of the newest finished run (or newest created run if none finished)."""
    if not has_runs_table(engine):
        return None
    with engine.connect() as conn:
        t = conn.execute(select(func.max(Run.finished_at))).scalar() or conn.execute(
            select(func.max(Run.created_at))).scalar()
    return pd.Timestamp(t) if t is not None else None


def filter_runs(runs: pd.DataFrame, tasks: Sequence[str] | None = None, splits: Sequence[str] | None = None,
                hardware: Sequence[str] | None = None) -> pd.DataFrame:
    """Keep runs on the chosen tasks/splits; a hardware filter keeps runs measured there (or not timed at all)."""
    keep = pd.Series(True, index=runs.index)
    if tasks:
        keep &= runs["task"].isin(list(tasks))
    if splits:
        keep &= runs["split"].isin(list(splits))
    if hardware:
        keep &= runs["hardware_label"].isin(list(hardware)) | runs["hardware_label"].isna()
    return runs[keep]


def leaderboard(runs: pd.DataFrame, gate: float = DEFAULT_GATE) -> pd.DataFrame:
    return aggregate(runs, gate)


def regate(frame: pd.DataFrame, gate: float) -> pd.DataFrame:
    return add_pareto(apply_gate(frame, gate))


def _cost_rank(frame: pd.DataFrame, col: str) -> pd.Series:
    """1 for the cheapest row within its (task, split), 0 for the dearest; NaN cost -> NaN."""
    return frame.groupby(["task", "split"])[col].rank(pct=True, ascending=False, method="average")


def combined_score(frame: pd.DataFrame, w_score: float = 1.0, w_params: float = 0.0, w_flops: float = 0.0,
                   w_latency: float = 0.0, gate: float = DEFAULT_GATE) -> pd.Series:
    """User-weighted mix of the normalized score and cheapness (percentile rank of each cost, 1 = cheapest).

    ``(w_s * norm + w_p * cheap_params + w_f * cheap_flops + w_l * cheap_latency) / sum(w)``; blank below the
    gate, like the ratios, so a cheap chance-level model cannot win by being cheap. A cost with weight 0 is
    ignored; a needed cost that is missing makes the combined score blank.
    """
    weights = {"normalized_mean": w_score, "params_total": w_params, "flops_per_example": w_flops,
               "latency_p50_ms": w_latency}
    total = sum(w for w in weights.values() if w > 0)
    if frame.empty or total <= 0:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    acc = pd.Series(0.0, index=frame.index)
    for col, w in weights.items():
        if w <= 0:
            continue
        part = frame[col].astype(float) if col == "normalized_mean" else _cost_rank(frame, col)
        acc = acc + w * part
    out = acc / total
    norm = frame["normalized_mean"].astype(float)
    return out.where(norm.notna() & (norm >= gate) & (norm > 0))


def hardware_labels(runs: pd.DataFrame) -> list[str]:
    return sorted(x for x in runs["hardware_label"].dropna().unique())


def pareto_points(frame: pd.DataFrame, axis: str) -> pd.DataFrame:
    """Rows with a cost on ``axis`` and a score, plus ``cost``, ``y`` and ``on_front`` columns for plotting."""
    cost_col, _, pareto_col, _, _ = COST_AXES[axis]
    df = frame.copy()
    df["cost"] = df[cost_col].astype(float)
    df["y"] = df["normalized_mean"].astype(float).fillna(df["score_mean"].astype(float))
    df = df[df["cost"].notna() & (df["cost"] > 0) & df["y"].notna()]
    df["on_front"] = df[pareto_col].astype(bool)
    df["label"] = df["arch"].astype(str) + " · " + df["size"].astype(str)
    df["run"] = run_links(df)
    return df


def run_links(frame: pd.DataFrame) -> pd.Series:
    """Relative link to the Run detail page of each row's first run (``run_detail?run=<id>``)."""
    first = frame["run_ids"].astype(str).str.split(",").str[0]
    return ("run_detail?run=" + first).where(first.str.fullmatch(r"\d+"), None)


# ----------------------------------------------------------------------------------------------------------------
# depth and succinctness


def depth_frame(engine: Engine, task: str | None = None) -> pd.DataFrame:
    """Mean/std/n over seeds of each metric by depth slice: columns arch, task, size, split, metric, depth, ...

    Only completed runs; the metric is named per row so the page can offer the task's headline metric first.
    """
    cols = ["arch", "task", "size", "split", "metric", "depth", "mean", "std", "n_runs", "headline_metric"]
    if not has_runs_table(engine):
        return pd.DataFrame(columns=cols)
    q = (select(Run.arch, Run.task, Run.size, Metric.split, Metric.name, Metric.slice_value,
                func.avg(Metric.value), func.avg(Metric.value * Metric.value), func.count(Metric.value),
                func.max(Run.metric))
         .join(Metric, Metric.run_id == Run.id)
         .where(Run.status == "completed", Metric.slice_key == "depth")
         .group_by(Run.arch, Run.task, Run.size, Metric.split, Metric.name, Metric.slice_value))
    if task:
        q = q.where(Run.task == task)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    df = pd.DataFrame(rows, columns=["arch", "task", "size", "split", "metric", "depth", "mean", "mean_sq", "n_runs",
                                     "headline_metric"])
    if df.empty:
        return pd.DataFrame(columns=cols)
    n = df["n_runs"].astype(float)
    var = (df["mean_sq"] - df["mean"] ** 2).clip(lower=0) * n / (n - 1).where(n > 1)
    df["std"] = np.sqrt(var)
    df["depth"] = pd.to_numeric(df["depth"], errors="coerce")
    df["size"] = df["size"].fillna("budget")
    df = df.dropna(subset=["depth"]).sort_values(["task", "split", "arch", "size", "depth"])
    return df[cols].reset_index(drop=True)


def succinctness_dirs(db_url: str | None) -> list[Path]:
    """Where ``succinctness*.csv`` is looked for: $ARENA_RESULTS_DIR, the SQLite database's folder, ./results."""
    dirs: list[Path] = []
    if os.environ.get("ARENA_RESULTS_DIR"):
        dirs.append(Path(os.environ["ARENA_RESULTS_DIR"]))
    if db_url:
        try:
            u = make_url(db_url)
            if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
                dirs.append(Path(u.database).parent)
        except Exception:  # a malformed URL is reported elsewhere
            pass
    dirs.append(Path("results"))
    out: list[Path] = []
    for d in dirs:
        r = d.resolve()
        if r not in out:
            out.append(r)
    return out


def succinctness_frame(dirs: Sequence[Path]) -> tuple[pd.DataFrame, list[str]]:
    """All succinctness CSVs found: (rows with columns SUCCINCTNESS_COLUMNS + file, problems found)."""
    frames, problems = [], []
    for d in dirs:
        for path in sorted(glob.glob(str(Path(d) / SUCCINCTNESS_GLOB))):
            try:
                df = pd.read_csv(path)
            except Exception as exc:  # an unreadable file is reported, not fatal
                problems.append(f"{Path(path).name}: cannot read ({type(exc).__name__}: {exc})")
                continue
            missing = [c for c in SUCCINCTNESS_COLUMNS if c not in df.columns]
            if missing:
                problems.append(f"{Path(path).name}: missing columns {', '.join(missing)}")
                continue
            df = df[SUCCINCTNESS_COLUMNS + [c for c in SUCCINCTNESS_OPTIONAL if c in df.columns]].copy()
            df["file"] = Path(path).name
            frames.append(df)
    if not frames:
        return pd.DataFrame(columns=SUCCINCTNESS_COLUMNS + ["file"]), problems
    df = pd.concat(frames, ignore_index=True)
    df["depth"] = pd.to_numeric(df["depth"], errors="coerce")
    for c in ("p_star", "state_size", "flops"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df["reached"] = df["reached"].astype(str).str.lower().isin(["true", "1", "yes"])
    return df.dropna(subset=["depth"]), problems


# ----------------------------------------------------------------------------------------------------------------
# one run


def run_choices(engine: Engine, limit: int = 2000) -> pd.DataFrame:
    """Newest runs (any status) for the run picker."""
    cols = ["id", "arch", "task", "split", "size", "seed", "status", "score"]
    if not has_runs_table(engine):
        return pd.DataFrame(columns=cols)
    q = select(Run.id, Run.arch, Run.task, Run.split, Run.size, Run.seed, Run.status, Run.score).order_by(
        Run.id.desc()).limit(limit)
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(q).all(), columns=cols)


def run_detail(engine: Engine, run_id: int) -> dict[str, Any] | None:
    """The run's full record (``arena show --json`` shape) with ``reproduce`` = the exact ``arena run`` command."""
    from arena.export import run_records

    if not has_runs_table(engine):
        return None
    return run_records(engine, [run_id]).get(int(run_id))


def slices_frame(record: dict[str, Any]) -> pd.DataFrame:
    """Per-split headline scores and per-slice scores of one run: split, slice, value, metric, score."""
    rows = []
    for split, ms in (record.get("scores") or {}).items():
        for name, v in ms.items():
            rows.append({"split": split, "slice": "(all)", "value": "", "metric": name, "score": v})
    for split, keys in (record.get("slices") or {}).items():
        for key, groups in keys.items():
            for val, ms in groups.items():
                for name, v in ms.items():
                    rows.append({"split": split, "slice": key, "value": str(val), "metric": name, "score": v})
    return pd.DataFrame(rows, columns=["split", "slice", "value", "metric", "score"])


def curve_frame(record: dict[str, Any]) -> pd.DataFrame:
    """Long-form training curve from ``extra["curve"]``: step, series (loss / val / ...), value."""
    rows = []
    for point in (record.get("extra") or {}).get("curve") or []:
        if not isinstance(point, dict) or "step" not in point:
            continue
        for k, v in point.items():
            if k in ("step", "lr") or not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            rows.append({"step": int(point["step"]), "series": str(k), "value": float(v)})
    return pd.DataFrame(rows, columns=["step", "series", "value"])
