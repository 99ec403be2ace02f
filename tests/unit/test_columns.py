"""The column registry is what every reader uses: the ORM, export's aggregation and units, and the CLI."""

from __future__ import annotations

from arena import columns, export
from arena.store.models import Run


def test_every_declared_column_is_a_runs_column_and_reaches_the_board():
    assert {c.name for c in columns.COLUMNS} <= set(Run.__table__.c.keys())
    board = export.leaderboard_columns()
    for c in columns.COLUMNS:
        for name, how, unit in c.board_columns():
            assert name in board and export.UNITS[name] == unit, name
            assert how in ("mean", "std", "median", "min", "max")
    assert set(export.COST_AXES) == {"params", "flops", "latency"}


def test_aggregation_follows_the_declaration(tmp_path):
    from leaderboard.synthetic import seed_database

    engine = seed_database(f"sqlite:///{tmp_path / 'c.db'}", n_runs=12)
    runs = export.load_runs(engine)
    board = export.aggregate(runs)
    row = board.iloc[0]
    ids = [int(i) for i in str(row["run_ids"]).split(",")]
    mine = runs[runs["id"].isin(ids)]
    assert row["latency_p50_ms"] == mine["latency_p50_ms"].median()
    assert row["memory_mb"] == mine["memory_mb"].mean()
    assert row["latency_max_ms"] == mine["latency_p50_ms"].max()


def test_the_prior_is_declared_and_only_task_specific_rows_carry_it(tmp_path):
    from leaderboard.synthetic import PRIOR, seed_database

    assert [c.name for c in columns.PRIOR] == list(PRIOR) and all(c.aggregation == "max" for c in columns.PRIOR)
    assert all(c.ratio is None and c not in columns.COSTS for c in columns.PRIOR)  # context: never a ratio axis
    board = export.aggregate(export.load_runs(seed_database(f"sqlite:///{tmp_path / 'p.db'}", n_runs=30)))
    ts = board["task_specific"].astype(bool)
    assert ts.any() and (~ts).any()
    assert (board.loc[ts, list(PRIOR)] == list(PRIOR.values())).all(axis=None)
    assert board.loc[~ts, list(PRIOR)].isna().all(axis=None)
