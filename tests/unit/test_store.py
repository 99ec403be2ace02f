"""Store: migrations to head, run lifecycle round-trip (completed and failed), stale-run detection."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlalchemy import inspect, text

from arena.errors import StoreError
from arena.store import get_run, open_store, repo
from arena.store.models import VERSION_TABLE, utcnow

FIELDS = dict(arch="rnn", arch_version=1, arch_kind="mixer", arch_family="recurrent", task="scan-depth",
              task_version=1, split="depth", size="tiny", seed=0, config={"a": 1}, config_hash="h" * 64)


def test_schema_is_migrated_with_our_version_table(db_url):
    engine = open_store(db_url)
    names = set(inspect(engine).get_table_names())
    assert {"runs", "metrics", "provenance", VERSION_TABLE} <= names
    with engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert c.execute(text(f"select version_num from {VERSION_TABLE}")).scalar() == _head()


def _head() -> str:
    """The newest migration: files are numbered 0001, 0002, ... and chained by down_revision."""
    from pathlib import Path

    import arena.store

    versions = Path(arena.store.__file__).parent / "migrations" / "versions"
    return max(p.name[:4] for p in versions.glob("0*.py"))


def test_migration_0005_adds_the_prior_columns_to_existing_runs_and_removes_them_again(tmp_path):
    """An 0004 database keeps its runs through the upgrade (their prior reads NULL: no hand-written prior
    recorded) and the downgrade drops exactly the three columns."""
    from alembic import command

    from arena.store.engine import _script

    engine = open_store(f"sqlite:///{tmp_path / 'm.db'}", migrate=False)
    cfg, _ = _script()

    def migrate(fn, rev: str) -> set[str]:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            fn(cfg, rev)
        return {c["name"] for c in inspect(engine).get_columns("runs")}

    prior = {"prior_gzip_bytes", "prior_lines", "prior_learned_bits"}
    assert not prior & migrate(command.upgrade, "0004")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO runs (arch, arch_version, arch_kind, arch_family, task, task_version, split, "
                          "seed, config, config_hash, status, created_at, step, source, higher_is_better, "
                          "task_specific, load_avg_1m) VALUES ('state-machine', 1, 'model', 'symbolic', 'scan', 1, "
                          "'simple', 0, '{}', 'x', 'completed', '2026-12-06 00:00:00', 3, 'builtin', 1, 1, 0.5)"))
    assert prior <= migrate(command.upgrade, "0005")
    with engine.connect() as conn:
        row = conn.execute(text("SELECT load_avg_1m, prior_gzip_bytes, prior_lines, prior_learned_bits FROM runs"))
        assert row.one() == (0.5, None, None, None)
    assert not prior & migrate(command.downgrade, "0004")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT arch, load_avg_1m FROM runs")).one() == ("state-machine", 0.5)


def test_completed_round_trip(db_url):
    engine = open_store(db_url)
    rid = repo.create_run(engine, **FIELDS)
    assert get_run(engine, rid).status == "running"
    repo.complete_run(engine, rid, {"score": 0.5, "params_total": 123},
                      [{"split": "test", "name": "exact_match", "value": 0.5, "n": 10},
                       {"split": "test", "name": "exact_match", "value": 1.0, "slice_key": "depth",
                        "slice_value": "2", "n": 4}],
                      {"arena_version": "0.1.0", "python": "3.11", "packages": {"torch": "x"}})
    run = get_run(engine, rid)
    assert run.status == "completed" and run.score == 0.5 and run.params_total == 123 and run.finished_at
    assert {(m.split, m.name, m.slice_key, m.value) for m in run.metrics} == {
        ("test", "exact_match", None, 0.5), ("test", "exact_match", "depth", 1.0)}
    assert run.provenance.packages == {"torch": "x"}


def test_failed_run_is_recorded_with_error(db_url):
    engine = open_store(db_url)
    rid = repo.create_run(engine, **FIELDS)
    repo.end_run(engine, rid, "failed", "boom")
    run = get_run(engine, rid)
    assert run.status == "failed" and run.error == "boom" and run.metrics == []


def test_stale_and_dead_runs_are_marked_interrupted(db_url):
    engine = open_store(db_url)
    a = repo.create_run(engine, **FIELDS)
    b = repo.create_run(engine, **FIELDS)
    c = repo.create_run(engine, **FIELDS)  # ours, alive, fresh
    with engine.begin() as conn:
        conn.execute(text("update runs set heartbeat_at=:t where id=:i"),
                     {"t": utcnow() - timedelta(hours=1), "i": a})
        conn.execute(text("update runs set pid=:p where id=:i"), {"p": _dead_pid(), "i": b})
    assert repo.mark_stale_runs(engine) == 2
    assert get_run(engine, a).status == "interrupted" and get_run(engine, b).status == "interrupted"
    assert get_run(engine, c).status == "running"


def _dead_pid() -> int:
    import subprocess

    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_unopenable_urls_give_clear_errors(tmp_path):
    with pytest.raises(StoreError, match="cannot parse database URL"):
        open_store("not a url")
    with pytest.raises(StoreError):
        open_store("nosuchdialect://x/y")
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path / 'missing.db'}", readonly=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_database_is_a_clear_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'ro.db'}"
    open_store(url)
    os.chmod(tmp_path / "ro.db", 0o444)
    with pytest.raises(StoreError, match="read-only|readonly"):
        repo.create_run(open_store(url), **FIELDS)


def test_readonly_engine_cannot_write(db_url):
    engine = open_store(db_url)
    repo.create_run(engine, **FIELDS)
    ro = open_store(db_url, readonly=True)
    with pytest.raises(StoreError, match="readonly|read-only"):
        repo.create_run(ro, **FIELDS)
    assert len(repo.list_runs(ro)) == 1


def test_two_processes_creating_one_new_database_at_once(tmp_path):
    """Regression: DDL outside a transaction let a second process see tables without the version row."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = f"from arena.store import open_store; open_store({url!r}); print('ok')"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    assert len(repo.list_runs(open_store(url))) == 0
