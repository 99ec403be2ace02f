"""Run detail: config, per-slice scores, training curve, provenance and the command that reproduces the run."""

from __future__ import annotations

import altair as alt
import streamlit as st

from arena.leaderboard import attention_view, queries, ui
from arena.paper import si

st.title("Run detail")

url = ui.db_url()
if ui.engine_or_message() is None:
    st.stop()
choices = ui.run_choices(url)
if choices.empty:
    ui.no_runs_message()
    st.stop()

ids = [int(i) for i in choices["id"]]
labels = {int(r.id): f"#{r.id}  {r.arch} · {r.task}/{r.split} · {r.size or 'budget'} · seed {r.seed} · {r.status}"
          for r in choices.itertuples()}
wanted = st.query_params.get("run")
try:
    wanted_id = int(wanted) if wanted is not None else ids[0]
except ValueError:
    wanted_id = ids[0]
if wanted_id not in labels:
    ids.insert(0, wanted_id)  # older than the picker's window: still reachable by ?run=ID
    labels[wanted_id] = f"#{wanted_id}"
run_id = st.selectbox("Run", ids, index=ids.index(wanted_id), format_func=lambda i: labels[i], key="rd_run")
st.query_params["run"] = str(run_id)

rec = ui.run_detail(url, int(run_id))
if rec is None:
    st.warning(f"No run {int(run_id)} in this database.")
    st.stop()

st.subheader(f"Run {int(rec['run_id'])}")
st.text(f"{rec['arch']} (v{rec['arch_version']}) on {rec['task']} (v{rec['task_version']}) / split {rec['split']}"
        f" · size {rec['size'] or 'budget'} · seed {rec['seed']} · status {rec['status']}")
plugin = rec.get("plugin")
st.text(f"source: {rec['source']}" + (f" · plugin {plugin['name']} {plugin['version'] or ''} "
                                      f"sha256 {plugin['sha256'] or 'n/a'}" if plugin else ""))
attention_view.derived_note(rec)
if rec.get("error"):
    st.error("The run failed or was interrupted:")
    st.code(rec["error"], language=None)

p, f, lat = rec["params"], rec["flops"], rec["latency_ms"]
m = st.columns(6)
m[0].metric(f"score ({rec['metric'] or 'n/a'}, {rec['headline_split'] or 'n/a'})",
            "n/a" if rec["score"] is None else f"{rec['score']:.4f}")
m[1].metric("normalized score", "n/a" if rec["normalized_score"] is None else f"{rec['normalized_score']:.4f}")
m[2].metric("params (total)", "n/a" if p["total"] is None else f"{p['total']:,}")
m[3].metric("FLOPs / example", "n/a" if f["forward_per_example"] is None else si(f["forward_per_example"]))
m[4].metric("latency p50", "n/a" if lat["p50"] is None else f"{si(lat['p50'])} ms")
m[5].metric("peak memory", "n/a" if rec.get("memory_mb") is None else f"{si(rec['memory_mb'])} MiB",
            help="the run's own peak: resident set on CPU (interpreter and torch included), allocated on CUDA")

st.subheader("Reproduce")
st.code(rec.get("reproduce") or "(this run's config has no arena run spec)", language="bash")

st.subheader("Scores by split and slice")
sl = queries.slices_frame(rec)
if sl.empty:
    st.info("No metrics recorded (the run did not complete).")
else:
    names = sorted(sl["metric"].unique())
    metric = st.selectbox("Metric", names, index=names.index(rec["metric"]) if rec["metric"] in names else 0,
                          key="rd_metric")
    table = sl[sl["metric"] == metric].drop(columns=["metric"])
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"score": st.column_config.NumberColumn(metric, format="%.4f")})

st.subheader("Training curve")
curve = queries.curve_frame(rec)
if curve.empty:
    st.info("No training curve stored for this run.")
else:
    st.altair_chart(alt.Chart(curve).mark_line(point=True).encode(
        x=alt.X("step:Q"), y=alt.Y("value:Q"), color=alt.Color("series:N"),
        tooltip=["step:Q", "series:N", alt.Tooltip("value:Q", format=".4f")]), width="stretch")

attention_view.render(url, rec)

history = queries.measurement_history(rec)
if len(history) > 1:
    st.subheader("Measurements")
    st.caption("Latency and memory were measured again (arena remeasure); the first row is the figure in use.")
    st.dataframe(history, hide_index=True, width="stretch", placeholder="—", column_config={
        "latency_p50_ms": st.column_config.NumberColumn("p50 ms", format="%.3g"),
        "latency_p90_ms": st.column_config.NumberColumn("p90 ms", format="%.3g"),
        "load_avg_1m": st.column_config.NumberColumn("load avg", format="%.1f"),
        "memory_mb": st.column_config.NumberColumn("memory MiB", format="%.0f")})

c1, c2 = st.columns(2)
with c1:
    st.subheader("Costs")
    st.json({"params": p, "flops": f, "latency_ms": lat, "memory_mb": rec["memory_mb"],
             "state_size": rec["state_size"], "train_seconds": rec["train_seconds"], "steps": rec["steps"]})
    st.subheader("Hardware")
    st.json(rec.get("hardware") or {})
with c2:
    st.subheader("Provenance")
    st.json(rec.get("provenance") or {})
    st.subheader("Config")
    st.json(rec.get("config") or {}, expanded=1)
