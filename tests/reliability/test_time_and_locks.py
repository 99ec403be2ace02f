"""Time and locks: a heartbeat the database refuses (a write lock held past the busy timeout) is retried, not fatal;
``arena succinctness --time-limit`` ends runs that are still going, not only between runs."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import warnings

from arena.store import engine as store_engine
from arena.store import get_run, open_store, repo
from tests._signals import default_sigint


def test_heartbeat_blocked_past_the_busy_timeout_is_retried(db_url, tmp_path, monkeypatch):
    """Another process holds the write lock (BEGIN IMMEDIATE) for longer than the busy timeout exactly while the
    first step heartbeat is written: the run goes on and completes; the next heartbeats are written."""
    from arena.runner import run as do_run
    from arena.spec import RunSpec

    monkeypatch.setattr(store_engine, "BUSY_TIMEOUT_MS", 100)
    db_path = tmp_path / "arena.db"
    real = repo.heartbeat
    calls = {"blocked": 0, "written": 0}

    def hold_lock(ready: threading.Event, release: threading.Event) -> None:
        con = sqlite3.connect(db_path, timeout=30)
        con.execute("BEGIN IMMEDIATE")
        ready.set()
        release.wait(60)
        con.rollback()
        con.close()

    def heartbeat(engine, run_id, **fields):
        if "step" in fields and calls["blocked"] == 0:
            calls["blocked"] += 1
            ready, release = threading.Event(), threading.Event()
            holder = threading.Thread(target=hold_lock, args=(ready, release))
            holder.start()
            ready.wait(30)
            try:
                return real(engine, run_id, **fields)  # waits 100 ms for the lock, then gives up
            finally:
                release.set()
                holder.join()
        real(engine, run_id, **fields)
        calls["written"] += "step" in fields

    monkeypatch.setattr(repo, "heartbeat", heartbeat)
    spec = RunSpec(arch="rnn", task="scan-depth", size="tiny")
    overrides = ["task.n_train=40", "task.n_val=5", "task.n_test_per_depth=5", "latency.enabled=false",
                 "train.max_steps=12", "train.checkpoint_every=3"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = do_run(spec, overrides=overrides)
    assert calls["blocked"] == 1 and calls["written"] >= 2
    assert any("heartbeat at step 3 not written" in str(w.message) and "database is locked" in str(w.message)
               for w in caught), [str(w.message) for w in caught]
    run = get_run(open_store(db_url), result.run_id)
    assert run.status == "completed" and run.step == 12


def test_succinctness_time_limit_ends_a_run_in_progress(tmp_path):
    """One run of 10^7 steps (hours) under a 0.1-minute limit: the command ends soon after the limit, with
    nothing reached and nothing recorded as completed."""
    env = dict(os.environ, ARENA_CHECKPOINT_DIR=str(tmp_path / "ck"), OMP_NUM_THREADS="1")
    env.pop("ARENA_DB_URL", None)
    args = ["succinctness", "--task", "counter-chain", "--archs", "rnn", "--depths", "1", "--ladder", "8,16",
            "--seeds", "1", "--pilot", "0", "--max-steps", "10000000", "--time-limit", "0.1", "--no-state-bits",
            "--set", "task.n_train=64", "--set", "task.n_val=8", "--set", "task.n_test=16",
            "--set", "train.checkpoint_every=50", "--out", str(tmp_path / "out"),
            "--db", f"sqlite:///{tmp_path / 'arena.db'}", "--json"]
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "arena.cli", *args], env=env, capture_output=True, text=True,
                       timeout=600, cwd=tmp_path)
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Traceback" not in p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert not any(r["reached"] for r in out["rows"])
    assert elapsed < 300, elapsed  # the run alone would take hours; the limit is 6 s (+ start-up, + clean-up)
    con = sqlite3.connect(tmp_path / "arena.db")
    assert con.execute("SELECT count(*) FROM runs WHERE status='completed'").fetchone()[0] == 0
    con.close()


SPEC = """name: ctrlc
archs: [rnn]
sizes: [tiny]
seeds: [0]
tasks:
  - {name: counter-chain, split: iid, config: {depth: 1, n_train: 64, n_val: 8, n_test: 16}}
