"""The parent's side of isolation: start the zygote, spawn one worker per phase, time it, and kill it whole.

The watchdog lives here, in the trusted parent: every reply is awaited against a deadline (the submission's
time limit), and a worker that misses it is killed with everything it started. A worker cannot cancel that,
because nothing in it controls the parent's clock. Killing is by PID namespace (SIGKILL to the namespace's init
takes every descendant with it), by the sandbox's own uid when namespaces are unavailable, and always the
process session; the parent then waits until the processes are really gone.

Logs: a worker's stdout and stderr go to a pipe the parent drains in a thread, keeping only the last
``LOG_LIMIT`` bytes, so a plugin printing without end costs a bounded amount of memory.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from arena.submit import protocol

LOG_LIMIT = 1 << 20  # keep the last 1 MB of a worker's output
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


def printable(text: str) -> str:
    """A worker's text with control characters (terminal escape sequences) replaced, safe to print."""
    return _CONTROL.sub("?", text)
ISOLATION_MODES = ("namespaces", "uid", "none")


class WorkerError(Exception):
    """The worker answered with an error (its code raised), naming the check it was running."""

    def __init__(self, check: str, detail: str, exit_code: int = 1):
        super().__init__(detail)
        self.check, self.detail, self.exit_code = check, detail, exit_code


class PhaseTimeout(Exception):
    """The submission's time limit passed while a worker was busy."""


class LogTail:
    """Drains a pipe in a daemon thread, keeping the last ``limit`` bytes."""

    def __init__(self, fd: int, limit: int = LOG_LIMIT):
        self.buf = bytearray()
        self.limit = limit
        self.dropped = 0
        self._fd = fd
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.buf += chunk
            if len(self.buf) > self.limit:
                cut = len(self.buf) - self.limit
                self.dropped += cut
                del self.buf[:cut]
        os.close(self._fd)

    def join(self, timeout: float = 2.0) -> None:
        self._thread.join(timeout)

    def text(self) -> str:
        return printable(self.buf.decode(errors="replace"))


