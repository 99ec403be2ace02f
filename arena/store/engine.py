"""Engines and sessions: any SQLAlchemy URL; SQLite gets WAL, a busy timeout and foreign keys.

``open_store(url)`` returns an engine whose schema is migrated to head (Alembic, version table
``arena_alembic_version``). ``readonly=True`` opens SQLite through a ``mode=ro`` URI so a reader (the
leaderboard, ``arena show``/``list``/``export``) can never write, create a file or folder, or take a write lock on a
database a sweep is filling; it also reads a database file (or folder) the user cannot write.

Every database is opened here, so the failure modes get one clear message each: an in-memory SQLite URL is refused
for recording (nothing would be kept; ``ARENA_ALLOW_MEMORY_DB=1`` allows it), a network server that does not
answer fails after ``ARENA_DB_CONNECT_TIMEOUT`` seconds (default 4) instead of the driver's minutes, a schema
revision this arena does not know means a newer arena wrote the database, and a corrupted SQLite file says so with
``PRAGMA integrity_check`` advice. Migrations are serialised across processes: a file lock for SQLite, a
``pg_advisory_lock`` on PostgreSQL (a fresh database used by several processes at once).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sqlite3
import threading
from pathlib import Path

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError, ProgrammingError

from arena.errors import StoreError
from arena.store.models import VERSION_TABLE

DEFAULT_URL = "sqlite:///results/arena.db"
BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S = 4  # network databases: seconds to wait for a server ($ARENA_DB_CONNECT_TIMEOUT)
MIGRATE_LOCK_KEY = 0x6172656E61  # pg_advisory_lock key of arena's migrations ("arena")
_lock = threading.Lock()
_migrated: set[str] = set()


class UnreadableDatabaseError(StoreError):
    """The database exists but cannot be read: a corrupted file, or a schema from a newer arena."""


# called with the path of every SQLite database open_store creates (the CLI prints it: a relative default would
# otherwise silently start a new, empty database in whatever folder a command runs from)
ON_CREATE: list = []


def resolve_url(url: str | None = None) -> str:
    """``url``, else ``$ARENA_DB_URL``, else the default ``results/arena.db`` made absolute (of this folder)."""
    if url or os.environ.get("ARENA_DB_URL"):
        return url or os.environ["ARENA_DB_URL"]
    return f"sqlite:///{(Path.cwd() / _sqlite_path(DEFAULT_URL)).resolve()}"


def _sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or _is_memory(u):
        return None
    return Path(u.database)


def _is_memory(u) -> bool:
    return u.get_backend_name() == "sqlite" and (not u.database or u.database == ":memory:"
                                                 or "mode=memory" in u.database)


def connect_timeout() -> float:
    raw = os.environ.get("ARENA_DB_CONNECT_TIMEOUT")
    if raw is None:
        return CONNECT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 3600:
        raise StoreError(f"ARENA_DB_CONNECT_TIMEOUT must be a number of seconds in (0, 3600], got {raw!r}")
    return value


def open_store(url: str | None = None, *, readonly: bool = False, migrate: bool = True) -> Engine:
    """Open (and for writers, create and migrate) the database at ``url``; errors become :class:`StoreError`."""
    url = resolve_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"cannot parse database URL {url!r}: {exc}") from None
    backend = parsed.get_backend_name()
    shown = parsed.render_as_string(hide_password=True)
    kwargs: dict = {}
    path, created = None, False
    if backend == "sqlite":
        kwargs, path, created = _sqlite_engine_args(url, parsed, shown, readonly)
    else:
        kwargs["pool_pre_ping"] = True
        if backend in ("postgresql", "mysql", "mariadb") and "connect_timeout" not in parsed.query:
            kwargs["connect_args"] = {"connect_timeout": max(1, round(connect_timeout()))}
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise StoreError(f"cannot open database URL {shown!r}: {exc}") from None
    if backend == "sqlite":
        event.listen(engine, "connect", lambda conn, rec: _sqlite_pragmas(conn, readonly))
    event.listen(engine, "handle_error", _translate_error)
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        if _is_corruption(str(getattr(exc, "orig", exc))):
            raise UnreadableDatabaseError(_corruption_message(engine, str(getattr(exc, "orig", exc)))) from None
        raise StoreError(_connect_failure(parsed, exc)) from None
    check_revision(engine)
    if migrate and not readonly:
        ensure_schema(engine)
    if readonly and backend == "postgresql":  # read-only transactions: a reader can never write by mistake
        engine = engine.execution_options(postgresql_readonly=True)
    if created:
        for hook in ON_CREATE:
            hook(path.resolve())
    return engine


def _sqlite_engine_args(url: str, parsed: URL, shown: str, readonly: bool) -> tuple[dict, Path | None, bool]:
    """``create_engine`` arguments for a SQLite URL, its file (None in memory) and whether this call creates it:
    in-memory databases refused unless asked for, readers never create a file, writers get its folder made."""
    kwargs: dict = {}
    path, created = _sqlite_path(url), False
    if _is_memory(parsed):
        if readonly:
            raise StoreError(f"{shown} is an in-memory database: it is empty, there is nothing to read (give "
                             "the database file, e.g. --db sqlite:///results/arena.db)")
        if os.environ.get("ARENA_ALLOW_MEMORY_DB") != "1":
            raise StoreError(f"{shown} is an in-memory database: whatever is recorded is lost when the command "
                             "ends; give a file (e.g. --db sqlite:///results/arena.db), or set "
                             "ARENA_ALLOW_MEMORY_DB=1 if a throw-away database is what you want")
    if path is not None:
        if readonly:
            if not path.exists():
                raise StoreError(f"database {path} does not exist (nothing has been recorded there yet, or a "
                                 "typo in the path; give --db URL or set ARENA_DB_URL to read another)")
            if path.is_dir():
                raise StoreError(f"database {path} is a folder, not a database file")
            kwargs["creator"] = _readonly_creator(path.resolve())
        else:
            created = not path.exists()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder for database {path}: {exc.strerror}") from None
            _check_writable(path)
    kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    if _is_memory(parsed):  # one connection, or every checkout would see a new empty database
        from sqlalchemy.pool import StaticPool

        kwargs["poolclass"] = StaticPool
    return kwargs, path, created


def _readonly_creator(path: Path):
    """Connections that can never write. A WAL database in a folder we cannot write has no -shm file to create:
    SQLite refuses ``mode=ro`` there, so such a file (nobody can be writing it through this folder) is opened
    ``immutable``."""
    timeout = BUSY_TIMEOUT_MS / 1000
    immutable = not os.access(path.parent, os.W_OK) and not Path(f"{path}-shm").exists()

    def connect():
        mode = "mode=ro&immutable=1" if immutable else "mode=ro"
        return sqlite3.connect(f"file:{path}?{mode}", uri=True, timeout=timeout, check_same_thread=False)

    return connect


def _connect_failure(parsed, exc: DBAPIError) -> str:
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        return f"cannot open database {shown}: {_reason(exc)}"
    where = f"{parsed.host or 'localhost'}" + (f":{parsed.port}" if parsed.port else "")
    low = str(getattr(exc, "orig", exc)).lower()
    if "timeout" in low or "timed out" in low:
        why = (f"no answer within {connect_timeout():g} s (set ARENA_DB_CONNECT_TIMEOUT to wait longer, or add "
               "connect_timeout=N to the URL)")
    else:
        why = _reason(exc)
    return f"cannot reach the database server at {where} ({shown}): {why}"


def _translate_error(ctx) -> None:
    """Engine-wide: a corrupted SQLite file, or a database without arena's tables, is a clear StoreError wherever
    it is first noticed (opening, migrating, or the first query of ``arena list runs``)."""
    exc = ctx.original_exception
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if _is_corruption(msg):
        raise UnreadableDatabaseError(_corruption_message(ctx.engine, msg)) from None
    if "no such table" in msg.lower() and ctx.engine is not None:
        raise StoreError(f"{ctx.engine.url.render_as_string(hide_password=True)} has no arena tables ({msg}): "
                         "nothing has been recorded there yet, or it is not an arena database") from None


def _is_corruption(msg: str) -> bool:
    low = msg.lower()
    return any(k in low for k in ("malformed", "file is not a database", "file is encrypted or is not a database",
                                  "database corrupt", "disk image"))


def _corruption_message(engine, msg: str) -> str:
    path = _sqlite_path(engine.url.render_as_string(hide_password=False)) if engine is not None else None
    where = str(path) if path is not None else "the database"
    check = f"sqlite3 {path} 'PRAGMA integrity_check'" if path is not None else "PRAGMA integrity_check"
    return (f"{where} is corrupted or not an SQLite database ({msg}). Check it with: {check}; restore a backup, "
            "or salvage it with sqlite3's .recover into a new file; arena did not modify it")


def check_revision(engine: Engine) -> None:
    """Refuse a database whose schema revision this arena does not know: a newer arena migrated it.

    Plain SQL and the migration files' ``revision = ...`` lines: a reader (export, list, the leaderboard) never
    imports Alembic (~0.12 s), only a writer that has to migrate does."""
    current = _current_revision(engine)
    if current is not None and current not in _known_revisions():
        raise UnreadableDatabaseError(f"this database ({engine.url.render_as_string(hide_password=True)}) was written by a newer "
                         f"arena (schema revision {current}; this arena knows up to {_head()}); upgrade arena "
                         "to use it")


def _current_revision(engine: Engine) -> str | None:
    """The revision in ``arena_alembic_version`` (None for a database arena has not written yet)."""
    from sqlalchemy import text

    try:
        with engine.connect() as conn:
            if VERSION_TABLE not in inspect(conn).get_table_names():
                return None
            rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    except DBAPIError as exc:
        raise StoreError(f"cannot read the schema version of "
                         f"{engine.url.render_as_string(hide_password=True)}: {_reason(exc)}") from None
    return rows[0] if rows else None


_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*=\s*['\"]?([^'\"\s]+)['\"]?", re.M)


@functools.cache
def _revision_graph() -> dict[str, str | None]:
    """revision -> down_revision, read from the migration files (the same lines Alembic reads)."""
    graph: dict[str, str | None] = {}
    for f in sorted((Path(__file__).parent / "migrations" / "versions").glob("*.py")):
        found = dict((k, v) for k, v in _REVISION_LINE.findall(f.read_text(encoding="utf-8")))
        if "revision" in found:
            down = found.get("down_revision")
            graph[found["revision"]] = None if down in (None, "None") else down
    return graph


def _script():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return cfg, ScriptDirectory.from_config(cfg)


def _known_revisions() -> frozenset[str]:
    return frozenset(_revision_graph())


def _head() -> str:
    graph = _revision_graph()
    heads = set(graph) - {d for d in graph.values() if d}
    return max(heads)


def _check_writable(path: Path) -> None:
    """SQLite in WAL mode needs to write the file and create -wal/-shm beside it: say so before it fails vaguely."""
    folder = path.parent
    read_only_fs = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    if read_only_fs or not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        where = "is on a read-only filesystem" if read_only_fs else "is read-only"
        raise StoreError(f"database {path} {where}; arena needs to write runs there (use --db to record "
                         "elsewhere, or open it read-only with the leaderboard)")


def _sqlite_pragmas(dbapi_conn, readonly: bool) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    if not readonly:
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    msg = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    low = msg.lower()
    if "readonly" in low or "read-only" in low:
        return msg + " (the database file or its folder is read-only)"
    if "disk is full" in low or "no space" in low:
        return msg + " (free disk space and retry; nothing was half-written)"
    if "unable to open" in low:
        return msg + " (check that the folder exists and is writable)"
    if _is_corruption(msg):
        return msg + " (the file is corrupted or not an SQLite database; check it with PRAGMA integrity_check)"
    return msg


@contextlib.contextmanager
def _pg_lock(engine: Engine):
    """PostgreSQL: hold a database-wide advisory lock while migrating, so several processes using a fresh database
    at once create the schema once (two concurrent CREATE TABLEs collide on pg_type as an IntegrityError)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    from sqlalchemy import text

    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATE_LOCK_KEY})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATE_LOCK_KEY})
            conn.commit()


