"""A full disk or a read-only database gives a clear error (exit 1, no traceback) and a database that is intact.

Uses a real tiny tmpfs (root only): the filesystem really fills up / really is read-only, even for root."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid

import pytest

from arena.store import open_store

ARGS = ["run", "--arch", "rnn", "--task", "scan-depth", "--size", "tiny", "--max-steps", "3",
        "--set", "task.n_train=50", "--set", "task.n_val=5", "--set", "task.n_test_per_depth=5",
        "--set", "latency.enabled=false"]


@pytest.fixture
def tiny_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / f"fs-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _arena(args, tmp_path):
    env = dict(os.environ, ARENA_CHECKPOINT_DIR=str(tmp_path / "ckpt"))
    return subprocess.run([sys.executable, "-m", "arena.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_full_disk_is_a_clear_error(tiny_fs, tmp_path):
    db = tiny_fs / "arena.db"
    open_store(f"sqlite:///{db}")
    with open(tiny_fs / "filler", "wb", buffering=0) as f:  # fill the filesystem to the last byte
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass
    proc = _arena([*ARGS, "--db", f"sqlite:///{db}"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "disk is full" in proc.stderr and "Traceback" not in proc.stderr
    os.remove(tiny_fs / "filler")
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("select count(*) from runs where status='completed'").fetchone()[0] == 0


def test_read_only_database_is_a_clear_error(tiny_fs, tmp_path):
    db = tiny_fs / "arena.db"
    open_store(f"sqlite:///{db}").dispose()
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], check=True)
    proc = _arena([*ARGS, "--db", f"sqlite:///{db}"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert ("read-only" in proc.stderr or "readonly" in proc.stderr) and "Traceback" not in proc.stderr
