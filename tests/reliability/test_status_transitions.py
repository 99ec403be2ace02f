"""Run status only moves forward, checked inside the writing transaction: a finished row never changes status, a
live row is never adopted, a resumed row may run again."""

from __future__ import annotations

import pytest

from arena.errors import ArenaError
from arena.store import get_run, open_store, repo

FIELDS = dict(arch="rnn", arch_version=1, arch_kind="mixer", arch_family="recurrent", task="scan-depth",
              task_version=1, split="depth", size="tiny", seed=0, config={}, config_hash="c" * 64)
PROV = {"arena_version": "0", "python": "3", "packages": {}}


def _status(engine, rid):
    return get_run(engine, rid).status


def test_completed_row_is_final(db_url):
    engine = open_store(db_url)
    rid = repo.create_run(engine, **FIELDS)
    repo.complete_run(engine, rid, {"score": 0.5}, [{"split": "test", "name": "acc", "value": 0.5}], PROV)
    # a late Ctrl-C / failure / stale check of a duplicate must not flip it
    assert repo.end_run(engine, rid, "interrupted", "late signal") is False
    assert repo.end_run(engine, rid, "failed", "late error") is False
    assert repo.mark_stale_runs(engine) == 0
    with pytest.raises(ArenaError, match="not taking it over|only interrupted or failed"):
        repo.reopen_run(engine, rid)
    with pytest.raises(ArenaError, match="status is final"):
        repo.complete_run(engine, rid, {"score": 0.9}, [], PROV)
    run = get_run(engine, rid)
    assert run.status == "completed" and run.score == 0.5 and run.error is None


def test_live_row_is_never_adopted(db_url):
    engine = open_store(db_url)
    rid = repo.create_run(engine, **FIELDS)  # running, owned by this (alive) process
    with pytest.raises(repo.LiveRunError, match=r"still running \(pid \d+"):
        repo.reopen_run(engine, rid)
    assert repo.find_resumable(engine, FIELDS["config_hash"]) is None
    assert repo.find_live(engine, FIELDS["config_hash"]).id == rid


def test_interrupted_resumes_then_completes(db_url):
    engine = open_store(db_url)
    rid = repo.create_run(engine, **FIELDS)
    assert repo.end_run(engine, rid, "interrupted", "Ctrl-C") is True
    assert repo.end_run(engine, rid, "failed", "second signal") is False  # interrupted is not running
    assert _status(engine, rid) == "interrupted"
    assert repo.find_resumable(engine, FIELDS["config_hash"]).id == rid
    repo.reopen_run(engine, rid)
    assert _status(engine, rid) == "running"
    repo.heartbeat(engine, rid, step=7)
    repo.complete_run(engine, rid, {"score": 1.0}, [], PROV)
    run = get_run(engine, rid)
    assert (run.status, run.step, run.error) == ("completed", 7, None)


def test_heartbeat_leaves_finished_rows_alone(db_url):
    engine = open_store(db_url)
    rid = repo.create_run(engine, **FIELDS)
    repo.end_run(engine, rid, "failed", "boom")
    repo.heartbeat(engine, rid, step=99)
    assert get_run(engine, rid).step == 0


def test_owner_reclaims_a_row_wrongly_marked_stale(db_url):
    """A heartbeat that could not be written for a while let another writer mark the row interrupted; its owner
    (same pid and host) is still alive and finishing, so its completion stands."""
    from sqlalchemy import update

    from arena.store.models import Run

    engine = open_store(db_url)
    rid = repo.create_run(engine, **FIELDS)
    with engine.begin() as con:
        con.execute(update(Run).where(Run.id == rid).values(status="interrupted"))
    repo.complete_run(engine, rid, {"score": 0.25}, [], PROV)
    assert _status(engine, rid) == "completed"
