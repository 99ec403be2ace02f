"""Opening a database: every way it can go wrong is one clear message (no traceback), and readers never write.

In-memory SQLite is refused for recording, a server that does not answer fails after the connect timeout, a
database migrated by a newer arena or a corrupted file says so, and ``show``/``list``/``export`` open read-only:
they never create a file or folder, and they read a database the user cannot write."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from arena.errors import StoreError
from arena.store import open_store, repo

FIELDS = dict(arch="rnn", arch_version=1, arch_kind="mixer", arch_family="recurrent", task="scan-depth",
              task_version=1, split="depth", size="tiny", seed=0, config={}, config_hash="c" * 64)
PROV = {"arena_version": "0", "python": "3", "packages": {}}


def _arena(args, tmp_path, **env):
    full = dict(os.environ, ARENA_CHECKPOINT_DIR=str(tmp_path / "ck"), OMP_NUM_THREADS="1", **env)
    full.pop("ARENA_DB_URL", None)
    p = subprocess.run([sys.executable, "-m", "arena.cli", *args], env=full, capture_output=True, text=True,
                       timeout=300, cwd=tmp_path)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def _recorded(path) -> str:
    url = f"sqlite:///{path}"
    engine = open_store(url)
    rid = repo.create_run(engine, **FIELDS)
    repo.complete_run(engine, rid, {"score": 0.5}, [{"split": "test", "name": "acc", "value": 0.5}], PROV)
    engine.dispose()
    return url


def test_in_memory_database_is_refused_for_recording(tmp_path, monkeypatch):
    p = _arena(["run", "--arch", "rnn", "--task", "counter-chain", "--size", "tiny", "--max-steps", "1",
                "--db", "sqlite://"], tmp_path)
    assert p.returncode == 1 and "in-memory database" in p.stderr and "ARENA_ALLOW_MEMORY_DB" in p.stderr
    with pytest.raises(StoreError, match="in-memory"):
        open_store("sqlite:///:memory:")
    monkeypatch.setenv("ARENA_ALLOW_MEMORY_DB", "1")  # the explicit opt-in: one shared connection, so it works
    engine = open_store("sqlite://")
    rid = repo.create_run(engine, **FIELDS)
    assert repo.get_run(engine, rid).status == "running"


def test_unreachable_server_fails_fast_with_a_clear_message(monkeypatch):
    """A server that accepts the TCP connection and never answers (the psycopg default would wait minutes)."""
    pytest.importorskip("psycopg")
    monkeypatch.delenv("ARENA_DB_CONNECT_TIMEOUT", raising=False)
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(StoreError) as info:
            open_store(f"postgresql+psycopg://user:s3cret@127.0.0.1:{port}/x")
        elapsed = time.monotonic() - t0
    msg = str(info.value)
    assert "cannot reach the database server at 127.0.0.1" in msg and "ARENA_DB_CONNECT_TIMEOUT" in msg
    assert "s3cret" not in msg
    assert elapsed < 10, elapsed  # the default connect timeout is 4 s


def test_bad_connect_timeout_setting_is_named(monkeypatch):
    monkeypatch.setenv("ARENA_DB_CONNECT_TIMEOUT", "nan")
    with pytest.raises(StoreError, match="ARENA_DB_CONNECT_TIMEOUT"):
        open_store("postgresql+psycopg://user@127.0.0.1:1/x")


def test_database_from_a_newer_arena_is_named(tmp_path):
    url = _recorded(tmp_path / "a.db")
    con = sqlite3.connect(tmp_path / "a.db")
    con.execute("UPDATE arena_alembic_version SET version_num='0999'")
    con.commit()
    con.close()
    for readonly in (False, True):
        with pytest.raises(StoreError, match=r"written by a newer arena \(schema revision 0999.*upgrade arena"):
            open_store(url, readonly=readonly)
    p = _arena(["list", "runs", "--db", url], tmp_path)
    assert p.returncode == 1 and "newer arena" in p.stderr


def test_corrupted_database_gives_integrity_check_advice(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(8192))
    p = _arena(["list", "runs", "--db", f"sqlite:///{junk}"], tmp_path)
    assert p.returncode == 1 and "corrupted" in p.stderr and "integrity_check" in p.stderr
    # a valid header with a damaged page: noticed at the first query that reads it
    path = tmp_path / "paged.db"
    url = _recorded(path)
    engine = open_store(url)
    for seed in range(1, 200):
        rid = repo.create_run(engine, **{**FIELDS, "seed": seed, "config": {"pad": "x" * 2000}})
        repo.end_run(engine, rid, "failed", "y" * 500)
    engine.dispose()
    data = bytearray(path.read_bytes())
    page = 4096
    for off in range(3 * page, len(data) - page, page):
        data[off:off + 64] = os.urandom(64)
    path.write_bytes(bytes(data))
    for args in (["list", "runs", "--limit", "1000"], ["show", "150"], ["export"]):
        p = _arena([*args, "--db", url], tmp_path)
        assert p.returncode == 1, (args, p.stdout[-500:], p.stderr)
        assert "integrity_check" in p.stderr, (args, p.stderr)


def test_read_commands_never_create_files(tmp_path):
    typo = tmp_path / "resluts" / "arena.db"
    for args in (["list", "runs"], ["show", "1"], ["export"]):
        p = _arena([*args, "--db", f"sqlite:///{typo}"], tmp_path)
        assert p.returncode != 0 and "does not exist" in p.stderr, (args, p.stderr)
    assert not typo.parent.exists()
    assert list(tmp_path.iterdir()) == []  # not even the default results/ folder


def test_read_commands_work_on_a_read_only_database(tmp_path):
    """The database file and its folder cannot be written: a read-only filesystem when we are root (root writes
    anything else), else chmod."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
                                                   capture_output=True).returncode == 0
    if os.geteuid() == 0 and not mounted:
        pytest.skip("cannot mount a tmpfs here")
    try:
        url = _recorded(folder / "a.db")
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        else:
            (folder / "a.db").chmod(0o444)
            folder.chmod(0o555)
        for args in (["list", "runs", "--json"], ["show", "1", "--json"], ["export", "-f", "json"]):
            p = _arena([*args, "--db", url], tmp_path)
            assert p.returncode == 0, (args, p.stderr)
        assert '"status": "completed"' in _arena(["show", "1", "--json", "--db", url], tmp_path).stdout
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        else:
            folder.chmod(0o755)


def test_read_only_open_reads_an_older_schema(tmp_path):
    """A reader never migrates: a database written before the newest columns still lists and shows."""
    path = tmp_path / "old.db"
    url = _recorded(path)
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE runs DROP COLUMN finetune_steps")
    con.execute("UPDATE arena_alembic_version SET version_num='0002'")
    con.commit()
    con.close()
    engine = open_store(url, readonly=True)
    assert [r.status for r in repo.list_runs(engine)] == ["completed"]
    run = repo.get_run(engine, 1)
    assert run.score == 0.5 and run.finetune_steps is None
    assert repo.get_run(engine, 2**66) is None
