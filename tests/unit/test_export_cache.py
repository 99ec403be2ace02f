"""The export cache (``arena.export_cache``): a repeated export of an unchanged SQLite file is served from the
cache byte for byte; any write to the database, another option or ``--no-cache`` exports afresh; a cache that
cannot be written or holds a damaged entry costs only speed."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest
from typer.testing import CliRunner

import arena.export
from arena import export_cache
from arena.cli.app import app
from arena.leaderboard.synthetic import add_run, seed_database
from arena.store.engine import open_store

runner = CliRunner()


@pytest.fixture
def seeded(db_url):
    seed_database(db_url, 40).dispose()
    return db_url


def _export(url, *args):
    res = runner.invoke(app, ["export", "--db", url, *args])
    assert res.exit_code == 0, (res.output, res.exception)
    return res.stdout


def _forbid_recompute(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("recomputed the leaderboard although the export was cached")

    monkeypatch.setattr(arena.export, "leaderboard_frame", boom)


def test_a_repeated_export_is_served_from_the_cache_byte_for_byte(seeded, monkeypatch):
    for fmt in ("csv", "json", "md"):
        first = _export(seeded, "--format", fmt)
        with monkeypatch.context() as m:
            _forbid_recompute(m)
            assert _export(seeded, "--format", fmt) == first
    assert len(list(export_cache.cache_dir().glob("*.export"))) == 3


def test_a_write_other_options_or_no_cache_export_afresh(seeded, monkeypatch):
    csv = _export(seeded, "--format", "csv")
    assert _export(seeded, "--format", "csv", "--gate", "0.9") != csv  # another gate: another key
    with monkeypatch.context() as m:
        _forbid_recompute(m)
        res = runner.invoke(app, ["export", "--db", seeded, "--format", "csv", "--no-cache"])
        assert isinstance(res.exception, AssertionError)  # --no-cache really reads the database
    engine = open_store(seeded)
    rid = add_run(engine, arch="rnn", task="mqar", split="default", score=0.75)
    engine.dispose()
    after = _export(seeded, "--format", "csv")
    assert after != csv and "mqar" in after and "mqar" not in csv
    doc = json.loads(_export(seeded, "--format", "json"))
    assert str(rid) in doc["runs"]


def test_an_update_that_keeps_every_size_and_count_still_invalidates(seeded):
    """A remeasure-style UPDATE of one value: same number of runs, same file sizes; the checksums change."""
    before = _export(seeded, "--format", "csv")
    path = seeded.removeprefix("sqlite:///")
    con = sqlite3.connect(path)
    old = con.execute("SELECT latency_p50_ms FROM runs WHERE id = 1").fetchone()[0]
    con.execute("UPDATE runs SET latency_p50_ms = ? WHERE id = 1", (old * 1000 + 123.0,))
    con.commit()
    con.close()
    assert _export(seeded, "--format", "csv") != before


def test_an_unwritable_or_damaged_cache_only_costs_speed(seeded, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("ARENA_CACHE_DIR", str(blocker))
    fresh = _export(seeded, "--format", "csv")
    assert fresh.startswith("# arena leaderboard export")
    monkeypatch.setenv("ARENA_CACHE_DIR", str(tmp_path / "cache"))
    cached = _export(seeded, "--format", "csv")
    assert _export(seeded, "--format", "csv") == cached
    (entry,) = export_cache.cache_dir().glob("*.export")
    entry.write_bytes(entry.read_bytes()[:-10])  # truncated: its length no longer matches its header
    again = _export(seeded, "--format", "csv")
    table = lambda text: text.splitlines()[2:]  # noqa: E731  (after the comment and the meta line)
    assert table(again) == table(cached) == table(fresh) and again != cached  # exported afresh, same table


def test_only_plain_sqlite_files_are_cached(tmp_path):
    assert export_cache.key("postgresql://u@h/db", {}) is None
    assert export_cache.key("sqlite:///:memory:", {}) is None
    assert export_cache.key(f"sqlite:///{tmp_path / 'missing.db'}", {}) is None
    os.environ["ARENA_EXPORT_CACHE"] = "0"
    try:
        (tmp_path / "x.db").write_bytes(b"")
        assert export_cache.key(f"sqlite:///{tmp_path / 'x.db'}", {}) is None
    finally:
        del os.environ["ARENA_EXPORT_CACHE"]
