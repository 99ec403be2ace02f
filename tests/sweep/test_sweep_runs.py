"""Sweeps end to end: local and Dask executors, skip-completed, failures recorded, SIGKILL half-way + resume without
repeats, and scores identical to sequential ``arena.runner.run`` calls with the same seeds."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from arena.runner import run
from arena.spec import RunSpec
from arena.store import open_store
from arena.store.models import Run
from arena.sweep import Job, expand, parse_spec, run_jobs
from tests.sweep.conftest import tiny_spec


def _rows(url: str) -> list[Run]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session, selectinload

    with Session(open_store(url)) as s:
        return list(s.scalars(select(Run).options(selectinload(Run.metrics))))


def _results(url: str) -> dict[str, dict]:
    """config hash -> score and every metric value (split, name, slice) of its completed row."""
    out = {}
    for r in _rows(url):
        if r.status == "completed":
            out[r.config_hash] = {"score": r.score, "params": r.params_total, **{
                (m.split, m.name, m.slice_key, m.slice_value): m.value for m in r.metrics}}
    return out


def _assert_one_completed_row_per_hash(url: str, jobs: list[Job]) -> None:
    rows = _rows(url)
    counts = Counter(r.config_hash for r in rows)
    assert set(counts) == {j.config_hash for j in jobs}
    assert all(n == 1 for n in counts.values()), counts.most_common(3)
    assert all(r.status == "completed" for r in rows)


def _sequential_reference(jobs: list[Job], url: str) -> dict[str, dict]:
    for j in jobs:
        res = run(RunSpec.model_validate(j.spec), db=url)
        assert res.record["config_hash"] == j.config_hash  # the sweep's hash is the hash of `arena run`
    return _results(url)


def test_local_sweep_records_failure_then_retries_in_place_and_skips_completed(sweep_env):
    from arena.sweep import LocalExecutor

    job = expand(parse_spec(tiny_spec([0], archs=["rnn"])))[0]
    broken = Job(job.spec, ("train.no_such_field=1",), job.config_hash, "broken")  # fails inside the worker
    ex = LocalExecutor(1)  # one pool for the three calls (spawning workers is the slow part)
    try:
        s = run_jobs([broken], db=sweep_env["url"], executor_obj=ex)
        assert (s.done, s.failed) == (0, 1)
        rows = _rows(sweep_env["url"])
        assert [r.status for r in rows] == ["failed"] and "no_such_field" in rows[0].error
        s = run_jobs([job], db=sweep_env["url"], executor_obj=ex)
        assert (s.done, s.failed, s.skipped) == (1, 0, 0)
        rows = _rows(sweep_env["url"])
        assert [(r.id, r.status) for r in rows] == [(rows[0].id, "completed")]  # the same row, now completed
        assert rows[0].score is not None and rows[0].params_total > 0
        again = run_jobs([job], db=sweep_env["url"], executor_obj=ex)
        assert (again.done, again.skipped) == (0, 1)  # a finished run is never repeated
    finally:
        ex.close()
    _assert_one_completed_row_per_hash(sweep_env["url"], [job])


@pytest.mark.slow
def test_24_runs_local_and_dask_agree_with_sequential(sweep_env, tmp_path):
    jobs = expand(parse_spec(tiny_spec([0, 1, 2], lrs=[3e-3, 1e-3])))
    assert len(jobs) == 24
    local = f"sqlite:///{tmp_path / 'local.db'}"
    s = run_jobs(jobs, db=local, executor="local", workers=2)
    assert (s.done, s.failed) == (24, 0)
    dask = f"sqlite:///{tmp_path / 'dask.db'}"
    s = run_jobs(jobs, db=dask, executor="dask", workers=2)
    assert (s.done, s.failed) == (24, 0), s.errors
    for url in (local, dask):
        _assert_one_completed_row_per_hash(url, jobs)
    ref = _sequential_reference(jobs, f"sqlite:///{tmp_path / 'ref.db'}")
    assert _results(local) == ref
    assert _results(dask) == ref


def _completed_rows(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as c:
            return c.execute("select count(*) from runs where status='completed'").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "dask"])
def test_sigkill_half_way_then_resume_repeats_nothing(sweep_env, tmp_path, executor):
    spec = tiny_spec([0, 1, 2], lrs=[3e-3, 1e-3])
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    db = tmp_path / "kill.db"
    url = f"sqlite:///{db}"
    cmd = [sys.executable, "-m", "arena.cli", "sweep", str(path), "--executor", executor, "--workers", "2",
           "--db", url, "--json"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while _completed_rows(db) < 8 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, "the sweep finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        try:  # the sweep's own workers (same session) go too, as on a lost machine
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    before = _completed_rows(db)
    assert 8 <= before < 24
    jobs = expand(parse_spec(spec))
    s = run_jobs(jobs, db=url, executor=executor, workers=2)
    assert s.skipped == before and s.done == 24 - before and s.failed == 0
    _assert_one_completed_row_per_hash(url, jobs)
    ref = _sequential_reference(jobs, f"sqlite:///{tmp_path / 'ref.db'}")
    assert _results(url) == ref


@pytest.mark.postgres
def test_small_real_sweep_into_postgres(pg_url, sweep_env, tmp_path):
    jobs = expand(parse_spec(tiny_spec([0], archs=["rnn"])))
    s = run_jobs(jobs, db=pg_url, workers=2)
    assert (s.done, s.failed) == (2, 0), s.errors
    assert run_jobs(jobs, db=pg_url).skipped == 2
    _assert_one_completed_row_per_hash(pg_url, jobs)
    assert _results(pg_url) == _sequential_reference(jobs, f"sqlite:///{tmp_path / 'ref.db'}")


def test_tiny_runs_train_as_one_stack_and_record_as_if_alone(sweep_env, tmp_path):
    """Seeds x lrs of one tiny configuration share a worker and one stacked training (arena.batched); each is still
    its own row with its own config hash, and every recorded metric equals a sweep that runs them one at a time."""
    from arena.sweep import group_jobs

    spec = tiny_spec([0, 1], lrs=[3e-3, 1e-3], archs=["rnn"])
    units = group_jobs(expand(parse_spec(spec)))
    assert sorted(len(u) for u in units) == [4, 4]  # one stack per task: 2 seeds x 2 lrs
    assert all(len({j.spec["task"] for j in u}) == 1 for u in units)
    jobs = expand(parse_spec(spec | {"tasks": spec["tasks"][:1]}))
    stacked, alone = f"sqlite:///{tmp_path / 'stacked.db'}", f"sqlite:///{tmp_path / 'alone.db'}"
    s = run_jobs(jobs, db=stacked)
    assert (s.done, s.failed) == (4, 0), s.errors
    assert (run_jobs(jobs, db=alone, stack=1).done) == 4
    _assert_one_completed_row_per_hash(stacked, jobs)
    assert _results(stacked) == _results(alone)
    assert {r.extra.get("stacked_training", {}).get("k") for r in _rows(stacked)} == {4}
    assert all("stacked_training" not in (r.extra or {}) for r in _rows(alone))
