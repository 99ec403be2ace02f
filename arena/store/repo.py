"""Run lifecycle in the database: create (running) -> heartbeat -> complete | fail | interrupt.

Every write is its own short transaction, so a run killed at any point leaves either the previous state or the
next one, never half of a completed row. Runs whose heartbeat went stale (or whose process is gone on this host)
are marked ``interrupted`` by :func:`mark_stale_runs`, which every writer calls when it opens the store.

Status only moves forward (:data:`FORWARD`): running -> completed | failed | interrupted, and interrupted or failed
-> running when a run is resumed. Each change is a conditional ``UPDATE ... WHERE status IN (allowed)`` inside
the writing transaction, so a finished row never changes status again (a late Ctrl-C of a duplicate cannot flip
it) and a live ``running`` row is never adopted by a second process.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, selectinload

from arena.errors import ArenaError, StoreError
from arena.store.engine import _reason
from arena.store.models import Metric, Provenance, Run, utcnow

HEARTBEAT_STALE = timedelta(minutes=5)
# the statuses a row may move *to* from each listed status; "completed" is final
FORWARD: dict[str, tuple[str, ...]] = {"completed": ("running",), "failed": ("running",),
                                       "interrupted": ("running",), "running": ("interrupted", "failed")}


class LiveRunError(ArenaError):
    """Another live process owns this run (or this configuration)."""

    exit_code = 1


def _move(s: Session, run_id: int, to: str, *, also_from: tuple[str, ...] = (), **values: Any) -> bool:
    """Conditionally set ``status=to`` (only from an allowed status); True if the row moved."""
    allowed = FORWARD[to] + also_from
    res = s.execute(update(Run).where(Run.id == run_id, Run.status.in_(allowed)).values(status=to, **values))
    return res.rowcount == 1


WRITE_ATTEMPTS = 3  # a write that found the database locked (past the busy timeout) is tried this many times


def _write(engine: Engine, fn, what: str, attempts: int = WRITE_ATTEMPTS):
    """``fn(session)`` in one transaction. A lock conflict (another writer held SQLite's write lock past the busy
    timeout, a PostgreSQL deadlock or serialization failure) rolls back and is tried again: the transaction is all
    or nothing, so a retry is safe, and a finished run's result is not lost to a slow neighbour."""
    for attempt in range(1, attempts + 1):
        try:
            with Session(engine, expire_on_commit=False) as s, s.begin():
                return fn(s)
        except DBAPIError as exc:
            if attempt < attempts and _lock_conflict(exc):
                continue
            raise StoreError(f"could not {what}: {_reason(exc)}") from None


def _lock_conflict(exc: DBAPIError) -> bool:
    low = str(getattr(exc, "orig", exc)).lower()
    return any(k in low for k in ("database is locked", "database table is locked", "deadlock detected",
                                  "could not serialize", "lock timeout"))


def create_run(engine: Engine, **fields: Any) -> int:
    def go(s: Session) -> int:
        run = Run(status="running", host=socket.gethostname(), pid=os.getpid(), heartbeat_at=utcnow(), **fields)
        s.add(run)
        s.flush()
        return run.id

    return _write(engine, go, "record the new run")


def reopen_run(engine: Engine, run_id: int) -> None:
    """Mark an interrupted (or failed) run as running again, owned by this process; never adopt a live row."""

    def go(s: Session) -> None:
        if _move(s, run_id, "running", error=None, host=socket.gethostname(), pid=os.getpid(),
                 heartbeat_at=utcnow(), finished_at=None):
            return
        run = s.get(Run, run_id)
        if run is None:
            raise ArenaError(f"run {run_id} vanished from the database")
        if run.status == "running":
            raise LiveRunError(f"run {run_id} is still running (pid {run.pid} on {run.host}); not taking it over — "
                               "wait for it to finish, or stop it first")
        raise ArenaError(f"run {run_id} is {run.status}; only interrupted or failed runs can be resumed")

    _write(engine, go, "reopen the run")


