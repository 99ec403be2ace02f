"""Leaderboard: one task at a time, ranked by score or by score per unit of cost, with honest blanks and badges."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from arena.columns import COLUMNS
from arena.export import COST_AXES, render
from arena.leaderboard import queries, ui
from arena.paper import short_variant

st.title("Leaderboard")
url, pairs = ui.runs_or_stop()

RANK_LABEL = {"score": "score", "params": "per M params", "flops": "per GFLOP", "latency": "per ms"}
labels = {f"{t} · {s}": (t, s) for t, s in pairs}
c1, c2, c3 = st.columns([3, 4, 3], vertical_alignment="bottom")
choice = c1.selectbox("Task", list(labels), key="lb_task", help="one task and split per view; every row of the "
                      "table is trained and scored on it")
task, split = labels[choice]
rank_by = c2.radio("Rank by", list(queries.RANK_BY), format_func=RANK_LABEL.get, horizontal=True,
                   key="lb_rank", index=1, help="score per unit of cost: normalized score / (params in millions, "
                   "forward GFLOPs per example, p50 ms); rows below the gate are not ranked on a cost")
gate = c3.slider("Gate (normalized score a row needs for a ratio)", 0.0, 1.0, 0.5, 0.05, key="lb_gate")

f1, f2, f3, f4 = st.columns([4, 3, 2, 1], vertical_alignment="bottom")
query = f1.text_input("Search", key="lb_search", placeholder="architecture, size, variant, plugin, badge…")
task_runs = ui.runs(url, task)
hw_choices = queries.hardware_labels(task_runs[task_runs["split"] == split])
hardware = f2.multiselect("Hardware (latency)", hw_choices, key="lb_hw", placeholder="all hardware")
include_ts = f3.toggle("include task-specific models", key="lb_ts", help=queries.BLANK_REASONS["task-specific"])

board = ui.board(url, task, split, tuple(hardware))
if board.empty:
    st.info("No rows match these filters.")
    st.stop()
view = queries.board_view(board, gate, rank_by, include_ts)
head = queries.headline(view)
chance = "" if pd.isna(head["chance"]) else f", chance {float(head['chance']):g}"
st.subheader(f"{task} · {split}", anchor=False)
DEFAULT = ["rank", "arch", "size", "score_text", "norm_per_mparam", "norm_per_gflop", "norm_per_ms", "variant_short",
           "badges", "n", "params_total", "prior", "flops_per_example", "latency_p50_ms", "latency_range", "memory_mb", "run"]
# every declared cost/score column not shown by default can be added (arena.columns gives its label)
DECLARED = {b: c.label for c in COLUMNS for b, _, _ in c.board_columns()[:1] if b not in DEFAULT}
OPTIONAL = {"normalized_mean": "norm. score", "normalized_std": "norm. ± std", "hardware": "hardware",
            "max_steps": "steps", "lr": "learning rate", **{k: v for k, v in DECLARED.items() if k != "score_mean"},
            "seeds": "seeds", "run_ids": "run ids",
            "plugin_name": "plugin", "plugin_version": "plugin version", "arch_version": "arch version",
            "task_version": "task version", "pareto_params": "Pareto (params)", "pareto_flops": "Pareto (FLOPs)",
            "pareto_latency": "Pareto (latency)", "combined": "combined score", "variant": "variant (full)"}
with f4.popover("Columns", icon=":material/view_column:", width="stretch"):
    extra = st.multiselect("Show also", list(OPTIONAL), format_func=OPTIONAL.get, key="lb_cols")
    st.caption("Rank, architecture, score and the three ratios always lead.")
weights = tuple(st.session_state.get(k, d) for k, d in (("w_score", 1.0), ("w_params", 0.5), ("w_flops", 0.0),
                                                              ("w_latency", 0.0)))
view["combined"] = queries.combined_score(view, *weights, gate=gate)
view["variant_short"] = view["variant"].map(short_variant)
derived = view["derived"].astype(object).fillna("").astype(str) if "derived" in view else ""
view["variant_short"] = (derived + " · " + view["variant_short"]).str.strip(" ·").where(derived.ne(""),
                                                                                       view["variant_short"])
shown = queries.search(view, query)

_, ratio_col, pareto_col, _, _ = COST_AXES["params" if rank_by == "score" else rank_by]
front_axis = "params" if rank_by == "score" else rank_by
st.caption(queries.safe_md(
    f"Score: {head['metric']} on {head['headline_split']}{chance}, mean ± std over seeds · {len(shown)} rows from "
    f"{int(shown['n'].sum())} runs · {int(shown['normalized_mean'].ge(gate).sum())} reach the gate {gate:g} · "
    f"{int(shown[pareto_col].sum())} on the {front_axis} Pareto front · ranked by {queries.RANK_BY[rank_by]}"
    + (f" · search: {query!r}" if query else "")))
if shown.empty:
    st.info("No rows match the search.")
    st.stop()

cols = DEFAULT[:-1] + [c for c in extra if c not in DEFAULT] + ["run"]
table = shown[cols].reset_index(drop=True)
BLANK_HELP = " — blank cells say why: " + "; ".join(f"'{k}': {v}" for k, v in queries.BLANK_REASONS.items())
styler = queries.styled_board(shown, cols)

num, text = st.column_config.NumberColumn, st.column_config.TextColumn
config = {
    "rank": num("#", width=40, help=f"rank by {queries.RANK_BY[rank_by]}; rows without a value are not ranked"),
    "arch": text("architecture", width=140),
    "size": text("size", width=70, help="size preset, or 'budget N' for a run sized by a parameter budget"),
    "score_text": text(f"{head['metric']} ± std", width=118,
                       help=f"{head['metric']} on {head['headline_split']}, mean ± std over the seeds"),
    "norm_per_mparam": num("per M params", width=104, help="normalized score / params in millions" + BLANK_HELP),
    "norm_per_gflop": num("per GFLOP", width=104, help="normalized score / forward GFLOPs per example" + BLANK_HELP),
    "norm_per_ms": num("per ms", width=104, help="normalized score / p50 latency in ms (batch 1)" + BLANK_HELP),
    "variant_short": text("variant", width=130, help="options that differ from the defaults (select a row for the "
                          "full text)"),
    "badges": st.column_config.MultiselectColumn("badges", options=queries.BADGES, width=120,
                                                 color=["#d62728", "#1f77b4", "#ff7f0e", "#8c564b", "#7f7f7f",
                                                        "#2ca02c"],
                                                 help="task-specific: the task's structure is built in; plugin: "
                                                      "submitted code; unverified cost: FLOPs only declared by the "
                                                      "submission, or the FLOP counter disagrees with them for no "
                                                      "known reason; no isolation: the submission ran unsandboxed; "
                                                      "pruned: heads removed from a trained run by arena prune"),
    "n": num("n", width=36, help="completed seeds"),
    "params_total": num("params", width=66),
    "prior": num("prior", width=200, help="a task-specific model's hand-written prior, the cost its params hide: the "
                 "skeleton's source (gzip bytes, non-blank lines) and the bits its learned part holds; sorts by "
                 "the gzip bytes" + " — blank cells say why: " + "; ".join(f"'{k}': {v}" for k, v in
                                                                          queries.PRIOR_REASONS.items())),
    "flops_per_example": num("FLOPs/ex", width=72),
    "latency_p50_ms": num("p50 ms", width=66, help="median over seeds of each run's p50 latency at batch 1"),
    "latency_range": text("seed range", width=92, help="fastest–slowest seed's p50 ms (blank when the seeds agree "
                          "exactly or there is one seed); a wide range means a loaded machine or a noisy timer"),
    "memory_mb": num("mem MiB", width=70, help="the run's own peak memory (mean over seeds)"),
    "run": st.column_config.LinkColumn("run", display_text=r"run=(\d+)$", width=50, help="open the row's first run"),
    "combined": num("combined", format="%.3f", help="user-weighted; blank below the gate"),
    "normalized_mean": num("norm. score", format="%.3f", help="max(0, (s − chance)/(1 − chance))"),
    "normalized_std": num("norm. ± std", format="%.3f"), "lr": num("learning rate", format="%.3g"),
    **{k: st.column_config.Column(v) for k, v in OPTIONAL.items() if k not in ("normalized_mean", "normalized_std",
                                                                               "lr", "combined")},
}
rows = len(table)
event = st.dataframe(styler, column_config=config, hide_index=True, width="stretch", key="lb_table",
                     height=min(rows, 24) * 35 + 40, placeholder="—", on_select="rerun",
                     selection_mode="single-row")
st.caption(f"Ratios are blank below the gate ({gate:g}) so a chance-level model never ranks on efficiency; "
           "task-specific models are not ranked on a ratio unless included; latency compares only on the same "
           "hardware. Click a header to re-sort, a row for its details.")

picked = event.selection.rows if event is not None and hasattr(event, "selection") else []
if picked:
    row = shown.iloc[picked[0]]
    with st.container(border=True):
        st.markdown("**Selected row**")
        st.text(f"{row['arch']} · {row['size']} · {task}/{split}" + (f" · plugin {row['plugin_name']} "
                f"{row['plugin_version'] or ''}" if isinstance(row["plugin_name"], str) else ""))
        st.text("variant: " + (row["variant"] or "(defaults)"))
        st.text(f"seeds {row['seeds']} · runs {row['run_ids']} · hardware {row['hardware'] or 'n/a'}")
        for rid in str(row["run_ids"]).split(",")[:8]:
            st.page_link("app_pages/run_detail.py", label=f"run {rid}", query_params={"run": rid})


def _download(fmt: str):
    def build() -> str | bytes:
        q = {"task": task, "split": split, "hardware": list(hardware), "search": query,
             "include_task_specific": include_ts, "rank_by": rank_by, "db": queries.db_label(url)}
        return render(shown.drop(columns=[c for c in shown.columns if c not in board.columns]), fmt, gate=gate,
                      query=q)
    return build


d1, d2, d3, _ = st.columns([1, 1, 1, 3])
slug = f"arena-{task}-{split}"
d1.download_button("CSV", _download("csv"), f"{slug}.csv", "text/csv", key="dl_csv", icon=":material/download:")
d2.download_button("Markdown", _download("md"), f"{slug}.md", "text/markdown", key="dl_md",
                   icon=":material/download:")
d3.download_button("LaTeX", _download("latex"), f"{slug}.tex", "application/x-tex", key="dl_tex",
                   icon=":material/download:")

with st.expander("Combined score weights"):
    st.caption("combined = weighted mean of the normalized score and the cheapness of each cost (percentile "
               "rank within the task, 1 = cheapest); blank below the gate. Show it with Columns → combined score.")
    w1, w2, w3, w4 = st.columns(4)
    w1.slider("score", 0.0, 1.0, 1.0, 0.1, key="w_score")
    w2.slider("params", 0.0, 1.0, 0.5, 0.1, key="w_params")
    w3.slider("FLOPs", 0.0, 1.0, 0.0, 0.1, key="w_flops")
    w4.slider("latency", 0.0, 1.0, 0.0, 0.1, key="w_latency")
