"""Glossary: every column, how it is measured, and when the data were last updated."""

from __future__ import annotations

import streamlit as st

import arena
from arena.leaderboard import ui

st.title("Glossary and methodology")

url = ui.db_url()
engine = ui.engine_or_message()
if engine is not None:
    updated = ui.last_updated(url)
    counts = ui.status_counts(url)
    c = st.columns(3)
    c[0].metric("last updated (newest run)", updated.strftime("%Y-%m-%d %H:%M UTC") if updated is not None else "never")
    c[1].metric("methodology version", arena.METHODOLOGY_VERSION)
    c[2].metric("runs (completed / all)", f"{counts.get('completed', 0):,} / {sum(counts.values()):,}")
else:
    st.metric("methodology version", arena.METHODOLOGY_VERSION)

st.markdown(r"""
### Scores
- **Score**: the task's own metric on its headline split (e.g. exact match of the generated answer on
  `test_ood` for scan-depth). Mean ± std over the completed seeds of the same configuration; **n** = seeds.
- **Normalized score** = max(0, (score − chance) / (1 − chance)), where *chance* is the task's chance level
  (0 for exact match, 0.5 for a binary answer). 0 means "no better than guessing", 1 means perfect.
- **Gate**: the efficiency ratios are only shown for rows whose mean normalized score is at least the gate
  (default 0.5, adjustable). Below it the ratio cells are blank, so a chance-level model with a handful of
  parameters can never top a score-per-parameter ranking.

### Costs
- **Params (total)**: every trainable parameter, tied weights counted once, taken from the architecture's
  analytic formula and checked against the built module (a run fails if they disagree).
  **Embedding / non-embedding**: the token embedding (and untied head) vs the rest. **Active**: parameters
  used per token (smaller than total only for mixture-of-experts models).
- **FLOPs (forward, per example)**: analytic, 2 × multiply-adds, broken into matmul / attention / elementwise /
  FFT / scan, at the mean evaluation sequence length. **Counted FLOPs** come from
  `torch.utils.flop_counter.FlopCounterMode`, which only sees matmul/bmm/conv (and attention under the math
  backend); the two are stored side by side and disagreements noted, never silently trusted.
- **Latency p50**: median wall time of one forward pass at batch 1 (after warm-up, ≥ 10 timed blocks of
  `torch.utils.benchmark`), on the hardware shown beside it; p90 and throughput at a larger batch are stored
  too. A row shows the median over its seeds and, beside it, the *seed range*: the fastest and the slowest
  seed (a wide range means the machine was loaded or the timer noisy). Latency is only comparable on the same machine; rows whose seeds ran on different hardware say
  "mixed" and get no latency ratio.
- **Memory**: the run's own peak resident set size (RSS) on CPU, peak allocated memory on CUDA, in MiB. It
  includes the interpreter and torch (~300 MiB on CPU); a sweep worker resets the peak when each run starts,
  so a run is never charged with an earlier run's memory.
- **State size**: floats carried between steps when generating (constant for recurrent models, growing with
  sequence length for attention).
- **Prior**: what a task-specific model was given by hand rather than learned, the cost its parameter count
  hides: its skeleton's source as gzip bytes and non-blank lines, and the bits its learned part holds (e.g.
  709 B gzip · 58 lines · 69.7 bits for the state machine's SCAN skeleton). *no prior*: a general model, which
  learns everything from the data; *not recorded*: a task-specific run from before arena recorded it.

### Efficiency
- **per M params**, **per GFLOP**, **per ms** (norm/Mparam, norm/GFLOP, norm/ms in exports): normalized score
  divided by params in millions, forward FLOPs per example in billions, and p50 latency in milliseconds. A blank
  cell says why: *below gate*, *not measured*, *task-specific* (not ranked unless included), *mixed hardware*.
- **Badges**: *task-specific* (the architecture has the task's structure built in, e.g. the 164-parameter state
  machine: compare its score, not its efficiency), *plugin* (submitted code, with its name, version and hash),
  *unverified cost* (FLOPs only declared by a submission, or the FLOP counter disagrees with them for no
  known reason), *no isolation* (a submission that ran without a sandbox), *mixed hardware*.
- **LR robustness**: the share of a learning-rate grid that reaches the gate, and the learning rate chosen on
  validation with its test score (never chosen on the test split).
- **Pareto**: a row is on the front of a cost axis when no other row of the same task and split is at least as
  cheap and at least as good, and strictly better on one (latency fronts only within one hardware). Rows at
  normalized score 0 are never on a front.
- **Combined score** (leaderboard page): your weighted mean of the normalized score and the cheapness of each
  cost (its percentile rank within the task and split, 1 = cheapest); blank below the gate.
- **Succinctness**: for each architecture, task and depth, the smallest parameter count that reaches the target
  normalized score (bisection over a size ladder), plotted against depth on a log scale.

### Rows and reproducibility
- A row aggregates runs that differ only in their seed: same architecture and version, task and version,
  split, size (preset or parameter budget) and **variant** (the options that differ from the defaults).
- **Source**: built-in or plugin; plugin rows carry the distribution name, version and source hash.
- Every run has its exact `arena run …` command on the **Run detail** page, with its config and provenance
  (arena version, git commit, Python and package versions).
""")
