"""The leaderboard reads a database a sweep is writing: WAL + read-only connections, no "database is locked"."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import OperationalError

from arena.errors import StoreError
from arena.export import leaderboard_frame
from arena.leaderboard import queries
from arena.leaderboard.synthetic import seed_database
from arena.store.engine import open_store
from arena.store.models import Run

WRITER = """
import sys, time
from arena.leaderboard.synthetic import seed_database
from arena.store.engine import open_store
url, seconds = sys.argv[1], float(sys.argv[2])
engine = open_store(url)
print("ready", flush=True)
n, t0 = 0, time.monotonic()
while time.monotonic() - t0 < seconds:
    seed_database(url, 7, engine=engine, seed=n)  # one short transaction per batch, like a sweep's runs
    n += 7
print(n, flush=True)
"""


def test_reads_while_a_sweep_writes(tmp_path):
    url = f"sqlite:///{tmp_path / 'sweep.db'}"
    seed_database(url, 30).dispose()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, url, "2.5"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert writer.stdout.readline().strip() == "ready"
        reader = open_store(url, readonly=True)
        seen, errors = [], []
        while writer.poll() is None:
            try:
                frame = leaderboard_frame(reader)
                depth = queries.depth_frame(reader, "scan-depth")
                seen.append(int(frame["n"].sum()))
                assert not depth.empty
            except OperationalError as exc:  # "database is locked" would land here
                errors.append(str(exc))
        out, err = writer.communicate(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == 0, err
    assert not errors, errors[:3]
    written = int(out.split()[-1])
    print(f"{written} runs written during {len(seen)} reads")
    assert written > 0 and len(seen) >= 2
    assert seen == sorted(seen)  # every read is a consistent snapshot; counts only grow
    assert int(leaderboard_frame(reader)["n"].sum()) == 30 + written
    # after the writer closed (its -wal/-shm files are gone), a fresh read-only engine still reads
    assert int(leaderboard_frame(open_store(url, readonly=True))["n"].sum()) == 30 + written


def test_read_only_engine_cannot_write(tmp_path):
    url = f"sqlite:///{tmp_path / 'ro.db'}"
    seed_database(url, 5).dispose()
    path = tmp_path / "ro.db"
    before = path.read_bytes()
    ro = open_store(url, readonly=True)
    with ro.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"  # set by the writer, kept
    row = {"arch": "x", "arch_version": 1, "arch_kind": "neural", "task": "t", "task_version": 1, "split": "s",
           "seed": 0, "config": {}, "config_hash": "h"}
    with pytest.raises(OperationalError, match="readonly"):
        with ro.begin() as conn:
            conn.execute(insert(Run.__table__), [row])
    with pytest.raises(OperationalError, match="readonly"):
        with ro.begin() as conn:
            conn.execute(text("DELETE FROM runs"))
    with ro.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Run)).scalar() == 5
    ro.dispose()
    assert path.read_bytes() == before
    missing = tmp_path / "missing.db"
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite:///{missing}", readonly=True)
    assert not missing.exists()  # a reader never creates a database
