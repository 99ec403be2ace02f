"""The store under concurrent writers: 4 processes x 25 completed runs -> 100 rows, none lost (SQLite and
PostgreSQL). The payload is a real ``execute()`` result, so each insert is as heavy as a sweep's."""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from arena.runner import _Silent, execute, identity, prepare
from arena.spec import RunSpec
from arena.store import open_store
from arena.store.models import Metric, Provenance, Run
from tests.sweep._writer import write_runs

N_WRITERS, N_RUNS = 4, 25


@pytest.fixture(scope="module")
def real_payload(tmp_path_factory) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = RunSpec(arch="rnn", task="counter-chain", size="tiny", task_config={"depth": 1, "n_train": 16,
                   "n_val": 4, "n_test": 8}, train={"max_steps": 2, "batch_size": 4}, latency={"enabled": False})
    res = prepare(spec)
    payload = execute(res, None, False, _Silent(), "test").payload()
    return identity(res), payload


def _hammer(url: str, ident: dict[str, Any], payload: dict[str, Any]) -> None:
    open_store(url)  # migrate once, before the writers race
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=write_runs, args=(url, ident, payload, w, N_RUNS, q)) for w in range(N_WRITERS)]
    for p in procs:
        p.start()
    outcomes = dict(q.get(timeout=600) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert outcomes == {w: "ok" for w in range(N_WRITERS)}
    engine = open_store(url)
    with Session(engine) as s:
        hashes = s.scalars(select(Run.config_hash)).all()
        assert len(hashes) == N_WRITERS * N_RUNS == len(set(hashes))
        assert set(s.scalars(select(Run.status)).all()) == {"completed"}
        assert s.scalar(select(func.count()).select_from(Provenance)) == N_WRITERS * N_RUNS
        per_run = len(payload["metrics"])
        assert s.scalar(select(func.count()).select_from(Metric)) == N_WRITERS * N_RUNS * per_run


@pytest.mark.slow
def test_four_writers_into_sqlite_lose_nothing(tmp_path, real_payload):
    _hammer(f"sqlite:///{tmp_path / 'w.db'}", *real_payload)


@pytest.mark.postgres
def test_four_writers_into_postgres_lose_nothing(pg_url, real_payload):
    _hammer(pg_url, *real_payload)