@dataclass
class Worker:
    phase: str
    sock: socket.socket
    log: LogTail
    pid: int  # the zygote's child (in namespaces mode: the intermediate that waits for the namespace's init)
    init_pid: int  # the worker itself (the PID namespace's init)
    sandbox: Sandbox
    alive: bool = True
    calls: int = 0
    timings: list[float] = field(default_factory=list)

    def call(self, header: dict[str, Any], payload: bytes | memoryview = b"", *, max_reply: int = 0,
             timeout: float | None = None) -> tuple[dict[str, Any], bytearray]:
        """Send one request and wait for its reply; raises :class:`WorkerError`, :class:`PhaseTimeout` or
        :class:`protocol.ProtocolError` (the worker is then killed)."""
        deadline = self.sandbox.deadline if timeout is None else min(self.sandbox.deadline, time.monotonic() + timeout)
        try:
            protocol.send(self.sock, header, payload)
            reply, data = protocol.recv(self.sock, max_reply, deadline)
        except protocol.Timeout:
            self.kill()
            raise PhaseTimeout(self.phase) from None
        except (protocol.ProtocolError, OSError) as exc:
            self.kill()
            raise protocol.ProtocolError(f"{self.phase}: {exc}") from None
        self.calls += 1
        err = reply.get("error")
        if err is not None:
            if not isinstance(err, dict):
                err = {"detail": str(err)}
            raise WorkerError(printable(str(err.get("check") or header.get("op"))[:80]),
                              printable(str(err.get("detail"))[:2000]),
                              2 if err.get("exit_code") == 2 else 1)
        return reply, data

    def peak_rss_mb(self) -> float | None:
        """The worker's high-water resident memory, read by the parent from /proc (not reported by the worker)."""
        try:
            with open(f"/proc/{self.init_pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def kill(self) -> None:
        if self.alive:
            self.alive = False
            self.sandbox._kill(self)


class Sandbox:
    """One submission's zygote and workers. Use as a context manager: leaving it kills everything it started."""

    def __init__(self, *, time_limit: float, memory_mb: int, hide: list[str], keep: list[str],
                 isolation: str = "auto", scratch_mb: int = 256, warm_export: bool = False):
        self.time_limit = time_limit
        self.deadline = time.monotonic() + time_limit
        self.memory_mb, self.hide, self.keep, self.scratch_mb = memory_mb, hide, keep, scratch_mb
        self.requested = isolation
        self.warm_export = warm_export
        self.mode = "none"
        self.uid = os.getuid()
        self.workers: list[Worker] = []
        self.zygote: subprocess.Popen | None = None
        self.ctl: socket.socket | None = None
        self._ctl_lock = threading.Lock()  # workers may be spawned from two threads (namespaces mode only)

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def __enter__(self) -> Sandbox:
        from arena.submit import isolation

        root = os.geteuid() == 0
        if self.requested == "auto":
            self.mode = ("namespaces" if isolation.namespaces_available()
                         else "uid" if root and _python_readable_by_others() else "none")
        else:
            self.mode = self.requested
        if root and self.mode != "none":
            self.uid = 3_000_000 + secrets.randbelow(1_000_000)  # fresh per submission: killable as a group
        mine, theirs = socket.socketpair()
        env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV") if k in os.environ}
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1", ARENA_NO_PLUGINS="1",
                   PYTHONNOUSERSITE="1", ARENA_ZYGOTE_EXPORT="1" if self.warm_export else "0")
        try:
            self.zygote = subprocess.Popen(
                [sys.executable, "-m", "arena.submit.zygote", str(theirs.fileno()), str(os.getpid())],
                pass_fds=(theirs.fileno(),), env=env, cwd="/", stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=None, start_new_session=True)
        finally:
            theirs.close()
        self.ctl = mine
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        for w in list(self.workers):
            w.kill()
        if self.ctl is not None:
            try:
                self.ctl.sendall(json.dumps({"op": "exit"}).encode())
            except OSError:
                pass
            self.ctl.close()
            self.ctl = None
        if self.zygote is not None:
            try:
                os.killpg(self.zygote.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.zygote.wait()
        if self.mode == "uid":
            _kill_uid(self.uid)

    # -- workers ------------------------------------------------------------------------------------------------
    def spawn(self, phase: str) -> Worker:
        """Fork a fresh, isolated worker from the zygote; returns once it says it is ready."""
        assert self.ctl is not None and self.zygote is not None
        mine, theirs = socket.socketpair()
        r, w = os.pipe()
        req = {"op": "spawn", "isolation": self.mode, "uid": self.uid, "memory_mb": self.memory_mb,
               "hide": self.hide, "keep": self.keep, "scratch_mb": self.scratch_mb}
        with self._ctl_lock:
            try:
                socket.send_fds(self.ctl, [json.dumps(req).encode()], [theirs.fileno(), w])
            finally:
                theirs.close()
                os.close(w)
            reply = self._ctl_reply()
        worker = Worker(phase, mine, LogTail(r), int(reply["pid"]), int(reply["init_pid"]), self)
        with self._ctl_lock:
            self.workers.append(worker)
        try:
            hello, _ = protocol.recv(mine, 0, self.deadline)
        except protocol.Timeout:
            worker.kill()
            raise PhaseTimeout(phase) from None
        except protocol.ProtocolError:
            worker.kill()
            raise WorkerError("sandbox", f"the worker for {phase} did not start: "
                              + (worker.log.text().strip().splitlines() or ["no output"])[-1]) from None
        if not hello.get("ready"):
            worker.kill()
            raise protocol.ProtocolError(f"{phase}: the worker did not start properly")
        return worker

    def _ctl_reply(self) -> dict[str, Any]:
        assert self.ctl is not None
        buf = b""
        end = time.monotonic() + 60
        while b"\n" not in buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.ctl], [], [], left)[0]:
                raise RuntimeError("the sandbox's fork server did not answer")
            chunk = self.ctl.recv(4096)
            if not chunk:
                raise RuntimeError("the sandbox's fork server exited (see the output above)")
            buf += chunk
        return json.loads(buf.split(b"\n", 1)[0])

    def _kill(self, w: Worker) -> None:
        for pid in (w.init_pid, w.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            os.killpg(w.pid, signal.SIGKILL)  # the worker's session (it called setsid): the only handle in "none"
        except (ProcessLookupError, PermissionError):
            pass
        if self.mode == "uid":
            _kill_uid(self.uid)
        end = time.monotonic() + 10
        while time.monotonic() < end and (_alive(w.init_pid) or _alive(w.pid)):
            time.sleep(0.005)
        w.sock.close()
        w.log.join()


def _python_readable_by_others() -> bool:
    """A worker under a fresh uid (without a mount namespace to bind it back) can read the Python installation."""
    import stat
    from pathlib import Path

    base = Path(sys.base_prefix).resolve()
    return all(p.stat().st_mode & stat.S_IXOTH for p in [base, *base.parents])


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[-1][:1] not in ("Z", "X")
    except OSError:
        return False


def processes_of_uid(uid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as f:
                    for line in f:
                        if line.startswith("Uid:"):
                            if int(line.split()[1]) == uid:
                                out.append(int(entry))
                            break
            except OSError:
                continue
    return out


def _kill_uid(uid: int) -> None:
    """Kill every process of the sandbox's uid until none is left (new ones may be forked while we look)."""
    if uid == 0 or uid == os.getuid():
        return
    for _ in range(50):
        pids = [p for p in processes_of_uid(uid) if _alive(p)]
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)
