"""Leaderboard table and exports: runs aggregated over seeds, gated efficiency ratios, Pareto flags.

One row per (arch, task, split, size, variant, training steps) over completed runs, where *size* is the size
preset or the parameter budget and *variant* lists the run options that differ from the defaults (arch/task
config, widths, training settings) — so only seeds are averaged, never different experiments. Each row carries mean, std and n of
the raw and normalized score; the costs (params total/active, analytic forward FLOPs per example, latency p50 at
batch 1, peak memory); the three ratios, normalized score per million parameters / per GFLOP / per millisecond,
left blank (NaN) when the mean normalized score is below the gate so a chance-level model can never top a ratio
ranking; and Pareto flags (score vs each cost) within each (task, split).

Exports: CSV, Parquet and JSON keep every numeric column and carry the export's metadata (arena and methodology
versions, gate, query, units); JSON adds the full record and provenance of every run. Markdown and LaTeX give one
compact table per task and split, ready to paste into a paper (:mod:`arena.paper`).
"""

from __future__ import annotations

import io
import json
import math
from collections import namedtuple
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import String, Text, cast, func, inspect, literal, select, type_coerce
from sqlalchemy.engine import Engine

from arena import columns, paper
from arena.errors import ArenaError
from arena.export_formats import FORMATS, SUFFIX_FORMAT, format_for  # noqa: F401  (re-exported)
from arena.paper import latex_escape, md_escape  # noqa: F401  (re-exported)
from arena.store.models import Run

DEFAULT_GATE = 0.5
UNEXPLAINED_FLOPS = "with no known cause"  # in arena.measure.flops' note when the counter disagrees unexplained
GROUP_KEYS = ["arch", "arch_version", "task", "task_version", "split", "size", "variant", "max_steps", "source",
              "plugin_name", "plugin_version", "plugin_sha256", "derived"]
# cost axis -> (cost column, ratio column, pareto column, unit divisor, human label), from arena.columns
COST_AXES: dict[str, tuple[str, str, str, float, str]] = columns.ratio_axes()
RATIO_COLUMNS = [v[1] for v in COST_AXES.values()]
PARETO_COLUMNS = ["pareto"] + [v[2] for v in COST_AXES.values()]

# identity and context columns, then every declared score and cost column (arena.columns)
_RUN_COLUMNS = [
    Run.id, Run.arch, Run.arch_version, Run.arch_family, Run.task, Run.task_version, Run.split, Run.size, Run.seed,
    Run.status, Run.created_at, Run.finished_at, Run.flops_note, Run.metric, Run.headline_split, Run.chance,
    Run.higher_is_better, Run.source, Run.plugin_name, Run.plugin_version, Run.plugin_sha256, Run.task_specific,
    Run.error, Run.flops_status, Run.isolation, Run.parent_run_id, Run.derived_method, Run.heads_kept,
    Run.finetune_steps, *[getattr(Run, c.name) for c in columns.COLUMNS],
]
_NUMERIC = [c.name for c in columns.COLUMNS if c.sql != "text"] + ["chance"]
# the few config/hardware fields the board needs, extracted by the database as one small JSON array per run, so
# Python decodes each distinct array once instead of every run's whole config
_SPEC_PATHS = ("train", "arch_config", "task_config", "d_model", "n_layers", "params", "size")
_HW_PATHS = ("gpu", "cpu", "threads")
RUN_FRAME_COLUMNS = [c.key for c in _RUN_COLUMNS] + ["hardware_label", "variant", "max_steps", "lr", "derived"]


def _json_array(engine: Engine, column: Any, prefix: tuple[str, ...], keys: Sequence[str]) -> Any:
    """SQL for ``[column.prefix.k for k in keys]`` as JSON text (NULL entries for missing keys)."""
    if engine.dialect.name == "sqlite":
        dotted = "".join(f'."{p}"' for p in prefix)
        return func.json_extract(column, *[f'${dotted}."{k}"' for k in keys])
    if engine.dialect.name == "postgresql":
        from sqlalchemy import literal_column

        parts = [column.op("#>")(literal_column(f"'{{{','.join((*prefix, k))}}}'")) for k in keys]
        return cast(func.json_build_array(*parts), Text)  # text, so the driver does not decode it
    return func.json_array(*[column[(*prefix, k)] for k in keys])  # MySQL and others: best effort


