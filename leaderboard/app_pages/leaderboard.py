"""Leaderboard: filter, gate, weigh, sort and download the aggregated table."""

from __future__ import annotations

import streamlit as st

from arena.export import COST_AXES, to_csv, to_latex, to_markdown
from arena.leaderboard import queries, ui

st.title("Leaderboard")
st.caption("One row per architecture, task, split, size and variant, averaged over seeds (completed runs only).")

url, runs = ui.runs_or_stop()

AXIS_LABEL = {"params": "parameters", "flops": "FLOPs (forward, per example)", "latency": "latency (p50, batch 1)"}

c1, c2, c3 = st.columns(3)
tasks = c1.multiselect("Task", sorted(runs["task"].unique()), key="lb_tasks", placeholder="all tasks")
split_choices = sorted(queries.filter_runs(runs, tasks)["split"].unique())
splits = c2.multiselect("Split", split_choices, key="lb_splits", placeholder="all splits")
hardware = c3.multiselect("Hardware (latency)", queries.hardware_labels(runs), key="lb_hw",
                          placeholder="all hardware")
c4, c5 = st.columns(2)
axis = c4.radio("Cost axis", list(COST_AXES), format_func=AXIS_LABEL.get, horizontal=True, key="lb_axis")
gate = c5.slider("Score gate (normalized score needed for a ratio)", 0.0, 1.0, 0.5, 0.05, key="lb_gate")
with st.expander("Combined score weights"):
    st.caption("combined = weighted mean of the normalized score and the cheapness of each cost (percentile "
               "rank within the task and split, 1 = cheapest); blank below the gate.")
    w1, w2, w3, w4 = st.columns(4)
    w_score = w1.slider("score", 0.0, 1.0, 1.0, 0.1, key="w_score")
    w_params = w2.slider("params", 0.0, 1.0, 0.5, 0.1, key="w_params")
    w_flops = w3.slider("FLOPs", 0.0, 1.0, 0.0, 0.1, key="w_flops")
    w_latency = w4.slider("latency", 0.0, 1.0, 0.0, 0.1, key="w_latency")

frame = ui.leaderboard(url, tuple(tasks), tuple(splits), tuple(hardware), float(gate))
if frame.empty:
    st.info("No rows match these filters.")
    st.stop()
frame = frame.copy()
frame["combined"] = queries.combined_score(frame, w_score, w_params, w_flops, w_latency, gate)
frame["run"] = queries.run_links(frame)
cost_col, ratio_col, pareto_col, _, _ = COST_AXES[axis]
frame = frame.sort_values([ratio_col, "normalized_mean"], ascending=[False, False], na_position="last")

m1, m2, m3, m4 = st.columns(4)
m1.metric("rows", len(frame))
m2.metric("runs", int(frame["n"].sum()))
m3.metric(f"rows passing the gate {gate:g}", int(frame[ratio_col].notna().sum()))
m4.metric(f"on the {axis} Pareto front", int(frame[pareto_col].sum()))

other_ratios = [v[1] for k, v in COST_AXES.items() if k != axis]
show = ["run", "arch", "task", "split", "size", "variant", "n", "score_mean", "score_std", "normalized_mean",
        "normalized_std", ratio_col, *other_ratios, "combined", pareto_col, "params_total", "params_active",
        "flops_per_example", "latency_p50_ms", "memory_mb", "hardware", "source", "plugin_name", "plugin_version",
        "arch_version", "task_version", "max_steps", "run_ids"]
num = st.column_config.NumberColumn
config = {
    "run": st.column_config.LinkColumn("run", display_text=r"run=(\d+)$", help="open the row's first run"),
    "arch": st.column_config.TextColumn("arch", pinned=True), "n": num("n", help="completed seeds"),
    "score_mean": num("score", format="%.3f"), "score_std": num("± std", format="%.3f"),
    "normalized_mean": num("norm. score", format="%.3f", help="max(0, (s − chance)/(1 − chance))"),
    "normalized_std": num("± std", format="%.3f"),
    "norm_per_mparam": num("norm/Mparam", format="%.4g", help="blank below the gate"),
    "norm_per_gflop": num("norm/GFLOP", format="%.4g", help="blank below the gate"),
    "norm_per_ms": num("norm/ms", format="%.4g", help="blank below the gate or on mixed hardware"),
    "combined": num("combined", format="%.3f", help="user-weighted; blank below the gate"),
    "params_total": num("params", format="compact"), "params_active": num("active params", format="compact"),
    "flops_per_example": num("FLOPs/ex", format="compact"), "latency_p50_ms": num("p50 ms", format="%.3g"),
    "memory_mb": num("mem MB", format="%.0f"),
    pareto_col: st.column_config.CheckboxColumn(f"Pareto ({axis})"),
}
st.dataframe(frame[show], column_config=config, hide_index=True, width="stretch", key="lb_table")
st.caption(f"Sorted by normalized score per unit of {AXIS_LABEL[axis]}; click a column header to re-sort. "
           f"Ratios are blank when the mean normalized score is below the gate ({gate:g}), so a chance-level "
           "model never ranks on efficiency. Latency is only comparable on the same hardware.")

d1, d2, d3 = st.columns(3)
frame = frame.drop(columns=["run"])
d1.download_button("Download CSV", to_csv(frame), "arena-leaderboard.csv", "text/csv", key="dl_csv")
d2.download_button("Download Markdown", to_markdown(frame, gate), "arena-leaderboard.md", "text/markdown",
                   key="dl_md")
d3.download_button("Download LaTeX", to_latex(frame, gate), "arena-leaderboard.tex", "application/x-tex",
                   key="dl_tex")
