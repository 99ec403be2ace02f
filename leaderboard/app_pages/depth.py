"""Depth: accuracy against compositional depth per architecture, and succinctness curves when present."""

from __future__ import annotations

import altair as alt
import streamlit as st

from arena.leaderboard import queries, ui

st.title("Score by depth")

url = ui.db_url()
if ui.engine_or_message() is None:
    st.stop()
runs = ui.runs(url)
if runs.empty:
    ui.no_runs_message()
else:
    c1, c2, c3 = st.columns(3)
    task = c1.selectbox("Task", sorted(runs["task"].unique()), key="de_task")
    df = ui.depth(url, task)
    if df.empty:
        st.info("This task's runs have no per-depth metrics (no examples carry a 'depth' slice).")
    else:
        splits = sorted(df["split"].unique())
        default = splits.index("test_ood") if "test_ood" in splits else 0
        split = c2.selectbox("Split", splits, index=default, key="de_split")
        metrics = sorted(df.loc[df["split"] == split, "metric"].unique())
        head = df["headline_metric"].dropna()
        mi = metrics.index(head.iloc[0]) if len(head) and head.iloc[0] in metrics else 0
        metric = c3.selectbox("Metric", metrics, index=mi, key="de_metric")
        sizes = sorted(df["size"].astype(str).unique())
        chosen = st.multiselect("Sizes", sizes, default=sizes, key="de_sizes")
        sub = df[(df["split"] == split) & (df["metric"] == metric) & df["size"].astype(str).isin(chosen)]
        chart = alt.Chart(sub).mark_line(point=True).encode(
            x=alt.X("depth:Q", title="depth", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("mean:Q", title=f"{metric} (mean over seeds)", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("arch:N", title="architecture"), strokeDash=alt.StrokeDash("size:N", title="size"),
            tooltip=["arch:N", "size:N", "depth:Q", alt.Tooltip("mean:Q", format=".3f"),
                     alt.Tooltip("std:Q", format=".3f"), alt.Tooltip("n_runs:Q", title="seeds")])
        st.altair_chart(chart, width="stretch")
        st.dataframe(sub.drop(columns=["headline_metric"]), hide_index=True, width="stretch")

st.header("Succinctness")
st.caption("Smallest parameter count reaching the target normalized score at each depth (bisection over a size "
           "ladder). Files matching " + queries.safe_md(queries.SUCCINCTNESS_GLOB) + " in: "
           + "; ".join(queries.safe_md(d) for d in queries.succinctness_dirs(url)) + ".")
succ, problems = ui.succinctness(url)
for p in problems:
    st.warning(p)
if succ.empty:
    st.info("No succinctness results yet. Expected CSV columns: " + ", ".join(queries.SUCCINCTNESS_COLUMNS)
            + " (p_star = smallest params reaching the target; reached = whether any size on the ladder did).")
else:
    tasks = sorted(succ["task"].astype(str).unique())
    stask = st.selectbox("Task", tasks, key="su_task")
    s = succ[(succ["task"].astype(str) == stask)]
    reached = s[s["reached"] & s["p_star"].notna() & (s["p_star"] > 0)]
    chart = alt.Chart(reached).mark_line(point=True).encode(
        x=alt.X("depth:Q", title="depth", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("p_star:Q", scale=alt.Scale(type="log"), title="smallest params reaching the target (log)"),
        color=alt.Color("arch:N", title="architecture"),
        tooltip=["arch:N", "depth:Q", alt.Tooltip("p_star:Q", format=",.0f"), "state_size:Q",
                 alt.Tooltip("flops:Q", format=".3~s"), "file:N"])
    st.altair_chart(chart, width="stretch")
    missed = s[~s["reached"]]
    if not missed.empty:
        st.caption("Not reached at any size on the ladder:")
        st.dataframe(missed, hide_index=True, width="stretch")