# ----------------------------------------------------------------------------------------------------------------
# loading


def has_runs_table(engine: Engine) -> bool:
    """False for an empty file or a database arena has never written to (treated as "no runs")."""
    return "runs" in inspect(engine).get_table_names()


def run_columns_present(engine: Engine) -> set[str]:
    """The columns the ``runs`` table of this database has (an older schema lacks the newest)."""
    return {c["name"] for c in inspect(engine).get_columns("runs")}


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


def derived_labels(df: pd.DataFrame) -> pd.Series:
    """``""`` for a trained run; ``pruned <method> <kept> heads[ +ft <steps>]`` for a run made by ``arena prune``
    (it has its parent's config, so without this label it would be averaged with its parent)."""
    method = df["derived_method"].astype(object)
    kept = pd.to_numeric(df["heads_kept"], errors="coerce").astype("Int64").astype(str)
    steps = pd.to_numeric(df["finetune_steps"], errors="coerce").fillna(0).astype(int)
    label = "pruned " + method.fillna("").astype(str) + " " + kept + " heads" + steps.map(
        lambda n: f" +ft {n}" if n else "")
    return label.where(method.notna() | df["parent_run_id"].notna(), "")


def variant_label(config: dict | None, train_defaults: dict[str, Any] | None = None) -> str:
    """Run options that differ from the defaults, except the seed: ``d_model=64; arch.cell=gru; train.lr=0.001``."""
    spec = (config or {}).get("spec")
    if not isinstance(spec, dict):
        return ""
    train_defaults = train_defaults if train_defaults is not None else _train_defaults()
    return _variant(spec, train_defaults)


def _variant(spec: dict[str, Any], train_defaults: dict[str, Any]) -> str:
    parts = [f"{k}={spec[k]}" for k in ("d_model", "n_layers") if spec.get(k)]
    parts += [f"arch.{k}={_short(v)}" for k, v in sorted((spec.get("arch_config") or {}).items())]
    parts += [f"task.{k}={_short(v)}" for k, v in sorted((spec.get("task_config") or {}).items())]
    for k, v in sorted((spec.get("train") or {}).items()):
        if k in ("max_steps", "eval_batch_size", "checkpoint_every"):
            continue  # steps get their own column; the others do not change the result
        if k in train_defaults and v != train_defaults[k]:
            parts.append(f"train.{k}={_short(v)}")
    return "; ".join(parts)


def _labels(specs: Sequence[Any], defaults: dict[str, Any]) -> list[tuple[str, Any, Any, Any]]:
    """(variant, max_steps, lr, size) per run from its extracted spec array, each distinct array decoded once."""
    memo: dict[Any, tuple[str, Any, Any, Any]] = {}
    out = []
    for text in specs:
        hit = memo.get(text)
        if hit is None:
            values = json.loads(text) if isinstance(text, str) else text
            spec = dict(zip(_SPEC_PATHS, values if isinstance(values, list) else [None] * len(_SPEC_PATHS),
                            strict=True))
            train = spec["train"] if isinstance(spec["train"], dict) else {}
            spec.update(train=train, arch_config=spec["arch_config"] or {}, task_config=spec["task_config"] or {})
            size = f"budget {human_int(spec['params'])}" if spec["params"] else spec["size"]
            hit = memo[text] = (_variant(spec, defaults), train.get("max_steps"), train.get("lr"), size)
        out.append(hit)
    return out