@contextlib.contextmanager
def _file_lock(db_path: Path | None):
    """Serialise migrations of one SQLite file across processes: pysqlite runs DDL outside a transaction, so a
    second process could otherwise see the new tables before the version row and refuse the database."""
    if db_path is None:
        yield
        return
    import fcntl

    with open(db_path.with_name(db_path.name + ".migrate-lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_schema(engine: Engine) -> None:
    """Upgrade the schema to the latest Alembic revision (idempotent; safe if another process raced us)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    key = engine.url.render_as_string(hide_password=False)
    with _lock:
        if key in _migrated:
            return
        cfg, script = _script()
        head = script.get_current_head()
        try:
            with _file_lock(_sqlite_path(key)), _pg_lock(engine):
                _upgrade(engine, cfg, head, command, MigrationContext)
        except DBAPIError as exc:
            raise StoreError(f"cannot migrate database {engine.url.render_as_string(hide_password=True)}: "
                             f"{_reason(exc)}") from None
        _migrated.add(key)


def _upgrade(engine: Engine, cfg, head: str, command, MigrationContext) -> None:  # noqa: N803
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                current = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
                if current == head:
                    return
                if current is None and "runs" in inspect(conn).get_table_names():
                    raise StoreError("database has arena tables but no arena_alembic_version; refusing to touch it")
                if current is not None and current not in _known_revisions():
                    raise StoreError(f"this database ({engine.url.render_as_string(hide_password=True)}) was "
                                     f"written by a newer arena (schema revision {current}); upgrade arena")
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                return
        except (OperationalError, IntegrityError, ProgrammingError) as exc:
            # another process created the tables first (a backend without a lock we can take): look again
            low = str(exc).lower()
            if not ("already exists" in low or "duplicate" in low) or attempt == 2:
                raise
