"""The cost and score columns of a run, declared once.

Every reader takes its columns from here: the ORM (a declared column the ``Run`` model does not spell out is
added to it), the leaderboard aggregation and export (:mod:`arena.export`: what each column aggregates to over
seeds, its unit, which costs are ratio denominators), the Streamlit leaderboard (labels, optional columns),
``arena show`` (a row per column without a hand-made one) and ``arena list runs``.

Adding a cost column therefore touches four files: the measurement that produces it (``arena/measure/``), the
:class:`arena.record.RunRecord` field it fills, an Alembic migration, and its declaration here.

:data:`PRIOR` is the cost a task-specific model carries that its parameter count hides: the hand-written part
(the state machine's interpreter skeleton) as source size, and the information its learned part holds. A general
model has none (NULL); readers say so instead of treating it as unmeasured.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ratio:
    """A cost that is a denominator of an efficiency ratio (normalized score per unit of it)."""

    axis: str  # "params" | "flops" | "latency": the name users rank by
    column: str  # the ratio's leaderboard column
    pareto: str  # the Pareto-flag column (score vs this cost)
    divisor: float  # the cost is divided by this first (per *million* params, per *G*FLOP)
    label: str  # the cost axis in words


@dataclass(frozen=True)
class Column:
    """One cost or score column of the ``runs`` table.

    Attributes:
        name: the ``runs`` column (and :class:`arena.record.RunRecord` field).
        label: short human label (leaderboard header, ``arena show`` row).
        unit: what a value means, as exports state it.
        higher_is_better: ranking direction; None for a column that is not ranked on (context only).
        aggregation: how seeds combine in a leaderboard row: ``mean``, ``median``, ``max``, or ``mean_std``
            (a ``<board>_mean`` and a ``<board>_std`` column).
        board: the leaderboard/export column name. Default: ``name``.
        ratio: set when the column is the denominator of an efficiency ratio.
        also: further leaderboard columns from the same run column: ``(board name, aggregation, unit)``.
        sql: ``float`` | ``int`` | ``text``, the type of a column the model does not spell out.
        summary: where ``arena show --json`` puts it (a path of keys). Default: at the top level under ``name``.
        show: ``arena show`` prints it on a row of its own (False where a hand-made row already combines it).
        list_key: the key ``arena list runs`` shows it under (None: not listed).
        std_unit: the unit of the ``_std`` column of a ``mean_std`` aggregation. Default: ``unit``.
    """

    name: str
    label: str
    unit: str
    higher_is_better: bool | None = False
    aggregation: str = "mean"
    board: str = ""
    ratio: Ratio | None = None
    also: tuple[tuple[str, str, str], ...] = ()
    sql: str = "float"
    summary: tuple[str, ...] = ()
    show: bool = True
    list_key: str | None = None
    std_unit: str = ""

    @property
    def board_name(self) -> str:
        return self.board or self.name

    @property
    def summary_path(self) -> tuple[str, ...]:
        return self.summary or (self.name,)

    def board_columns(self) -> list[tuple[str, str, str]]:
        """``(leaderboard column, aggregation, unit)`` for every column this one gives the leaderboard."""
        if self.aggregation == "mean_std":
            out = [(f"{self.board_name}_mean", "mean", self.unit),
                   (f"{self.board_name}_std", "std", self.std_unit or self.unit)]
        else:
            out = [(self.board_name, self.aggregation, self.unit)]
        return out + list(self.also)


SCORES: tuple[Column, ...] = (
    Column("score", "score", "the task metric (column metric, on headline_split)", True, "mean_std",
           board="score", show=False, list_key="score", std_unit="the task metric"),
    Column("normalized_score", "norm. score", "fraction of the way from chance (0) to perfect (1)", True,
           "mean_std", board="normalized", show=False, std_unit="fraction"),
)

COSTS: tuple[Column, ...] = (
    Column("params_total", "params", "parameters", board="params_total",
           ratio=Ratio("params", "norm_per_mparam", "pareto_params", 1e6, "parameters"),
           sql="int", summary=("params", "total"), show=False, list_key="params"),
    Column("params_active", "active params", "parameters per token", sql="int", summary=("params", "active"),
           show=False),
    Column("params_non_embedding", "non-embedding params", "parameters", sql="int",
           summary=("params", "non_embedding"), show=False),
    Column("state_size", "state size", "floats carried between generation steps", sql="int", show=False),
    Column("flops_forward_per_example", "FLOPs/ex", "FLOPs (2 x multiply-adds), analytic forward pass of one example",
           board="flops_per_example",
           ratio=Ratio("flops", "norm_per_gflop", "pareto_flops", 1e9, "forward FLOPs per example"),
           summary=("flops", "forward_per_example"), show=False),
    Column("flops_counted_per_example", "FLOP counter", "FLOPs counted by torch FlopCounterMode (matmul/attention only)",
           higher_is_better=None, summary=("flops", "counted_forward_per_example"), show=False),
    Column("latency_p50_ms", "p50 ms", "ms, median over seeds of each run's p50 forward latency at batch 1",
           aggregation="median", ratio=Ratio("latency", "norm_per_ms", "pareto_latency", 1.0,
                                             "latency p50 (ms, batch 1)"),
           also=(("latency_min_ms", "min", "ms, fastest seed's p50"), ("latency_max_ms", "max", "ms, slowest seed's p50")),
           summary=("latency_ms", "p50"), show=False),
    Column("memory_mb", "mem MiB", "MiB, peak resident memory of the run (CPU) or peak allocated (CUDA)", show=False),
    Column("load_avg_1m", "load avg", "the machine's 1-minute load average when the latency was timed",
           higher_is_better=None, summary=("latency_ms", "load_avg_1m")),
)

PRIOR: tuple[Column, ...] = (  # reported by a model implementing arena.api.HandWrittenPrior; identical over seeds
    Column("prior_gzip_bytes", "prior gzip B", "bytes, gzip -9 of the hand-written skeleton's source (task-specific "
           "models; blank: no hand-written prior)", higher_is_better=None, aggregation="max", sql="int",
           summary=("prior", "gzip_bytes"), show=False),
    Column("prior_lines", "prior lines", "non-blank, non-comment source lines of the hand-written skeleton "
           "(blank: no hand-written prior)", higher_is_better=None, aggregation="max", sql="int",
           summary=("prior", "lines"), show=False),
    Column("prior_learned_bits", "learned bits", "bits, information the learned part of a task-specific model "
           "holds on top of its skeleton (log2 of the discrete choices it learns; blank: no hand-written prior)",
           higher_is_better=None, aggregation="max", summary=("prior", "learned_bits"), show=False),
)

COLUMNS: tuple[Column, ...] = SCORES + COSTS + PRIOR


def by_name(name: str) -> Column:
    for c in COLUMNS:
        if c.name == name:
            return c
    raise KeyError(name)


def ratio_axes() -> dict[str, tuple[str, str, str, float, str]]:
    """cost axis -> (cost leaderboard column, ratio column, Pareto column, divisor, label)."""
    return {c.ratio.axis: (c.board_name, c.ratio.column, c.ratio.pareto, c.ratio.divisor, c.ratio.label)
            for c in COSTS if c.ratio is not None}


def board_units() -> dict[str, str]:
    """leaderboard column -> unit, for every column the registry gives the leaderboard."""
    return {board: unit for c in COLUMNS for board, _, unit in c.board_columns()}


__all__ = ["Column", "Ratio", "COLUMNS", "COSTS", "SCORES", "PRIOR", "by_name", "ratio_axes", "board_units"]
