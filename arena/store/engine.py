"""Engines and sessions: any SQLAlchemy URL; SQLite gets WAL, a busy timeout and foreign keys.

``open_store(url)`` returns an engine whose schema is migrated to head (Alembic, version table
``arena_alembic_version``). ``readonly=True`` opens SQLite through a ``mode=ro`` URI so a reader (the
leaderboard) can never write or take a write lock on a database a sweep is filling.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from arena.errors import StoreError
from arena.store.models import VERSION_TABLE

DEFAULT_URL = "sqlite:///results/arena.db"
BUSY_TIMEOUT_MS = 30_000
_lock = threading.Lock()
_migrated: set[str] = set()


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
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def open_store(url: str | None = None, *, readonly: bool = False, migrate: bool = True) -> Engine:
    """Open (and for writers, create and migrate) the database at ``url``; errors become :class:`StoreError`."""
    url = resolve_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"cannot parse database URL {url!r}: {exc}") from None
    backend = parsed.get_backend_name()
    kwargs: dict = {}
    path, created = None, False
    if backend == "sqlite":
        path = _sqlite_path(url)
        if path is not None:
            if readonly:
                if not path.exists():
                    raise StoreError(f"database {path} does not exist (nothing has been recorded there yet; give "
                                     "--db URL or set ARENA_DB_URL to read another)")
                uri = f"file:{path.resolve()}?mode=ro"
                kwargs["creator"] = lambda: sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                                            check_same_thread=False)
            else:
                created = not path.exists()
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot create the folder for database {path}: {exc.strerror}") from None
                _check_writable(path)
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise StoreError(f"cannot open database URL {parsed.render_as_string(hide_password=True)!r}: {exc}") from None
    if backend == "sqlite":
        event.listen(engine, "connect", lambda conn, rec: _sqlite_pragmas(conn, readonly))
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        raise StoreError(f"cannot connect to {parsed.render_as_string(hide_password=True)}: {_reason(exc)}") from None
    if migrate and not readonly:
        ensure_schema(engine)
    if created:
        for hook in ON_CREATE:
            hook(path.resolve())
    return engine


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
    return msg


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
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    key = engine.url.render_as_string(hide_password=False)
    with _lock, _file_lock(_sqlite_path(key)):
        if key in _migrated:
            return
        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        head = ScriptDirectory.from_config(cfg).get_current_head()
        try:
            for attempt in range(3):
                with engine.begin() as conn:
                    current = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
                    if current == head:
                        break
                    if current is None and "runs" in inspect(conn).get_table_names():
                        raise StoreError("database has arena tables but no arena_alembic_version; refusing to touch it")
                    cfg.attributes["connection"] = conn
                    try:
                        command.upgrade(cfg, "head")
                        break
                    except OperationalError as exc:  # another process created the tables first
                        if "already exists" not in str(exc) or attempt == 2:
                            raise
        except DBAPIError as exc:
            raise StoreError(f"cannot migrate database {engine.url.render_as_string(hide_password=True)}: "
                             f"{_reason(exc)}") from None
        _migrated.add(key)