def _hardware_labels(arrays: Sequence[Any]) -> list[str | None]:
    memo: dict[Any, str | None] = {}
    out = []
    for text in arrays:
        if text not in memo:
            values = json.loads(text) if isinstance(text, str) else text
            hw = dict(zip(_HW_PATHS, values, strict=True)) if isinstance(values, list) else {}
            memo[text] = hardware_label(hw) if any(v is not None for v in hw.values()) else None
        out.append(memo[text])
    return out


def load_runs(engine: Engine, *, task: str | None = None, split: str | None = None,
              statuses: Sequence[str] = ("completed",)) -> pd.DataFrame:
    """One row per run (flat columns of :data:`RUN_FRAME_COLUMNS`), newest first."""
    if not has_runs_table(engine):
        return pd.DataFrame(columns=RUN_FRAME_COLUMNS)
    present = run_columns_present(engine)
    # timestamps are parsed below in one vectorized call, not row by row; a column this database's schema does
    # not have yet (written by an older arena, opened read-only so never migrated) reads as NULL
    plain = [type_coerce(c, String).label(c.key) if c.key in ("created_at", "finished_at") else
             c if c.key in present else literal(None).label(c.key) for c in _RUN_COLUMNS]
    q = select(*plain, _json_array(engine, Run.config, ("spec",), _SPEC_PATHS).label("spec"),
               _json_array(engine, Run.hardware, (), _HW_PATHS).label("hw")
               ).where(Run.status.in_(list(statuses))).order_by(Run.id.desc())
    if task:
        q = q.where(Run.task == task)
    if split:
        q = q.where(Run.split == split)
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    if not rows:
        return pd.DataFrame(columns=RUN_FRAME_COLUMNS)
    names = [c.key for c in _RUN_COLUMNS] + ["spec", "hw"]
    df = pd.DataFrame(dict(zip(names, (list(col) for col in zip(*rows, strict=True)), strict=True)))
    variant, max_steps, lr, size = zip(*_labels(df["spec"].tolist(), _train_defaults()), strict=True)
    df["variant"] = list(variant)
    df["max_steps"] = pd.to_numeric(pd.Series(max_steps, index=df.index, dtype=object), errors="coerce").astype(
        "Int64")
    df["lr"] = pd.to_numeric(pd.Series(lr, index=df.index, dtype=object), errors="coerce")
    budget_or_preset = pd.Series(size, index=df.index, dtype=object)
    df["size"] = budget_or_preset.where(budget_or_preset.astype(str).str.startswith("budget "),
                                        df["size"].astype(object).fillna(budget_or_preset)).fillna("?")
    hw = pd.Series(_hardware_labels(df["hw"].tolist()), index=df.index, dtype=object)
    df["hardware_label"] = hw.where(df["latency_p50_ms"].notna(), None)
    df["derived"] = derived_labels(df)
    for col in ("created_at", "finished_at"):
        df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
    df[_NUMERIC] = df[_NUMERIC].astype("float64")
    return df[RUN_FRAME_COLUMNS]


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


def _joined(gid: np.ndarray, values: np.ndarray, n_groups: int) -> list[str]:
    """Per group, its values sorted and comma-joined ("0,1,2"), without a Python call per group."""
    order = np.lexsort((values, gid))
    bounds = np.searchsorted(gid[order], np.arange(1, n_groups))
    return [",".join(chunk) for chunk in np.split(values[order].astype(str), bounds)]


