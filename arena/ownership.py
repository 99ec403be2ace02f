"""One live writer per experiment: an exclusive lock on the checkpoint folder of a config hash.

Checkpoints are keyed by config hash, so two processes running the same configuration (two terminals, or a sweep
and a manual run) would train into the same files. :func:`claim` takes an ``flock`` on ``<folder>/owner.lock``
(released by the kernel when the process ends, however it ends) and writes who holds it; a second claimant is
refused with a :class:`~arena.store.repo.LiveRunError` naming the live run and its pid, before it writes anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from arena.errors import ArenaError
from arena.store.repo import LiveRunError

LOCK_NAME = "owner.lock"


class BusyError(LiveRunError):
    """Another live process is running this configuration."""

    def __init__(self, message: str, owner: dict[str, Any]):
        super().__init__(message)
        self.owner = owner


class Claim:
    def __init__(self, f: Any, info: dict[str, Any]):
        self._f, self.info = f, info

    def note(self, **fields: Any) -> None:
        """Record more about the holder (its run id, once the row exists)."""
        self.info.update(fields)
        self._f.seek(0)
        self._f.truncate()
        self._f.write(json.dumps(self.info))
        self._f.flush()


def _owner(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def describe(owner: dict[str, Any]) -> str:
    who = f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}"
    run = f"run {owner['run_id']}" if owner.get("run_id") else "a run"
    return f"{run} ({who}, {owner.get('what', 'arena')})"


@contextlib.contextmanager
def claim(checkpoint: Path, what: str, *, wait: float = 0.0) -> Iterator[Claim]:
    """Hold the experiment whose checkpoint is ``checkpoint`` for the duration; ``wait`` seconds to get it."""
    folder = checkpoint.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        f = open(folder / LOCK_NAME, "a+")  # noqa: SIM115 - held open for the lifetime of the claim
    except OSError as exc:
        raise ArenaError(f"cannot use the checkpoint folder {folder}: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    owner = _owner(folder / LOCK_NAME)
                    raise BusyError(f"this configuration is already being run by {describe(owner)}; not starting a "
                                    "second copy (it would train into the same checkpoint) — wait for it to "
                                    "finish, or stop it first", owner) from None
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        c = Claim(f, {"pid": os.getpid(), "host": socket.gethostname(), "what": what,
                      "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        c.note()
        try:
            yield c
        finally:
            with contextlib.suppress(OSError):
                f.seek(0)
                f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)
    finally:
        f.close()
