"""Shared databases: several processes using a fresh PostgreSQL database at once create its schema once (a
database-level advisory lock around migrations) and every run they record is kept; the password of a database URL
is never printed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from arena.store import list_runs, open_store

WRITER = r"""
import sys, time
from arena.store import open_store, repo
url, start, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
while time.time() < start:   # all four open the fresh database at the same moment
    time.sleep(0.005)
engine = open_store(url)
ident = dict(arch="rnn", arch_version=1, arch_kind="mixer", arch_family="recurrent", task="scan-depth",
             task_version=1, split="depth", size="tiny", seed=seed, config={}, config_hash=f"{seed:064d}")
payload = {"fields": {"score": 0.5}, "metrics": [{"split": "test", "name": "acc", "value": 0.5}],
           "provenance": {"arena_version": "0", "python": "3", "packages": {}}}
print(repo.import_runs(engine, [(ident, payload)])[0])
"""


@pytest.fixture
def fresh_pg_url():
    """A PostgreSQL URL whose search_path is a new, empty schema (dropped afterwards)."""
    from sqlalchemy import create_engine, text

    base = os.environ.get("ARENA_TEST_PG_URL")
    if not base:
        pytest.skip("PostgreSQL tests need ARENA_TEST_PG_URL (eval \"$(.ci/postgres.sh)\")")
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - unreachable server
        pytest.skip(f"PostgreSQL at ARENA_TEST_PG_URL is unreachable: {type(exc).__name__}")
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("trial", range(3))
def test_four_processes_first_use_a_fresh_postgres_database(fresh_pg_url, trial):
    start = time.time() + 4  # after the four interpreters have imported arena
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, fresh_pg_url, str(start), str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "Traceback" not in err, err
    runs = list_runs(open_store(fresh_pg_url, readonly=True))
    assert sorted(r.seed for r in runs) == [0, 1, 2, 3]
    assert {r.status for r in runs} == {"completed"}


def test_leaderboard_banner_masks_the_password(monkeypatch, tmp_path):
    """`arena leaderboard` prints its database before it becomes the server: never with the password."""
    pytest.importorskip("streamlit")
    from typer.testing import CliRunner

    from arena.cli import commands_export
    from arena.cli.app import app

    started = {}

    def fake_execve(path, argv, env):  # instead of becoming the streamlit server
        started["env"] = env
        raise SystemExit(0)

    monkeypatch.setattr(commands_export.os, "execve", fake_execve)
    url = "postgresql+psycopg://user:hunter2@db.example:5432/arena"
    result = CliRunner().invoke(app, ["leaderboard", "--db", url])
    out = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "hunter2" not in out
    assert "user:***@db.example" in out, out
    assert started["env"]["ARENA_DB_URL"] == url  # the app itself gets the real URL


PARENT = r"""
import sys, threading, time
from pathlib import Path
from arena.sweep import LocalExecutor, expand, group_jobs, parse_spec
ck = Path(sys.argv[1])
spec = parse_spec({"name": "orphans", "archs": ["rnn"], "sizes": ["tiny"], "seeds": [0, 1],
                   "tasks": [{"name": "counter-chain", "split": "iid",
                              "config": {"depth": 1, "n_train": 64, "n_val": 8, "n_test": 16}}],
                   "train": {"max_steps": 10000000, "checkpoint_every": 5, "batch_size": 8}})
ex = LocalExecutor(workers=2)
units = group_jobs(expand(spec), 1)
threading.Thread(target=lambda: list(ex.map_unordered(units, str(ck))), daemon=True).start()
while len(list(ck.rglob("last.pt"))) < 2:   # both workers are training
    time.sleep(0.2)
print(" ".join(str(p.pid) for p in ex.pool._processes.values()), flush=True)
time.sleep(600)
"""


def test_sweep_workers_die_with_their_parent(tmp_path):
    """SIGKILL the process running a local sweep: its spawn workers (mid-training) are gone within seconds."""
    from arena.store.repo import _alive

    env = dict(os.environ, OMP_NUM_THREADS="1")
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path / "ck")], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline()
        assert line.strip(), parent.stderr.read()
        workers = [int(p) for p in line.split()]
        assert len(workers) == 2 and all(_alive(p) for p in workers)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 60
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in workers if _alive(p)]
    for p in left:  # never leave them behind, even when the test fails
        os.kill(p, 9)
    assert left == [], f"workers {left} outlived their SIGKILLed parent"