def heartbeat(engine: Engine, run_id: int, **fields: Any) -> None:
    """Record progress of a running row (a row that is no longer running is left alone). Tried once: the runner
    skips a beat the database refuses and writes the next one."""
    _write(engine, lambda s: s.execute(update(Run).where(Run.id == run_id, Run.status == "running").values(
        heartbeat_at=utcnow(), **fields)), "update the run's heartbeat", attempts=1)


def _parts(record: Any, metrics: list[dict[str, Any]] | None, provenance: dict[str, Any] | None
           ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """(columns, metric rows, provenance) of a :class:`arena.record.RunRecord`, or of the three given apart."""
    if hasattr(record, "columns"):
        return record.columns(), list(record.metrics), dict(record.provenance)
    if "fields" in record:  # RunRecord.payload(), e.g. from a worker of another arena version
        return dict(record["fields"]), list(record["metrics"]), dict(record["provenance"])
    return dict(record), list(metrics or []), dict(provenance or {})


def complete_run(engine: Engine, run_id: int, record: Any, metrics: list[dict[str, Any]] | None = None,
                 provenance: dict[str, Any] | None = None, *, resume: bool = False) -> None:
    """One transaction: the run's results, its metrics, its provenance, and status=completed.

    ``record`` is a :class:`arena.record.RunRecord` (or a dict of column values with ``metrics`` and
    ``provenance`` given apart).

    Only a ``running`` row completes, or (``resume=True``, the sweep writer finishing a retried experiment) an
    interrupted/failed one. A row this process owns that a stale-heartbeat check marked interrupted meanwhile is
    reclaimed: its owner never stopped."""

    fields, metrics, provenance = _parts(record, metrics, provenance)

    def go(s: Session) -> None:
        now = utcnow()
        done = _move(s, run_id, "completed", also_from=("interrupted", "failed") if resume else (), error=None,
                     finished_at=now, heartbeat_at=now)
        if not done:
            mine = (Run.id == run_id, Run.status == "interrupted", Run.pid == os.getpid(),
                    Run.host == socket.gethostname())
            done = s.execute(update(Run).where(*mine).values(status="completed", error=None, finished_at=now,
                                                              heartbeat_at=now)).rowcount == 1
        run = s.get(Run, run_id)
        if run is None:
            raise ArenaError(f"run {run_id} vanished from the database")
        if not done:
            raise ArenaError(f"run {run_id} is {run.status} (pid {run.pid} on {run.host}); its status is final, "
                             "so this result is not recorded over it")
        _fill(s, run, fields, metrics, provenance)

    _write(engine, go, "record the completed run")


def _fill(s: Session, run: Run, fields: dict[str, Any], metrics: list[dict[str, Any]],
          provenance: dict[str, Any]) -> None:
    """Set a run's result columns and replace its metrics and provenance (inside the caller's transaction)."""
    for k, v in fields.items():
        setattr(run, k, v)
    run.metrics.clear()
    run.metrics.extend(Metric(**m) for m in metrics)
    if run.provenance is not None:
        s.delete(run.provenance)
        s.flush()
    run.provenance = Provenance(**provenance)


def add_measurement(engine: Engine, run_id: int, name: str, value: dict[str, Any]) -> None:
    """Attach a measurement taken after a run completed (e.g. its state in bits) under ``extra[name]``."""

    def go(s: Session) -> None:
        run = s.get(Run, run_id)
        if run is None:
            raise ArenaError(f"run {run_id} is not in the database")
        run.extra = {**(run.extra or {}), name: value}

    _write(engine, go, f"record {name} of run {run_id}")


def end_run(engine: Engine, run_id: int, status: str, error: str) -> bool:
    """Mark a running run failed or interrupted (its checkpoint stays for --resume). A row that already finished
    keeps its status (returns False): a finished result is never overwritten."""
    if status not in ("failed", "interrupted"):
        raise ValueError(f"end_run: status must be failed or interrupted, not {status!r}")
    return _write(engine, lambda s: _move(s, run_id, status, error=error[-4000:], finished_at=utcnow()),
                  f"mark the run {status}")


def mark_stale_runs(engine: Engine) -> int:
    """Flag ``running`` rows whose owner is gone: dead pid on this host, or a heartbeat older than the limit."""
    host, now = socket.gethostname(), utcnow()

    def go(s: Session) -> int:
        n = 0
        for run in list(s.scalars(select(Run).where(Run.status == "running"))):
            beat = run.heartbeat_at
            if beat is not None and beat.tzinfo is None:
                beat = beat.replace(tzinfo=now.tzinfo)
            dead = run.host == host and run.pid is not None and run.pid != os.getpid() and not _alive(run.pid)
            stale = beat is None or now - beat > HEARTBEAT_STALE
            if (dead or stale) and _move(s, run.id, "interrupted", error="process stopped without finishing "
                                         "(detected by heartbeat); resume with --resume"):
                n += 1
        return n

    return _write(engine, go, "check for interrupted runs")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed child not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def _older_schema(engine: Engine, q):
    """A read-only reader never migrates: on a database written before some ``runs`` columns existed, load only the
    columns it has (the others read as None) instead of failing with 'no such column'."""
    from sqlalchemy import inspect
    from sqlalchemy.orm import load_only

    key = engine.url.render_as_string(hide_password=False)
    if key not in _MISSING:
        try:
            have = {c["name"] for c in inspect(engine).get_columns(Run.__tablename__)}
        except DBAPIError:
            have = set()
        _MISSING[key] = [c.key for c in Run.__table__.c if have and c.name not in have]
    missing = _MISSING[key]
    if not missing:
        return q, []
    return q.options(load_only(*[getattr(Run, c.key) for c in Run.__table__.c if c.key not in missing])), missing


_MISSING: dict[str, list[str]] = {}


def _blank(runs: list[Run], missing: list[str]) -> list[Run]:
    from sqlalchemy.orm.attributes import set_committed_value

    for run in runs:
        for name in missing:
            set_committed_value(run, name, None)
    return runs


def get_run(engine: Engine, run_id: int) -> Run | None:
    if not 0 < run_id < 2**63:
        return None
    q, missing = _older_schema(engine, select(Run).where(Run.id == run_id).options(
        selectinload(Run.metrics), selectinload(Run.provenance)))
    with Session(engine, expire_on_commit=False) as s:
        runs = _blank(list(s.scalars(q)), missing)
    return runs[0] if runs else None


def find_resumable(engine: Engine, config_hash: str) -> Run | None:
    """The newest interrupted or failed run with this config hash (a live ``running`` one is never offered)."""
    with Session(engine, expire_on_commit=False) as s:
        return s.scalars(select(Run).where(Run.config_hash == config_hash,
                                           Run.status.in_(("interrupted", "failed")))
                         .order_by(Run.id.desc())).first()


def find_live(engine: Engine, config_hash: str) -> Run | None:
    """The newest ``running`` row with this config hash (call :func:`mark_stale_runs` first to drop dead ones)."""
    with Session(engine, expire_on_commit=False) as s:
        return s.scalars(select(Run).where(Run.config_hash == config_hash, Run.status == "running")
                         .order_by(Run.id.desc())).first()


def find_completed(engine: Engine, config_hash: str) -> Run | None:
    with Session(engine, expire_on_commit=False) as s:
        return s.scalars(select(Run).where(Run.config_hash == config_hash, Run.status == "completed")
                         .order_by(Run.id.desc())
                         .options(selectinload(Run.metrics), selectinload(Run.provenance))).first()


def list_runs(engine: Engine, *, task: str | None = None, arch: str | None = None, status: str | None = None,
              limit: int | None = None) -> list[Run]:
    q = select(Run).order_by(Run.id.desc())
    if task:
        q = q.where(Run.task == task)
    if arch:
        q = q.where(Run.arch == arch)
    if status:
        q = q.where(Run.status == status)
    if limit:
        q = q.limit(limit)
    q, missing = _older_schema(engine, q)
    with Session(engine, expire_on_commit=False) as s:
        return _blank(list(s.scalars(q)), missing)


def import_runs(engine: Engine, runs: list[tuple[dict[str, Any], Any]]) -> list[int]:
    """Copy in finished runs computed elsewhere (sweep workers, a submission's suite), each an identity (the
    columns of :func:`create_run`) and a :class:`arena.record.RunRecord`, in ONE transaction: all or none.

    A configuration with an interrupted or failed row (an earlier attempt) completes that row instead of adding
    a second one, so each experiment keeps one row."""

    def go(s: Session) -> list[int]:
        ids = []
        for ident, record in runs:
            fields, metrics, provenance = _parts(record, None, None)
            now = utcnow()
            run = s.scalars(select(Run).where(Run.config_hash == ident["config_hash"],
                                              Run.status.in_(("interrupted", "failed")))
                            .order_by(Run.id.desc()).limit(1)).first()
            if run is None or not _move(s, run.id, "completed", also_from=("interrupted", "failed"), error=None,
                                        finished_at=now, heartbeat_at=now):
                run = Run(status="completed", host=socket.gethostname(), pid=os.getpid(), finished_at=now,
                          heartbeat_at=now, **ident)
                s.add(run)
            else:
                s.refresh(run)
            _fill(s, run, fields, metrics, provenance)
            s.flush()
            ids.append(run.id)
        return ids

    return _write(engine, go, "record the completed runs")


def replace_metrics(engine: Engine, run_id: int, splits: list[str], metrics: list[dict[str, Any]],
                    extra: dict[str, Any] | None = None, *, merge: bool = False) -> None:
    """One transaction: drop the run's metrics of ``splits``, add ``metrics``, and merge ``extra`` into the run's
    extra (results computed after the run finished, e.g. ``arena analyze``, ``arena eval --save``). ``merge``:
    a dict value of ``extra`` updates the dict already there instead of replacing it."""

    def go(s: Session) -> None:
        run = s.get(Run, run_id)
        if run is None:
            raise ArenaError(f"no run {run_id}")
        run.metrics[:] = [m for m in run.metrics if m.split not in splits]
        run.metrics.extend(Metric(**m) for m in metrics)
        if extra:
            now = dict(run.extra or {})
            run.extra = now | ({k: dict(now.get(k) or {}) | v if isinstance(v, dict) else v for k, v in extra.items()}
                               if merge else extra)

    _write(engine, go, "record the run's new metrics")


def derived_runs(engine: Engine, parent_run_id: int) -> list[Run]:
    """Completed runs derived from ``parent_run_id`` (pruned models), oldest first."""
    with Session(engine, expire_on_commit=False) as s:
        return list(s.scalars(select(Run).where(Run.parent_run_id == parent_run_id, Run.status == "completed")
                              .order_by(Run.id)))


def record_remeasurement(engine: Engine, run_id: int, fields: dict[str, Any], hardware: dict[str, Any],
                         history: dict[str, Any], extra: dict[str, Any]) -> None:
    """Replace a completed run's measured figures (``arena remeasure``) in one transaction; the figures replaced go
    to ``extra["measurements"]`` (oldest first). Columns this database's schema lacks are skipped."""

    def go(s: Session) -> None:
        run = s.get(Run, run_id)
        if run is None or run.status != "completed":
            raise ArenaError(f"run {run_id} is not a completed run")
        for k, v in fields.items():
            if k in Run.__table__.c:
                setattr(run, k, v)
        run.hardware = hardware
        data = dict(run.extra or {})
        data["measurements"] = [*data.get("measurements", []), history]
        data.update(extra)
        run.extra = data  # a new dict: the JSON column sees the change

    _write(engine, go, "record the remeasured figures")