def aggregate(runs: pd.DataFrame, gate: float = DEFAULT_GATE) -> pd.DataFrame:
    """Leaderboard rows from :func:`load_runs` output (completed runs; other statuses only counted in n_failed).

    Only built-in (Cython) group reductions: 10,000 runs in 900 rows aggregate in well under a second.
    """
    cols = leaderboard_columns()
    if runs.empty:
        return pd.DataFrame(columns=cols)
    done = runs["status"].eq("completed")
    work = runs.assign(score=runs["score"].where(done), normalized_score=runs["normalized_score"].where(done),
                       _ok=done.astype(int), task_specific=runs["task_specific"].fillna(False).astype(bool),
                       # the counter note names an unexplained disagreement (notes written before the
                       # explanations existed flagged every LSTM/attention run, so they do not count)
                       _flops_unverified=runs["flops_note"].astype(object).fillna("").str.contains(
                           UNEXPLAINED_FLOPS, regex=False),
                       _declared=runs["flops_status"].astype(object).eq("declared"))
    g = work.groupby(GROUP_KEYS, sort=False, dropna=False)
    declared = {board: (c.name, how) for c in columns.COLUMNS for board, how, _ in c.board_columns()}
    out = g.agg(
        chance=("chance", "mean"), n=("_ok", "sum"), n_runs=("id", "size"), **declared,
        task_specific=("task_specific", "max"), flops_unverified=("_flops_unverified", "max"),
        _declared=("_declared", "max"),
        last_finished=("finished_at", "max"), lr=("lr", "first"),
    )
    firsts = g[["arch_family", "metric", "headline_split", "higher_is_better", "hardware_label", "flops_status",
                "isolation"]].first()
    out = out.join(firsts)
    n_hw = g["hardware_label"].nunique()
    out["hardware"] = out.pop("hardware_label").where(n_hw.le(1), "mixed")
    out["isolation"] = out["isolation"].where(g["isolation"].nunique().le(1), "mixed")
    # a group's FLOPs are only as verified as its least verified run
    declared = out.pop("_declared").astype(bool)
    out["flops_status"] = out["flops_status"].astype(object).where(~declared, "declared")
    out["flops_unverified"] = out["flops_unverified"].astype(bool) | declared
    out = out.reset_index()
    gid = g.ngroup().to_numpy()
    out["seeds"] = _joined(gid, work["seed"].to_numpy(), len(out))
    out["run_ids"] = _joined(gid, work["id"].to_numpy(), len(out))
    out["n"] = out["n"].astype(int)
    out["n_failed"] = (out.pop("n_runs") - out["n"]).astype(int)
    # std over one seed is undefined: leave NaN (shown as "n=1")
    out = apply_gate(out, gate)
    out = add_pareto(out)
    for k in ("plugin_name", "plugin_version", "plugin_sha256"):
        out[k] = out[k].astype(object).where(out[k].notna() & out[k].astype(str).ne(""), None)
    return out[cols].sort_values(["task", "split", "normalized_mean", "score_mean"],
                                 ascending=[True, True, False, False], na_position="last").reset_index(drop=True)


def leaderboard_columns() -> list[str]:
    return ["arch", "arch_version", "arch_family", "task", "task_version", "split", "size", "variant", "derived",
            "max_steps", "metric", "headline_split", "chance", "n", "n_failed", "seeds",
            *[board for c in columns.COLUMNS for board, _, _ in c.board_columns()], *RATIO_COLUMNS, *PARETO_COLUMNS, "hardware", "source", "plugin_name",
            "plugin_version", "plugin_sha256", "flops_status", "isolation", "task_specific", "flops_unverified",
            "higher_is_better", "lr",
            "run_ids", "last_finished"]


def apply_gate(frame: pd.DataFrame, gate: float = DEFAULT_GATE, declared_flops: bool = False) -> pd.DataFrame:
    """(Re)compute the three ratios: blank where the mean normalized score is below ``gate``, 0 or unknown.

    Latency ratios are also blank when the seeds ran on different hardware ("mixed"): not comparable. Per-FLOP
    ratios are blank for submissions whose FLOPs are only declared by the plugin (``flops_status="declared"``)
    unless ``declared_flops``: a number arena could not check does not rank.
    """
    frame = frame.copy()
    norm = frame["normalized_mean"].astype(float)
    passed = norm.notna() & (norm >= gate) & (norm > 0)  # even at gate 0, chance level earns no ratio
    for axis, (cost_col, ratio_col, _, unit, _) in COST_AXES.items():
        cost = frame[cost_col].astype(float) / unit
        ok = passed & cost.notna() & (cost > 0)
        if axis == "latency":
            ok &= frame["hardware"].astype(object).ne("mixed")
        if axis == "flops" and not declared_flops and "flops_status" in frame:
            ok &= frame["flops_status"].astype(object).ne("declared")
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


