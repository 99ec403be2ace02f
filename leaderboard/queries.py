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

from arena.columns import COSTS, PRIOR
from arena.export import (
    COST_AXES,
    DEFAULT_GATE,
    aggregate,
    apply_gate,
    has_runs_table,
    load_runs,
    md_escape,
)
from arena.store.models import Metric, Run

SUCCINCTNESS_COLUMNS = ["task", "arch", "depth", "p_star", "state_size", "flops", "reached"]
SUCCINCTNESS_OPTIONAL = ["status", "p_star_lower", "seeds_passed", "seeds", "d_model", "n_layers"]  # kept when present
SUCCINCTNESS_GLOB = "succinctness*.csv"


def safe_md(text: Any) -> str:
    """Run metadata inside Markdown (titles, captions): every Markdown/HTML character escaped."""
    return md_escape(text)


def db_label(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


# ----------------------------------------------------------------------------------------------------------------
# runs and the leaderboard


def runs_frame(engine: Engine, task: str | None = None) -> pd.DataFrame:
    """Every completed run (of ``task``, if given), one row each, newest first."""
    return load_runs(engine, task=task)


def task_pairs(engine: Engine) -> list[tuple[str, str]]:
    """Every (task, split) with a completed run, sorted."""
    if not has_runs_table(engine):
        return []
    with engine.connect() as conn:
        rows = conn.execute(select(Run.task, Run.split).where(Run.status == "completed").distinct()).all()
    return sorted((str(t), str(s)) for t, s in rows)


def arch_names(engine: Engine) -> list[str]:
    if not has_runs_table(engine):
        return []
    with engine.connect() as conn:
        return sorted(str(a) for (a,) in conn.execute(select(Run.arch).distinct()))


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
    """Ratios for another gate (the Pareto flags do not depend on it): cheap, so the aggregate is cached once."""
    return apply_gate(frame, gate)


def task_splits(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """Every (task, split) with completed runs, sorted: the board shows one at a time."""
    pairs = runs[["task", "split"]].drop_duplicates().astype(str)
    return sorted(zip(pairs["task"], pairs["split"], strict=True))


def headline(frame: pd.DataFrame) -> dict[str, Any]:
    """What the score column of one task's board is: metric, evaluation split, chance level, direction."""
    first = frame.iloc[0] if len(frame) else pd.Series(dtype=object)
    hib = first.get("higher_is_better")
    return {"metric": first.get("metric") or "score", "headline_split": first.get("headline_split") or "",
            "chance": first.get("chance"), "higher_is_better": True if hib is None or pd.isna(hib) else bool(hib)}


# why a ratio cell is blank, in the order they are checked
BLANK_REASONS = {
    "task-specific": "a task-specific model (the task's structure is built in): not ranked on efficiency unless "
                     "\"include task-specific models\" is on",
    "not measured": "the cost was not measured for this row (e.g. FLOPs of a symbolic model, latency switched off)",
    "mixed hardware": "the seeds' latencies were measured on different machines: not comparable",
    "no normalized score": "the task's metric has no chance level, so there is no normalized score to divide",
    "below gate": "the row's mean normalized score is below the gate",
}


def blank_reasons(frame: pd.DataFrame, axis: str, gate: float, include_task_specific: bool) -> pd.Series:
    """For each row, why its ``axis`` ratio is blank (a key of :data:`BLANK_REASONS`), or None if it has one."""
    cost_col, ratio_col, _, _, _ = COST_AXES[axis]
    norm = frame["normalized_mean"].astype(float)
    cost = frame[cost_col].astype(float)
    reason = pd.Series(None, index=frame.index, dtype=object)
    checks = [
        (frame["task_specific"].fillna(False).astype(bool) & (not include_task_specific), "task-specific"),
        (cost.isna() | cost.le(0), "not measured"),
        (frame["hardware"].astype(object).eq("mixed") & (axis == "latency"), "mixed hardware"),
        (norm.isna(), "no normalized score"),
        (norm.lt(gate) | norm.le(0), "below gate"),
    ]
    for mask, why in checks:
        reason = reason.where(reason.notna() | ~mask.fillna(False).astype(bool), why)
    return reason.where(frame[ratio_col].isna() | reason.eq("task-specific"))


# why a row's prior cell is blank
PRIOR_REASONS = {
    "no prior": "no hand-written prior: a general model learns everything it knows from the data",
    "not recorded": "a task-specific model whose prior was not recorded (run before arena recorded it, or a model "
                    "that does not report one)",
}
PRIOR_COLS = [c.board_name for c in PRIOR]


def prior_cells(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Per row: the prior's sort key (skeleton gzip bytes), its text (``709 B gzip · 58 lines · 69.7 bits``, None
    when blank) and why it is blank (a key of :data:`PRIOR_REASONS`, None when it has one)."""
    from arena.paper import prior_text

    cols = frame.reindex(columns=PRIOR_COLS)
    text = pd.Series([prior_text(r, "", " · ") or None for r in cols.to_dict("records")], index=frame.index,
                     dtype=object)
    ts = frame["task_specific"].fillna(False).astype(bool)
    why = pd.Series(np.where(ts, "not recorded", "no prior"), index=frame.index, dtype=object).where(text.isna())
    return cols["prior_gzip_bytes"].astype(float), text, why


def badges(frame: pd.DataFrame) -> pd.Series:
    """Per row, the labels a reader needs before trusting it: task-specific, plugin, unverified cost (FLOPs only
    declared by a submission, or FLOPs the counter disagrees with for no known reason), no isolation (a submission
    that ran without a sandbox), mixed hardware, pruned (a model derived from a trained run by ``arena prune``)."""
    out: list[list[str]] = [[] for _ in range(len(frame))]
    none = pd.Series(False, index=frame.index)
    flags = [(frame["task_specific"].fillna(False).astype(bool), "task-specific"),
             (frame["source"].astype(str).eq("plugin"), "plugin"),
             (frame.get("flops_unverified", none).fillna(False).astype(bool)
              | frame.get("flops_status", none).astype(object).eq("declared"), "unverified cost"),
             (frame.get("isolation", none).astype(object).eq("none"), "no isolation"),
             (frame["hardware"].astype(object).eq("mixed"), "mixed hardware"),
             (frame.get("derived", none).astype(object).fillna("").astype(str).ne(""), "pruned")]
    for mask, label in flags:
        for i in np.flatnonzero(mask.to_numpy()):
            out[i].append(label)
    return pd.Series(out, index=frame.index, dtype=object)


BADGES = ["task-specific", "plugin", "unverified cost", "no isolation", "mixed hardware", "pruned"]
RANK_BY = {"score": "normalized score", "params": "score per M params", "flops": "score per GFLOP",
           "latency": "score per ms"}


def score_text(frame: pd.DataFrame) -> pd.Series:
    """``0.812 ± 0.013`` (no ± for one seed; 3 decimals, so the text sorts like the number for scores in [0, 10))."""
    from arena.paper import score_text as one

    return pd.Series([one(m, s, n) for m, s, n in zip(frame["score_mean"], frame["score_std"], frame["n"],
                                                     strict=True)], index=frame.index, dtype=object)


def board_view(frame: pd.DataFrame, gate: float, rank_by: str = "params",
               include_task_specific: bool = False) -> pd.DataFrame:
    """One task's board for display: ratios at ``gate`` (blank for task-specific models unless included), a
    ``rank`` by ``rank_by`` (score or a cost axis), ``why_<ratio>`` reasons for blank ratios, ``badges``,
    ``score_text`` and the hand-written ``prior`` (:func:`prior_cells`); sorted by rank, unranked rows after by normalized score."""
    f = regate(frame, gate)
    for axis, (_, ratio_col, _, _, _) in COST_AXES.items():
        f["why_" + ratio_col] = blank_reasons(f, axis, gate, include_task_specific)
        f[ratio_col] = f[ratio_col].where(f["why_" + ratio_col].isna())
    key = f["normalized_mean"].astype(float) if rank_by == "score" else f[COST_AXES[rank_by][1]].astype(float)
    if rank_by == "score" and not include_task_specific:
        key = key.where(~f["task_specific"].fillna(False).astype(bool))
    f["rank"] = key.rank(ascending=False, method="min").astype("Int64")
    f["badges"] = badges(f)
    f["score_text"] = score_text(f)
    lo, hi = f["latency_min_ms"].astype(float), f["latency_max_ms"].astype(float)
    from arena.paper import si

    f["prior"], f["prior_text"], f["why_prior"] = prior_cells(f)
    f["latency_range"] = [f"{si(a)}–{si(b)}" if b > a and si(a) != si(b) else "" for a, b in zip(lo, hi, strict=True)]
    f["run"] = run_links(f)
    order = f.assign(_k=f["rank"].astype(float).fillna(np.inf), _n=-f["normalized_mean"].astype(float).fillna(-1))
    return f.loc[order.sort_values(["_k", "_n"]).index].reset_index(drop=True)


RATIO_COLS = [v[1] for v in COST_AXES.values()]
COST_COLS = [c.board_name for c in COSTS]
MUTED = "color: #8a8f98"


def styled_board(view: pd.DataFrame, cols: Sequence[str]) -> Any:
    """The grid's data and its display: numbers with 3 significant figures, and blank cells that say why.

    The grid draws a missing value as one fixed placeholder, so a blank ratio holds -inf (sorts last) and a cost
    that was not measured +inf, each displayed as text ("— below gate", "— not measured") in grey; the numbers
    underneath keep sorting as numbers. The ``prior`` cell shows its text over the skeleton's gzip bytes ("— no
    prior" in grey for a general model). Returns a pandas Styler over ``view[cols]``.
    """
    from arena.paper import si

    table = view[list(cols)].reset_index(drop=True).copy()
    ratios = [c for c in RATIO_COLS if c in table]
    costs = [c for c in COST_COLS if c in table]
    whys = {c: view["why_" + c].reset_index(drop=True) for c in ratios}
    for c in ratios:
        table[c] = table[c].astype(float).where(whys[c].isna(), -np.inf)
    for c in costs:
        table[c] = table[c].astype(float).fillna(np.inf)
    styler = table.style.format(si, subset=ratios + costs, na_rep="—")
    for c in ratios:
        for reason in whys[c].dropna().unique():
            styler = styler.format(lambda _v, r=reason: f"— {r}", subset=(whys[c].index[whys[c] == reason], [c]))
    for c in costs:
        styler = styler.format(lambda v: "— not measured" if v == np.inf else si(v), subset=[c])
    blank = ratios + costs
    if "prior" in table:  # sorts by the skeleton's gzip bytes, shows all three figures or why there are none
        text, why = view["prior_text"].reset_index(drop=True), view["why_prior"].reset_index(drop=True)
        table["prior"] = table["prior"].astype(float).where(why.isna(), np.inf)
        shown = text.where(why.isna(), "— " + why.astype(str))
        for label in shown.dropna().unique():
            styler = styler.format(lambda _v, t=label: t, subset=(shown.index[shown == label], ["prior"]))
        blank.append("prior")
    return styler.apply(lambda col: np.where(np.isinf(col.astype(float)), MUTED, ""), subset=blank)


def search(frame: pd.DataFrame, text: str) -> pd.DataFrame:
    """Rows whose architecture, size, variant, plugin or badges contain every word of ``text`` (any case)."""
    words = [w for w in str(text or "").lower().split() if w]
    if not words:
        return frame
    hay = (frame["arch"].astype(str) + " " + frame["size"].astype(str) + " " + frame["variant"].astype(str) + " "
           + frame["plugin_name"].astype(object).fillna("").astype(str) + " "
           + frame["badges"].map(" ".join)).str.lower()
    keep = pd.Series(True, index=frame.index)
    for w in words:
        keep &= hay.str.contains(w, regex=False)
    return frame[keep]


# one colour per architecture on every page: built-ins fixed, anything else by a stable hash of its name
ARCH_COLORS = {"rnn": "#1f77b4", "transformer": "#ff7f0e", "mamba": "#2ca02c", "moe": "#9467bd",
               "moe-transformer": "#9467bd", "hyena": "#8c564b", "compressive": "#e377c2", "rnn-lm": "#17becf",
               "state-machine": "#d62728", "chance-sm": "#7f7f7f"}
_SPARE = ["#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
          "#756bb1", "#636363", "#6baed6", "#fd8d3c", "#74c476", "#9e9ac8", "#969696"]


def arch_color(arch: str) -> str:
    if arch in ARCH_COLORS:
        return ARCH_COLORS[arch]
    import hashlib

    return _SPARE[int(hashlib.sha256(str(arch).encode()).hexdigest(), 16) % len(_SPARE)]


def arch_scale(archs: Sequence[str]) -> tuple[list[str], list[str]]:
    """(domain, range) for an Altair colour scale that gives every architecture its own fixed colour."""
    domain = sorted({str(a) for a in archs})
    return domain, [arch_color(a) for a in domain]


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
    """Rows with a cost on ``axis`` and a score, plus ``cost``, ``y`` (± std as ``y_lo``/``y_hi``), ``on_front`` and a
    ``label`` for plotting."""
    cost_col, _, pareto_col, _, _ = COST_AXES[axis]
    df = frame.copy()
    df["cost"] = df[cost_col].astype(float)
    norm = df["normalized_mean"].astype(float)
    df["y"] = norm.fillna(df["score_mean"].astype(float))
    std = df["normalized_std"].astype(float).where(norm.notna(), df["score_std"].astype(float))
    df["y_lo"], df["y_hi"] = df["y"] - std, df["y"] + std
    df = df[df["cost"].notna() & (df["cost"] > 0) & df["y"].notna()]
    df["on_front"] = df[pareto_col].astype(bool)
    df["label"] = row_labels(df) if len(df) else pd.Series(dtype=object)
    # front labels alternate above and below their point, so neighbours on the front do not print over each other
    order = df["cost"].where(df["on_front"]).rank(method="first")
    df["label_dy"] = np.where(order.fillna(0) % 2 == 1, -11, 15)
    df["run"] = run_links(df)
    return df


def run_links(frame: pd.DataFrame) -> pd.Series:
    """Relative link to the Run detail page of each row's first run (``run_detail?run=<id>``)."""
    first = frame["run_ids"].astype(str).str.split(",").str[0]
    return ("run_detail?run=" + first).where(first.str.fullmatch(r"\d+"), None)


# ----------------------------------------------------------------------------------------------------------------
# depth and succinctness


ROW_KEY = ["arch", "arch_version", "task", "task_version", "split", "size", "variant", "max_steps", "source",
           "plugin_name", "plugin_version", "plugin_sha256"]  # the leaderboard's row: only seeds are averaged


def row_labels(frame: pd.DataFrame) -> pd.Series:
    """``arch · size · variant · N steps`` (variant and steps only where rows of the frame differ in them; the
    default variant adds nothing)."""
    from arena.paper import short_variant

    label = frame["arch"].astype(str) + " · " + frame["size"].astype(str)
    if frame["variant"].astype(str).nunique() > 1:
        label += frame["variant"].map(short_variant).map(lambda v: f" · {v}" if v else "")
    if frame["max_steps"].astype(object).nunique(dropna=False) > 1:
        label += frame["max_steps"].map(lambda v: "" if pd.isna(v) else f" · {int(v)} steps")
    plugin = frame["plugin_name"].astype(object)
    return label + plugin.map(lambda p: f" ({p})" if isinstance(p, str) and p else "")


def metric_rows(engine: Engine, task: str | None, *, slice_key: str | None = None, splits: Sequence[str] = ()
                ) -> pd.DataFrame:
    """Raw metric values of the task's (every task's, for None) completed runs: run id, split, metric, slice value
    (``slice_key`` rows, or the whole-split values when None), value."""
    cols = ["id", "eval_split", "metric", "slice", "value"]
    if not has_runs_table(engine):
        return pd.DataFrame(columns=cols)
    q = (select(Metric.run_id, Metric.split, Metric.name, Metric.slice_value, Metric.value)
         .join(Run, Metric.run_id == Run.id).where(Run.status == "completed"))
    if task:
        q = q.where(Run.task == task)
    q = q.where(Metric.slice_key == slice_key) if slice_key else q.where(Metric.slice_key.is_(None))
    if splits:
        q = q.where(Metric.split.in_(list(splits)))
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(q).all(), columns=cols)


def depth_curves(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean/std/n over seeds by depth, grouped by the leaderboard's row key (so learning rates, step budgets and
    splits stay apart): columns ROW_KEY + row, eval_split, metric, depth, mean, std, n_runs, chance, headline_metric."""
    cols = [*ROW_KEY, "row", "eval_split", "metric", "depth", "mean", "std", "n_runs", "chance", "headline_metric"]
    if runs.empty or metrics.empty:
        return pd.DataFrame(columns=cols)
    m = metrics.assign(depth=pd.to_numeric(metrics["slice"], errors="coerce")).dropna(subset=["depth"])
    keys = runs[["id", *ROW_KEY, "chance", "metric"]].rename(columns={"metric": "headline_metric"})
    df = m.merge(keys, on="id", how="inner")
    g = df.groupby([*ROW_KEY, "eval_split", "metric", "depth"], dropna=False, sort=True)
    out = g.agg(mean=("value", "mean"), std=("value", "std"), n_runs=("id", "nunique"), chance=("chance", "first"),
                headline_metric=("headline_metric", "first")).reset_index()
    out["row"] = row_labels(out)
    return out[cols]


def depth_frame(engine: Engine, task: str | None = None) -> pd.DataFrame:
    """:func:`depth_curves` straight from a database (every task when ``task`` is None)."""
    return depth_curves(runs_frame(engine), metric_rows(engine, task, slice_key="depth"))


def train_depth(curves: pd.DataFrame) -> float | None:
    """The deepest depth seen in the in-distribution evaluation splits (val, test_iid, test: the training range)."""
    iid = curves[~curves["eval_split"].astype(str).str.contains("ood")]
    return float(iid["depth"].max()) if len(iid) else None


def lr_robustness(board: pd.DataFrame, val: pd.DataFrame, gate: float) -> pd.DataFrame:
    """Per architecture, size and other options (everything but the learning rate): how much of the LR grid
    reaches the gate, the LR chosen on validation and its test score, and the best test score over the grid.

    ``val``: run id -> validation score of the headline metric (:func:`val_scores`).
    """
    cols = ["task", "split", "arch", "size", "options", "max_steps", "n_lrs", "n_reach", "fraction", "lrs",
            "best_val_lr", "val_score", "score_at_val_lr", "score_std_at_val_lr", "best_test_lr", "best_test_score"]
    f = board[board["lr"].notna()].copy()
    if f.empty:
        return pd.DataFrame(columns=cols)
    f["options"] = f["variant"].astype(str).str.replace(r"(^|; )train\.lr=[^;]*", "", regex=True).str.strip("; ")
    vals = val.set_index("id")["value"] if len(val) else pd.Series(dtype=float)
    f["val_score"] = [np.nanmean([vals.get(int(i), np.nan) for i in str(ids).split(",")]) if len(vals) else np.nan
                      for ids in f["run_ids"]]
    out = []
    keys = ["task", "split", "arch", "size", "options", "max_steps", "plugin_name"]
    for key, grp in f.groupby(keys, dropna=False, sort=True):
        norm = grp["normalized_mean"].astype(float)
        reach = int(norm.ge(gate).sum())
        by_val = grp.loc[grp["val_score"].idxmax()] if grp["val_score"].notna().any() else None
        by_test = grp.loc[norm.idxmax()] if norm.notna().any() else grp.iloc[0]
        out.append({**dict(zip(keys, key, strict=True)), "n_lrs": len(grp), "n_reach": reach,
                    "fraction": reach / len(grp), "lrs": ", ".join(f"{x:g}" for x in sorted(grp["lr"])),
                    "best_val_lr": None if by_val is None else by_val["lr"],
                    "val_score": None if by_val is None else by_val["val_score"],
                    "score_at_val_lr": None if by_val is None else by_val["score_mean"],
                    "score_std_at_val_lr": None if by_val is None else by_val["score_std"],
                    "best_test_lr": by_test["lr"], "best_test_score": by_test["score_mean"]})
    return pd.DataFrame(out)[cols]


def val_scores(engine: Engine, task: str) -> pd.DataFrame:
    """Validation score of each completed run on its own headline metric: columns id, value."""
    m = metric_rows(engine, task, splits=("val",))
    if m.empty or not has_runs_table(engine):
        return pd.DataFrame(columns=["id", "value"])
    with engine.connect() as conn:
        heads = dict(conn.execute(select(Run.id, Run.metric).where(Run.task == task)).all())
    m = m[m["metric"] == m["id"].map(heads)]
    return m[["id", "value"]].reset_index(drop=True)


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


def measurement_history(record: dict[str, Any]) -> pd.DataFrame:
    """The figures in use, then every set ``arena remeasure`` replaced (newest first): when, on what, how busy."""
    from arena.export import hardware_label

    lat = record.get("latency_ms") or {}
    extra = record.get("extra") or {}
    rows = [{"measured_at": extra.get("remeasured_at") or record.get("finished_at"), "in use": True,
             "latency_p50_ms": lat.get("p50"), "latency_p90_ms": lat.get("p90"),
             "load_avg_1m": lat.get("load_avg_1m", record.get("load_avg_1m")), "memory_mb": record.get("memory_mb"),
             "hardware": hardware_label(record.get("hardware"))}]
    for old in reversed(extra.get("measurements") or []):
        rows.append({"measured_at": old.get("measured_at"), "in use": False,
                     "latency_p50_ms": old.get("latency_p50_ms"), "latency_p90_ms": old.get("latency_p90_ms"),
                     "load_avg_1m": old.get("load_avg_1m"), "memory_mb": old.get("memory_mb"),
                     "hardware": hardware_label(old.get("hardware"))})
    return pd.DataFrame(rows)


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
