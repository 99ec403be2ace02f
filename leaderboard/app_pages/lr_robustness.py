"""LR robustness: how much of a learning-rate grid reaches the gate, and the LR each architecture would get if it
were chosen on validation (not on the test split)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from arena.leaderboard import charts, queries, ui
from arena.paper import score_text

st.title("Learning-rate robustness")
st.caption("For each architecture and task: the share of the learning rates tried that reach the gate (a robust "
           "architecture works across the grid), and the learning rate chosen on the validation split with its "
           "test score, beside the best test score over the grid (choosing on test would report that one).")
url, pairs = ui.runs_or_stop()

c1, c2 = st.columns([3, 2])
gate = c2.slider("Gate (normalized score)", 0.0, 1.0, 0.5, 0.05, key="lr_gate")
tables = []
for task, split in pairs:
    board = ui.board(url, task, split)
    tables.append(queries.lr_robustness(board, ui.val_scores(url, task), gate))
table = pd.concat([t for t in tables if len(t)], ignore_index=True) if any(len(t) for t in tables) else \
    pd.DataFrame()
grids = table[table["n_lrs"] > 1] if len(table) else table
if grids.empty:
    st.info("No learning-rate grids yet: runs that differ only in train.lr (e.g. a sweep with lrs: [...]) appear "
            "here.")
    st.stop()

sizes = sorted(grids["size"].astype(str).unique())
# open on the size where the grids tell architectures apart most (the widest spread of reach fractions)
spread = grids.groupby(grids["size"].astype(str))["fraction"].agg(lambda f: f.max() - f.min())
size = c1.selectbox("Size", sizes, index=sizes.index(spread.idxmax()), key="lr_size")
sub = grids[grids["size"].astype(str) == size]
cells = sub.groupby(["task", "arch"], as_index=False).agg(
    n_reach=("n_reach", "sum"), n_lrs=("n_lrs", "sum"), size=("size", "first"), options=("options", "first"),
    lrs=("lrs", "first"), best_val_lr=("best_val_lr", "first"))
cells["fraction"] = cells["n_reach"] / cells["n_lrs"]
st.altair_chart(charts.lr_heatmap(cells), width="stretch")
st.caption(f"Cells: learning rates reaching the gate {gate:g} / learning rates tried (all option sets of the size "
           "pooled).")

st.subheader("Best learning rate per architecture, chosen on validation", anchor=False)
view = sub.assign(reach=sub["fraction"] * 100,
    chosen=[score_text(m, s, 2) for m, s in zip(sub["score_at_val_lr"], sub["score_std_at_val_lr"], strict=True)],
    gap=sub["best_test_score"] - sub["score_at_val_lr"])
st.dataframe(view[["task", "arch", "size", "options", "max_steps", "n_lrs", "reach", "best_val_lr", "val_score",
                   "chosen", "best_test_lr", "best_test_score", "gap"]], hide_index=True, width="stretch",
             column_config={
                 "arch": "architecture", "options": st.column_config.TextColumn("other options"),
                 "max_steps": "steps",
                 "n_lrs": st.column_config.NumberColumn("LRs"),
                 "reach": st.column_config.ProgressColumn("reach the gate", format="%.0f%%", min_value=0,
                                                          max_value=100),
                 "best_val_lr": st.column_config.NumberColumn("LR chosen on val", format="%.3g"),
                 "val_score": st.column_config.NumberColumn("val score", format="%.3f"),
                 "chosen": st.column_config.TextColumn("test score at that LR"),
                 "best_test_lr": st.column_config.NumberColumn("best LR on test", format="%.3g"),
                 "best_test_score": st.column_config.NumberColumn("best test score", format="%.3f"),
                 "gap": st.column_config.NumberColumn("optimism if chosen on test", format="%.3f",
                                                      help="best test score over the grid minus the test score at "
                                                           "the LR chosen on validation")})
