"""Depth: score against compositional depth, one curve per leaderboard row, and succinctness curves when present."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from arena.leaderboard import charts, queries, ui

st.title("Score by depth")
url, pairs = ui.runs_or_stop()

labels = {f"{t} · {s}": (t, s) for t, s in pairs}
c1, c2, c3 = st.columns(3)
task, split = labels[c1.selectbox("Task", list(labels), key="de_task")]
curves = ui.depth(url, task)
curves = curves[curves["split"].astype(str) == split]
if curves.empty:
    st.info("This task's runs have no per-depth metrics (no examples carry a 'depth' slice).")
else:
    evals = sorted(curves["eval_split"].astype(str).unique())
    both = "test_iid + test_ood"
    if {"test_iid", "test_ood"} <= set(evals):  # one curve through the training depths and past them
        curves = pd.concat([curves, curves[curves["eval_split"].isin(["test_iid", "test_ood"])].assign(
            eval_split=both)], ignore_index=True)
        evals = [both, *evals]
    default = evals.index(both) if both in evals else evals.index("test_ood") if "test_ood" in evals else 0
    # keys carry the task: choosing another task resets the split and the metric to that task's own headline
    eval_split = c2.selectbox("Evaluation split", evals, index=default, key=f"de_split_{task}_{split}")
    metrics = sorted(curves.loc[curves["eval_split"] == eval_split, "metric"].astype(str).unique())
    head = curves["headline_metric"].dropna()
    mi = metrics.index(head.iloc[0]) if len(head) and head.iloc[0] in metrics else 0
    metric = c3.selectbox("Metric", metrics, index=mi, key=f"de_metric_{task}_{split}")
    sub = curves[(curves["eval_split"] == eval_split) & (curves["metric"] == metric)]
    # rows: best row per architecture by its mean over depths, up to 8, unless chosen
    ranked = sub.groupby("row")["mean"].mean().sort_values(ascending=False)
    firsts = sub.drop_duplicates("row").set_index("row").loc[ranked.index]
    default_rows = list(firsts.groupby("arch", sort=False).head(1).index[:8])
    chosen = st.multiselect("Rows (leaderboard rows: architecture · size · variant)", list(ranked.index),
                            default=default_rows, key=f"de_rows_{task}_{split}_{eval_split}_{metric}",
                            help="each curve is one leaderboard row, averaged over its seeds only; by default the "
                                 "best row of each architecture")
    shown = sub[sub["row"].isin(chosen)]
    if shown.empty:
        st.info("Choose at least one row.")
    else:
        domain, colors = ui.arch_scale(url)
        boundary = queries.train_depth(curves[curves["metric"] == metric])
        chance = shown["chance"].dropna()
        chance_y = float(chance.iloc[0]) if metric == (head.iloc[0] if len(head) else None) and len(chance) else None
        st.altair_chart(charts.depth(shown, metric, domain, colors, boundary, chance_y), width="stretch")
        st.caption(queries.safe_md(
            f"{metric} on {eval_split}, mean over seeds with a ± std band. "
            + (f"Dashed vertical line: the deepest depth in the training distribution ({boundary:g}); to its right "
               "the model extrapolates. " if boundary is not None and boundary < shown['depth'].max() else "")
            + ("Dotted line: chance. " if chance_y is not None else "")))
        table = shown[["row", "depth", "mean", "std", "n_runs"]].sort_values(["row", "depth"])
        st.dataframe(table, hide_index=True, width="stretch", placeholder="—", column_config={
            "mean": st.column_config.NumberColumn(metric, format="%.3f"),
            "std": st.column_config.NumberColumn("± std", format="%.3f"),
            "n_runs": st.column_config.NumberColumn("seeds")})

st.header("Succinctness", anchor=False)
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
    domain, colors = queries.arch_scale(list(ui.arch_scale(url)[0]) + list(succ["arch"].astype(str)))
    chart = alt.Chart(reached).mark_line(point=True).encode(
        x=alt.X("depth:Q", title="depth", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("p_star:Q", scale=alt.Scale(type="log"), title="smallest params reaching the target (log)"),
        color=charts.color(domain, colors),
        tooltip=["arch:N", "depth:Q", alt.Tooltip("p_star:Q", format=",.0f"), "state_size:Q",
                 alt.Tooltip("flops:Q", format=".3~s"), "file:N"])
    st.altair_chart(chart, width="stretch")
    missed = s[~s["reached"]]
    if not missed.empty:
        st.caption("Not reached at any size on the ladder:")
        st.dataframe(missed, hide_index=True, width="stretch", placeholder="—", column_config={
            "arch": "architecture", "p_star": "smallest params", "p_star_lower": "largest params that failed",
            "state_size": "state size", "seeds_passed": "seeds passed", "seeds": "seeds run", "d_model": "width", "n_layers": "layers"})
