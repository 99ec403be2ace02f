"""Pareto: normalized score against one cost (log x) within a task and split; the front is highlighted."""

from __future__ import annotations

import altair as alt
import streamlit as st

from arena.export import COST_AXES
from arena.leaderboard import queries, ui

st.title("Pareto fronts")
st.caption("A point is on the front when no other row is at least as cheap and at least as good (and better on "
           "one). Rows at chance (normalized score 0) are never on a front.")

url, runs = ui.runs_or_stop()

AXIS_LABEL = {"params": "parameters (total)", "flops": "FLOPs (forward, per example)",
              "latency": "latency p50 (ms, batch 1)"}
c1, c2, c3 = st.columns(3)
task = c1.selectbox("Task", sorted(runs["task"].unique()), key="pa_task")
split = c2.selectbox("Split", sorted(runs.loc[runs["task"] == task, "split"].unique()), key="pa_split")
axis = c3.radio("Cost axis", list(COST_AXES), format_func=AXIS_LABEL.get, horizontal=True, key="pa_axis")
hardware: tuple[str, ...] = ()
if axis == "latency":
    labels = queries.hardware_labels(runs[(runs["task"] == task) & (runs["split"] == split)])
    if labels:
        hw = st.selectbox("Hardware (latency is only comparable on one machine)", labels, key="pa_hw")
        hardware = (hw,)

frame = ui.leaderboard(url, (task,), (split,), hardware, 0.5)
pts = queries.pareto_points(frame, axis)
if pts.empty:
    st.info(f"No rows with a {AXIS_LABEL[axis]} measurement and a score for this task and split.")
    st.stop()

y_title = "normalized score" if pts["normalized_mean"].notna().any() else "score"
x = alt.X("cost:Q", scale=alt.Scale(type="log"), title=AXIS_LABEL[axis])
y = alt.Y("y:Q", title=y_title)
tooltip = [alt.Tooltip("arch:N"), alt.Tooltip("size:N"), alt.Tooltip("variant:N"), alt.Tooltip("n:Q", title="seeds"),
           alt.Tooltip("score_mean:Q", title="score", format=".3f"),
           alt.Tooltip("normalized_mean:Q", title="norm. score", format=".3f"),
           alt.Tooltip("cost:Q", title=axis, format=".4~s"), alt.Tooltip("hardware:N"),
           alt.Tooltip("run_ids:N", title="runs"), alt.Tooltip("on_front:N", title="on front")]
points = alt.Chart(pts).mark_point(filled=True, size=90).encode(
    x=x, y=y, color=alt.Color("arch:N", title="architecture"),
    shape=alt.Shape("on_front:N", title="on front", scale=alt.Scale(domain=[True, False],
                                                                    range=["diamond", "circle"])),
    opacity=alt.condition(alt.datum.on_front, alt.value(1.0), alt.value(0.35)), tooltip=tooltip)
front = alt.Chart(pts[pts["on_front"]].sort_values("cost")).mark_line(color="black", strokeDash=[4, 3]).encode(
    x=x, y=y, order="cost:Q")
st.altair_chart((front + points).interactive(), width="stretch")

st.subheader("Rows on the front")
cols = ["run", "arch", "size", "variant", "n", "score_mean", "normalized_mean", "cost", "hardware", "run_ids"]
st.dataframe(pts.loc[pts["on_front"], cols].sort_values("cost"), hide_index=True, width="stretch",
             column_config={"run": st.column_config.LinkColumn("run", display_text=r"run=(\d+)$"),
                            "cost": st.column_config.NumberColumn(AXIS_LABEL[axis], format="%.4g"),
                            "score_mean": st.column_config.NumberColumn("score", format="%.3f"),
                            "normalized_mean": st.column_config.NumberColumn("norm. score", format="%.3f")})
st.caption("The run link opens the row's first seed on the Run detail page; all run ids are in the last column.")
