"""Values from plugins and configs never reach SQL unescaped; the leaderboard binds to loopback by default."""

from __future__ import annotations

import inspect

from sqlalchemy import inspect as sa_inspect

from arena.store import get_run, list_runs, open_store, repo

HOSTILE = "x'); DROP TABLE runs; --"


def test_hostile_strings_round_trip_and_tables_survive(db_url):
    engine = open_store(db_url)
    rid = repo.create_run(engine, arch=HOSTILE, arch_version=1, arch_kind="mixer", arch_family=HOSTILE,
                          task="scan-depth", task_version=1, split=HOSTILE, size="tiny", seed=0,
                          config={"note": HOSTILE, "nested": {"k": "<script>alert(1)</script>"}}, config_hash="h" * 64,
                          plugin_name=HOSTILE, source="plugin")
    repo.complete_run(engine, rid, {"score": 0.9, "error": None},
                      [{"split": HOSTILE, "name": "exact_match", "value": 0.9, "slice_key": HOSTILE,
                        "slice_value": "1' OR '1'='1"}],
                      {"arena_version": "0", "python": "3", "packages": {}, "command": HOSTILE})
    assert {"runs", "metrics", "provenance"} <= set(sa_inspect(engine).get_table_names())
    run = get_run(engine, rid)
    assert run.arch == HOSTILE and run.config["note"] == HOSTILE and run.metrics[0].slice_value == "1' OR '1'='1"
    # a hostile filter value matches nothing instead of everything
    assert list_runs(engine, task="x' OR '1'='1") == []
    assert len(list_runs(engine, arch=HOSTILE)) == 1


def test_export_filters_are_bound_parameters(db_url):
    from arena.export import leaderboard_frame

    engine = open_store(db_url)
    repo.create_run(engine, arch="rnn", arch_version=1, arch_kind="mixer", arch_family="r", task="t",
                    task_version=1, split="s", size="tiny", seed=0, config={}, config_hash="a" * 64)
    frame = leaderboard_frame(engine, task="t' OR '1'='1")
    assert len(frame) == 0


def test_leaderboard_defaults_to_loopback():
    from arena.cli import commands_export

    default = inspect.signature(commands_export.leaderboard).parameters["address"].default
    assert getattr(default, "default", default) == "127.0.0.1"