def to_markdown(frame: pd.DataFrame, gate: float = DEFAULT_GATE) -> str:
    """One section per task and split, best in bold (see :mod:`arena.paper`)."""
    return paper.to_markdown(frame, gate)


def to_latex(frame: pd.DataFrame, gate: float = DEFAULT_GATE) -> str:
    """One booktabs table per task and split with ``\\caption`` and ``\\label`` (see :mod:`arena.paper`)."""
    return paper.to_latex(frame, gate)


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


_MetricRow = namedtuple("_MetricRow", ["run_id", "split", "name", "slice_key", "slice_value", "value"])


def run_records(engine: Engine, run_ids: Iterable[int], chunk: int = 500) -> dict[int, dict[str, Any]]:
    """Full records (``arena show --json`` shape, including provenance and the reproduce command) by run id.

    Reads the three tables with plain SELECTs (no ORM identity map: ~10x faster for thousands of runs) and hands
    ``arena.record.full_summary`` attribute views of the rows.
    """
    from types import SimpleNamespace

    from arena.record import full_summary
    from arena.store.models import Metric, Provenance

    ids = sorted(set(int(i) for i in run_ids))
    out: dict[int, dict[str, Any]] = {}
    runs_t, metrics_t, prov_t = Run.__table__, Metric.__table__, Provenance.__table__
    present = run_columns_present(engine)  # a database of an older schema lacks the newest columns: read them as None
    run_cols = [c for c in runs_t.c if c.name in present]
    absent = {c.name: None for c in runs_t.c if c.name not in present}
    with engine.connect() as conn:
        for i in range(0, len(ids), chunk):
            part = ids[i:i + chunk]
            metrics: dict[int, list[Any]] = {}
            rows = conn.execute(select(*[metrics_t.c[k] for k in _MetricRow._fields])
                                .where(metrics_t.c.run_id.in_(part)).order_by(metrics_t.c.id)).tuples().all()
            for m in map(_MetricRow._make, rows):  # plain tuples: SQLAlchemy Row attribute access is ~5x slower
                metrics.setdefault(m.run_id, []).append(m)
            provs = {p.run_id: p for p in conn.execute(select(prov_t).where(prov_t.c.run_id.in_(part)))}
            names = [c.name for c in run_cols]
            for row in conn.execute(select(*run_cols).where(runs_t.c.id.in_(part))).tuples().all():
                values = dict(zip(names, row, strict=True))
                rid = values["id"]
                run = SimpleNamespace(**absent, **values, metrics=metrics.get(rid, []), provenance=provs.get(rid))
                out[rid] = full_summary(run)
    return out


UNITS = {
    "chance": "the task metric", **columns.board_units(),
    "norm_per_mparam": "normalized score per million parameters", "norm_per_gflop": "normalized score per GFLOP",
    "norm_per_ms": "normalized score per ms", "lr": "peak learning rate", "max_steps": "optimizer steps",
}


def export_meta(frame: pd.DataFrame, gate: float, query: dict[str, Any] | None = None) -> dict[str, Any]:
    """What every export carries: versions, the gate, the query that selected the rows, and the units."""
    from arena import METHODOLOGY_VERSION, __version__

    return {"arena_version": __version__, "methodology_version": METHODOLOGY_VERSION, "gate": gate,
            "query": {k: v for k, v in (query or {}).items() if v not in (None, (), [])},
            "generated_at": datetime.now(UTC).isoformat(), "n_rows": len(frame),
            "units": {k: v for k, v in UNITS.items() if k in frame.columns}, "columns": list(frame.columns)}


