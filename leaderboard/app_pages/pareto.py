"""Pareto: normalized score against one cost (log x) for one task; the front labelled; and a score-vs-latency bubble
chart (bubble = parameters), the LLM-Perf view."""

from __future__ import annotations

import streamlit as st

from arena.export import COST_AXES, add_pareto
from arena.leaderboard import charts, queries, ui

st.title("Pareto fronts")
st.caption("A point is on the front when no other row is at least as cheap and at least as good (and better on "
           "one). Rows at chance (normalized score 0) are never on a front.")

url, pairs = ui.runs_or_stop()

AXIS_LABEL = {"params": "parameters (total)", "flops": "FLOPs (forward, per example)",
              "latency": "latency p50 (ms, batch 1)"}
labels = {f"{t} · {s}": (t, s) for t, s in pairs}
c1, c2, c3 = st.columns([3, 4, 3], vertical_alignment="bottom")
task, split = labels[c1.selectbox("Task", list(labels), key="pa_task")]
axis = c2.radio("Cost axis", list(COST_AXES), format_func=AXIS_LABEL.get, horizontal=True, key="pa_axis")
include_ts = c3.toggle("include task-specific models", key="pa_ts", help=queries.BLANK_REASONS["task-specific"])
task_runs = ui.runs(url, task)
labels_hw = queries.hardware_labels(task_runs[task_runs["split"] == split])
hardware: tuple[str, ...] = ()
if axis == "latency" and labels_hw:
    hardware = (st.selectbox("Hardware (latency is only comparable on one machine)", labels_hw, key="pa_hw"),)

board = ui.board(url, task, split, hardware)
hidden = board[board["task_specific"].fillna(False).astype(bool)] if not include_ts else board.iloc[:0]
frame = add_pareto(board.drop(index=hidden.index)) if len(hidden) else board
pts = queries.pareto_points(frame, axis)
domain, colors = ui.arch_scale(url)
missing = frame[~frame.index.isin(pts.index)]
if pts.empty:
    st.info(f"No rows with a {AXIS_LABEL[axis]} measurement and a score for this task and split.")
    st.stop()

head = queries.headline(board)
chart = charts.pareto(pts, AXIS_LABEL[axis], domain, colors, head)
st.altair_chart(chart, width="stretch")
notes = []
if len(missing):
    names = ", ".join(sorted(set(queries.row_labels(missing))))[:400]
    notes.append(f"Not plotted, no {AXIS_LABEL[axis]} measurement ({len(missing)} rows): {names}.")
if len(hidden):
    notes.append(f"{len(hidden)} task-specific rows hidden (switch on 'include task-specific models').")
for n in notes:
    st.caption(queries.safe_md(n))

st.subheader("Rows on the front", anchor=False)
cols = ["run", "arch", "size", "variant", "n", "score_mean", "normalized_mean", "cost", "hardware", "run_ids"]
st.dataframe(pts.loc[pts["on_front"], cols].sort_values("cost"), hide_index=True, width="stretch",
             column_config={"run": st.column_config.LinkColumn("run", display_text=r"run=(\d+)$"),
                            "arch": "architecture", "n": "seeds", "run_ids": "run ids",
                            "cost": st.column_config.NumberColumn(AXIS_LABEL[axis], format="compact"),
                            "score_mean": st.column_config.NumberColumn("score", format="%.3f"),
                            "normalized_mean": st.column_config.NumberColumn("norm. score", format="%.3f")})
st.caption("The run link opens the row's first seed on the Run detail page; all run ids are in the last column.")

st.subheader("Score vs latency", anchor=False)
st.caption("The LLM-Perf view: normalized score against p50 latency (batch 1, log scale), bubble area = parameters. "
           "Only rows timed on one machine are comparable.")
lat = queries.pareto_points(frame, "latency")
hw_counts = lat["hardware"].value_counts()
if lat.empty or hw_counts.empty:
    st.info("No latency measurements for this task.")
else:
    on = hardware[0] if hardware else hw_counts.index[0]
    lat = lat[lat["hardware"] == on]
    st.altair_chart(charts.bubbles(lat, domain, colors, head), width="stretch")
    st.caption(queries.safe_md(f"Latency measured on {on}" + (f"; {len(hw_counts) - 1} other machines not shown "
                                                                "(choose one under Hardware with the latency axis)."
                                                                if len(hw_counts) > 1 else ".")))
