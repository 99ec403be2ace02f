"""The attention sections of the Run-detail page: where a run came from (derived runs), per-head heatmaps and one
attention pattern (``arena analyze``), statistics over training (``train.log_attention``), and the pruning curve
(score vs heads kept, a cost on a second axis) of the runs ``arena prune`` derived from it."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from arena.leaderboard import attention_queries as aq
from arena.leaderboard import ui

STAT_HELP = {"entropy_norm": "attention entropy / log(visible keys): 1 = uniform, 0 = one key",
             "support": "exp(entropy): keys effectively attended", "top1": "largest attention weight",
             "top4": "four largest weights summed", "offset": "mean distance attended back (tokens)",
             "erank": "effective rank of the head's output (bound: d_head)", "n90": "singular values for 90 % energy",
             "n99": "singular values for 99 % energy"}
COSTS = {"flops_per_example": "FLOPs / example", "params_total": "parameters", "latency_p50_ms": "latency p50 ms"}


@st.cache_data(ttl=ui.TTL, show_spinner=False)
def _pruning(url: str, run_id: int) -> pd.DataFrame:
    return aq.pruning_frame(ui._engine(url), run_id)


def derived_note(rec: dict[str, Any]) -> None:
    d = rec.get("derived")
    if d:
        st.info(f"Derived run: run {int(d['parent_run_id'])} with heads removed by {d['method']!s} "
                f"({int(d['heads_kept'])} heads kept, fine-tuned {int(d['finetune_steps'] or 0)} steps). "
                f"Parent: ?run={int(d['parent_run_id'])}")


def render(url: str, rec: dict[str, Any]) -> None:
    """Every attention section that has data for this run (nothing for runs that were never analysed)."""
    splits = aq.analysed_splits(rec)
    if splits:
        st.subheader("Attention per head (arena analyze)")
        _heatmaps(rec, splits)
    curve = aq.attention_curve_frame(rec)
    if not curve.empty:
        st.subheader("Attention over training (train.log_attention)")
        _curves(rec)
    prune = _pruning(url, int(rec["run_id"]))
    if (prune["method"] != "parent").any():
        st.subheader("Pruning curve (arena prune)")
        _pruning_chart(prune, rec)


def _heatmaps(rec: dict[str, Any], splits: list[str]) -> None:
    c1, c2 = st.columns(2)
    split = c1.selectbox("Analysed split", splits, key="att_split")
    frame = aq.head_frame(rec, split)
    stats = [s for s in STAT_HELP if s in set(frame["stat"])]
    stat = c2.selectbox("Statistic", stats, key="att_stat", help="; ".join(f"{k}: {v}" for k, v in STAT_HELP.items()))
    data = frame[(frame["stat"] == stat) & frame["variant"].isin(["trained", "init"])]
    st.altair_chart(alt.Chart(data).mark_rect().encode(
        x=alt.X("head:O"), y=alt.Y("layer:O"), color=alt.Color("value:Q", scale=alt.Scale(scheme="viridis")),
        column=alt.Column("variant:N", title=None, sort=["trained", "init"]),
        tooltip=["layer:O", "head:O", "variant:N", alt.Tooltip("value:Q", format=".3f")]))
    st.caption("Left: after training; right: the same architecture and seed at initialisation. Uniform attention "
               "has entropy 1; see `arena analyze RUN` for every number.")
    pattern = ((rec.get("extra") or {}).get("attention") or {}).get(split, {}).get("pattern") or {}
    probs = pattern.get("probs") or []
    if probs:
        c3, c4 = st.columns(2)
        layer = c3.selectbox("Pattern: layer", list(range(len(probs))), key="att_layer")
        head = c4.selectbox("Pattern: head", list(range(len(probs[layer]))), key="att_head")
        pf = aq.pattern_frame(rec, split, int(layer), int(head))
        st.altair_chart(alt.Chart(pf).mark_rect().encode(
            x=alt.X("key:O", title="key position"), y=alt.Y("query:O", title="query position"),
            color=alt.Color("prob:Q", scale=alt.Scale(scheme="greys")),
            tooltip=["query_token:N", "key_token:N", alt.Tooltip("prob:Q", format=".3f")]), width="stretch")
        st.caption("Attention of one head on the first analysed example (rows: queries, columns: keys).")


def _curves(rec: dict[str, Any]) -> None:
    stat = st.selectbox("Statistic over training", ["entropy_norm", "top1", "offset", "erank", "support"],
                        key="att_curve_stat")
    data = aq.attention_curve_frame(rec, stat)
    data["series"] = data["head"].map(lambda h: "layer mean" if h == -1 else "uniform" if h == -2 else f"head {h}")
    data["kind"] = data["head"].map(lambda h: "head" if h >= 0 else "layer")
    base = alt.Chart(data).encode(x=alt.X("step:Q"), y=alt.Y("value:Q", title=stat), detail="series:N",
                                  tooltip=["step:Q", "layer:O", "series:N", alt.Tooltip("value:Q", format=".3f")])
    heads = base.transform_filter(alt.datum.kind == "head").mark_line(opacity=0.35).encode(color="layer:N")
    layers = base.transform_filter(alt.datum.kind == "layer").mark_line(strokeWidth=3, point=True).encode(
        color="layer:N", strokeDash="series:N")
    st.altair_chart(alt.layer(heads, layers), width="stretch")
    st.caption("Step 0 is the initialised model; thin lines are heads, thick lines the layer mean and uniform "
               "attention over the same keys.")


def _pruning_chart(prune: pd.DataFrame, rec: dict[str, Any]) -> None:
    cost = st.radio("Cost axis", list(COSTS), format_func=COSTS.get, horizontal=True, key="att_prune_cost")
    data = prune.copy()
    data["series"] = data.apply(lambda r: f"{r['method']}" + (f" +ft {r['finetune_steps']}" if r["finetune_steps"]
                                                                else ""), axis=1)
    parent = data[data["method"] == "parent"]
    rows = [data[data["method"] != "parent"]]
    for s in data.loc[data["method"] != "parent", "series"].unique():  # every curve starts at the parent
        rows.append(parent.assign(series=s))
    data = pd.concat(rows, ignore_index=True)
    score = alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("heads_kept:Q", title="heads kept"), y=alt.Y("mean(score):Q", title=f"score ({rec['metric']})"),
        color="series:N", tooltip=["series:N", "heads_kept:Q", alt.Tooltip("mean(score):Q", format=".4f"),
                                   "count():Q"])
    costs = alt.Chart(data).mark_line(
        strokeDash=[4, 3], color="gray").encode(x="heads_kept:Q", y=alt.Y(f"mean({cost}):Q", title=COSTS[cost]))
    st.altair_chart(alt.layer(score, costs).resolve_scale(y="independent"), width="stretch")
    st.caption("Score of each pruned model against the heads it keeps (mean over random seeds), by pruning "
               f"method; dashed grey: {COSTS[cost]} (right axis).")
    st.dataframe(prune, hide_index=True, width="stretch")