train: {max_steps: 10000000, checkpoint_every: 50, batch_size: 8, early_stop: null}  # ends only by Ctrl-C
"""


def test_ctrl_c_of_a_sweep_says_how_to_resume(tmp_path):
    """Ctrl-C during a sweep: after the progress bar, one line with the command that continues it (exit 130), and
    no worker left running. The worker was training: it ends after its step with the checkpoint at that step
    (arena.stopping), written after the Ctrl-C (a killed worker would have left its last periodic one)."""
    import signal

    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    env = dict(os.environ, ARENA_CHECKPOINT_DIR=str(tmp_path / "ck"), OMP_NUM_THREADS="1")
    env.pop("ARENA_DB_URL", None)
    p = subprocess.Popen([sys.executable, "-m", "arena.cli", "sweep", str(spec), "--db",
                          f"sqlite:///{tmp_path / 'arena.db'}"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=tmp_path, start_new_session=True,
                         preexec_fn=default_sigint)
    t0 = time.monotonic()
    while not list((tmp_path / "ck").rglob("last.pt")) and p.poll() is None and time.monotonic() - t0 < 300:
        time.sleep(0.2)
    assert p.poll() is None, p.communicate()[1]
    ckpt = next((tmp_path / "ck").rglob("last.pt"))
    first = ckpt.stat().st_mtime_ns
    while ckpt.stat().st_mtime_ns == first and p.poll() is None and time.monotonic() - t0 < 300:
        time.sleep(0.01)  # the second periodic checkpoint (step 100) was just written
    asked = time.time_ns()
    os.killpg(p.pid, signal.SIGINT)  # the terminal sends Ctrl-C to the whole foreground group
    _, err = p.communicate(timeout=300)
    assert p.returncode == 130, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("interrupted — resume with: arena sweep "), err
    assert "Traceback" not in err
    import torch

    assert ckpt.stat().st_mtime_ns >= asked - 20_000_000  # written after Ctrl-C (20 ms of file-clock coarseness)
    assert torch.load(ckpt, weights_only=False)["state"]["step"] > 100
    assert repo.list_runs(open_store(f"sqlite:///{tmp_path / 'arena.db'}")) == []


def test_completion_blocked_past_the_busy_timeout_is_retried(db_url, tmp_path, monkeypatch):
    """The completing transaction finds the write lock held past the busy timeout: it is rolled back and tried
    again once the lock is free, so the finished result is recorded (not lost as 'database is locked')."""
    from sqlalchemy import event

    monkeypatch.setattr(store_engine, "BUSY_TIMEOUT_MS", 100)
    engine = open_store(db_url)
    rid = repo.create_run(engine, arch="rnn", arch_version=1, arch_kind="mixer", arch_family="recurrent",
                          task="scan-depth", task_version=1, split="depth", size="tiny", seed=0, config={},
                          config_hash="d" * 64)
    ready, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        con = sqlite3.connect(tmp_path / "arena.db", timeout=30)
        con.execute("BEGIN IMMEDIATE")
        ready.set()
        release.wait(60)
        con.rollback()
        con.close()

    holder = threading.Thread(target=hold_lock)
    errors = []

    def on_error(ctx) -> None:  # the first attempt gave up on the lock: let the other writer finish now
        errors.append(str(ctx.original_exception))
        release.set()
        holder.join()

    event.listen(engine, "handle_error", on_error)
    holder.start()
    ready.wait(30)
    repo.complete_run(engine, rid, {"score": 0.75}, [{"split": "test", "name": "acc", "value": 0.75}],
                      {"arena_version": "0", "python": "3", "packages": {}})
    assert errors and "database is locked" in errors[0]
    run = get_run(engine, rid)
    assert run.status == "completed" and run.score == 0.75
