"""A cache of ``arena export`` output for SQLite databases, keyed by the database file's state.

Exporting 10,000 runs reads and aggregates every run (and, for JSON, every run's full record): about a second for
CSV and three for JSON, most of it the same work each time. An export is a pure function of the database, the
options and arena's own code, so its bytes are kept under a key made of:

* the database file and its write-ahead log: resolved path, inode, size and modification time, the
  database header's change counters and the log's cumulative frame checksum (every committed write changes the
  ``-wal`` file or, after a checkpoint, the database file itself; the checksums catch two writes within one
  coarse timestamp tick that leave the sizes equal);
* the export options (format, gate, task, split, include_failed) and the URL shown in the export's metadata;
* arena's version, methodology version and a fingerprint of its installed source files (path, size, mtime), so
  an edited or upgraded arena never serves what an older one wrote.

Only SQLite files are cached (a server database has no cheap change stamp). The cache lives in
``$ARENA_CACHE_DIR`` (default ``$XDG_CACHE_HOME/arena`` or ``~/.cache/arena``), under ``exports/``; it keeps the
:data:`KEEP` newest entries and at most :data:`MAX_BYTES` in all. Writes are atomic (temporary file + rename), and
any error reading or writing it falls back to exporting from the database: the cache can make an export faster,
never wrong or failing. ``ARENA_EXPORT_CACHE=0`` or ``arena export --no-cache`` turns it off.

Stdlib only: a cache hit must not pay for importing pandas.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

KEEP = 8
MAX_BYTES = 512 * 2**20
SUFFIX = ".export"


def cache_dir() -> Path:
    base = os.environ.get("ARENA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "arena")
    return Path(base) / "exports"


def enabled() -> bool:
    return os.environ.get("ARENA_EXPORT_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def sqlite_file(url: str) -> Path | None:
    """The file of a plain ``sqlite:///path`` URL; None for anything else (memory, URI options, other backends)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    rest = url[len(prefix):]
    if not rest or "?" in rest or rest == ":memory:":
        return None
    return Path(rest)


def _stamp(path: Path) -> list[Any] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]  # not ctime: a reader closing an empty -wal changes it


def _db_header(path: Path) -> str | None:
    """Bytes 24-99 of the SQLite header: file change counter, schema cookie, ... (a commit in rollback mode and a
    checkpoint in WAL mode change them), as hex."""
    try:
        with open(path, "rb") as f:
            f.seek(24)
            return f.read(76).hex()
    except OSError:
        return None


def _wal_tail(path: Path) -> str | None:
    """The WAL header and the last frame's header, as hex: its salts change whenever the log restarts and its
    checksum is cumulative over every frame, so two logs of the same length with different content differ here
    (timestamps can be as coarse as a few milliseconds)."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
            if len(head) < 32:
                return head.hex() or None
            page = int.from_bytes(head[8:12], "big")
            size = os.fstat(f.fileno()).st_size
            frames = (size - 32) // (24 + page) if page else 0
            tail = b""
            if frames:
                f.seek(32 + (frames - 1) * (24 + page))
                tail = f.read(24)
            return (head + tail).hex()
    except OSError:
        return None


@functools.cache
def code_fingerprint() -> str:
    """Hash of arena's installed source files (relative path, size, mtime): any edit or upgrade changes it."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        st = p.stat()
        h.update(f"{p.relative_to(root)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()


def key(url: str, options: dict[str, Any]) -> str | None:
    """The cache key of one export, or None when it cannot be cached (not a SQLite file, or it does not exist)."""
    path = sqlite_file(url)
    if path is None or not enabled():
        return None
    path = path.resolve()
    db = _stamp(path)
    if db is None:
        return None
    from arena import METHODOLOGY_VERSION, __version__

    wal = Path(f"{path}-wal")
    wal_stamp = _stamp(wal)
    if wal_stamp is not None and wal_stamp[1] == 0:
        wal_stamp = None  # an empty log (a reader creates one) holds nothing: the same state as no log
    material = {"db": str(path), "stamp": db, "header": _db_header(path), "wal": wal_stamp,
                "wal_tail": _wal_tail(wal) if wal_stamp else None, "options": options,
                "arena": __version__, "methodology": METHODOLOGY_VERSION, "code": code_fingerprint()}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def get(k: str | None) -> tuple[dict[str, Any], bytes] | None:
    """``(info, data)`` stored under ``k`` by :func:`put`, or None (no entry, or one that cannot be read)."""
    if k is None:
        return None
    try:
        raw = (cache_dir() / f"{k}{SUFFIX}").read_bytes()
        head, _, data = raw.partition(b"\n")
        info = json.loads(head)
        if not isinstance(info, dict) or info.get("bytes") != len(data):
            return None
        return info, data
    except (OSError, ValueError):
        return None


def put(k: str | None, data: str | bytes, **info: Any) -> None:
    """Store one export with a one-line JSON header (``info`` and the payload's length), atomically; then drop
    the oldest entries beyond :data:`KEEP` / :data:`MAX_BYTES`."""
    if k is None:
        return
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_BYTES:
        return
    head = json.dumps({**info, "bytes": len(raw), "text": isinstance(data, str)}).encode() + b"\n"
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=SUFFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(head)
                f.write(raw)
            os.replace(tmp, folder / f"{k}{SUFFIX}")
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _prune(folder)
    except OSError:
        return  # a cache that cannot be written only costs speed


def _prune(folder: Path) -> None:
    entries = []
    for p in folder.glob(f"*{SUFFIX}"):
        if p.name.startswith(".tmp-"):
            continue
        with contextlib.suppress(OSError):
            st = p.stat()
            entries.append((st.st_mtime_ns, st.st_size, p))
    entries.sort(reverse=True)
    total = 0
    for i, (_, size, p) in enumerate(entries):
        total += size
        if i >= KEEP or total > MAX_BYTES:
            with contextlib.suppress(OSError):
                p.unlink()