def to_json(frame: pd.DataFrame, engine: Engine | None = None, gate: float = DEFAULT_GATE,
            query: dict[str, Any] | None = None) -> str:
    """``{"meta", "rows", "runs"}``: rows reference their runs by id; ``runs`` holds every run's full record."""
    ids = [int(x) for ids in frame["run_ids"].dropna() for x in str(ids).split(",") if x]
    runs = run_records(engine, ids) if engine is not None and ids else {}
    doc = {
        "meta": {**export_meta(frame, gate, query), "n_runs": len(runs)},
        "rows": [{**r, "run_ids": [int(x) for x in str(r["run_ids"] or "").split(",") if x]}
                 for r in frame_records(frame)],
        "runs": {str(k): v for k, v in runs.items()},
    }
    return json.dumps(doc, separators=(",", ":"), default=str, allow_nan=False) + "\n"  # compact: C encoder


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralize_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula (starting with = + - @ tab CR) get a leading ``'``
    (OWASP's CSV-injection advice), and line breaks inside a cell become spaces; numbers are untouched. Names and
    labels can come from a plugin."""

    def safe(v: Any) -> Any:
        if not isinstance(v, str):
            return v
        v = "'" + v if v.startswith(_FORMULA_START) else v
        return v.replace("\r", " ").replace("\n", " ")

    frame = frame.copy()
    for col in frame.columns:
        if frame[col].dtype == object:
            frame[col] = frame[col].map(safe)
    return frame


CSV_HEADER = "# arena leaderboard export; read it with pandas.read_csv(path, comment=\"#\")\n"


def to_csv(frame: pd.DataFrame, gate: float = DEFAULT_GATE, query: dict[str, Any] | None = None) -> str:
    """Two ``#`` comment lines (the second is ``# meta: {json}``), then the table with every text cell quoted (so
    a ``#`` inside a name is never read as a comment)."""
    import csv

    meta = json.dumps(export_meta(frame, gate, query), separators=(",", ":"), default=str)
    return CSV_HEADER + f"# meta: {meta}\n" + neutralize_formulas(frame).to_csv(index=False,
                                                                               quoting=csv.QUOTE_NONNUMERIC)


def read_csv_meta(text: str) -> dict[str, Any]:
    """The ``meta`` dictionary of an exported CSV (its text, or the first lines of it)."""
    for line in text.splitlines()[:5]:
        if line.startswith("# meta: "):
            return json.loads(line[len("# meta: "):])
    raise ArenaError("not an arena CSV export: no '# meta:' line at the top")


def to_parquet_bytes(frame: pd.DataFrame, gate: float = DEFAULT_GATE, query: dict[str, Any] | None = None) -> bytes:
    """Parquet with the export metadata as JSON under the schema metadata key ``arena``."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ArenaError("--format parquet needs pyarrow: pip install 'arena[leaderboard]'") from None
    table = pa.Table.from_pandas(neutralize_formulas(frame), preserve_index=False)
    meta = json.dumps(export_meta(frame, gate, query), default=str).encode()
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"arena": meta})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def render(frame: pd.DataFrame, fmt: str, *, engine: Engine | None = None, gate: float = DEFAULT_GATE,
           query: dict[str, Any] | None = None) -> str | bytes:
    if fmt == "csv":
        return to_csv(frame, gate, query)
    if fmt == "md":
        return to_markdown(frame, gate)
    if fmt == "latex":
        return to_latex(frame, gate)
    if fmt == "json":
        return to_json(frame, engine, gate, query)
    if fmt == "parquet":
        return to_parquet_bytes(frame, gate, query)
    raise ArenaError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")


__all__ = ["leaderboard_frame", "load_runs", "aggregate", "apply_gate", "add_pareto", "pareto_front", "render",
           "to_markdown", "to_latex", "to_json", "to_csv", "to_parquet_bytes", "md_escape", "latex_escape",
           "format_for", "run_records", "hardware_label", "COST_AXES", "DEFAULT_GATE", "FORMATS"]
