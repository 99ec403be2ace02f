"""The fork server: a clean process that has imported torch and arena's worker code, and forks one worker per phase.

Importing torch takes seconds; forking a process that already has it takes milliseconds. The zygote is started
by the parent *before* any data exists, with a scrubbed environment and a scratch cwd, so a worker forked from it
inherits no label, no path of the parent and no database URL: only modules. It never imports plugin code
itself (each forked worker does, after isolation), so every worker starts from the same clean image.

Control channel (a Unix socket to the parent): ``spawn`` requests carrying two file descriptors (the worker's
end of its private socket, the write end of its log pipe). The zygote forks, replies with the pids the parent
needs to kill the worker (``pid``: the forked child; ``init_pid``: the PID namespace's init, which is the worker
itself), and reaps finished children. It dies with the parent (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
from typing import Any


def _spawn(ctl: socket.socket, req: dict[str, Any], conn_fd: int, log_fd: int) -> tuple[int, int]:
    from arena.submit import isolation

    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(w)
        os.close(conn_fd)
        os.close(log_fd)
        with os.fdopen(r, "rb") as f:
            data = f.read(32)
        init_pid = int(data) if data.strip().isdigit() else pid
        return pid, init_pid
    # -- the forked child ------------------------------------------------------------------------------------
    code = 1
    try:
        os.close(r)
        ctl.close()
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        for fd in (devnull, log_fd):
            if fd > 2:
                os.close(fd)
        isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
        if req["isolation"] == "namespaces":
            child = isolation.enter_namespaces()
            if child:  # the intermediate: report the init's host pid, then wait for it and pass its status on
                os.write(w, str(child).encode())
                os.close(w)
                os.close(conn_fd)
                _, status = os.waitpid(child, 0)
                os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
        else:
            os.write(w, str(os.getpid()).encode())
        os.close(w)
        isolation.confine(req)
        from arena.submit import worker

        code = worker.main(conn_fd, req)
    except BaseException as exc:  # noqa: BLE001 - the child must never return into the zygote's loop
        try:
            os.write(2, f"sandbox setup failed: {type(exc).__name__}: {exc}\n".encode())
        except OSError:
            pass
        code = 70
    finally:
        os._exit(code)


def serve(ctl_fd: int, parent_pid: int) -> int:
    from arena.submit import isolation

    isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        return 1
    import torch

    # the point of the zygote: import once, fork many times (everything a worker's requests use)
    import arena.measure.latency  # noqa: F401
    import arena.registry  # noqa: F401
    import arena.spec  # noqa: F401
    import arena.submit.flops  # noqa: F401
    import arena.submit.worker  # noqa: F401
    import arena.testing  # noqa: F401
    import arena.train  # noqa: F401

    torch.set_num_threads(1)
    if os.environ.get("ARENA_ZYGOTE_EXPORT") == "1":  # the FLOPs zygote: torch.export imported and warmed up once
        import torch.export

        try:
            torch.export.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), strict=False)
        except Exception:  # noqa: BLE001 - only a warm-up; a real export reports its own error
            pass
    ctl = socket.socket(fileno=ctl_fd)
    os.write(1, b"")
    while True:
        ready, _, _ = select.select([ctl], [], [], 0.5)
        _reap()
        if not ready:
            continue
        try:
            msg, fds, _, _ = socket.recv_fds(ctl, 1 << 16, 2)
        except OSError:
            return 0
        if not msg:
            return 0
        req = json.loads(msg)
        if req.get("op") == "exit":
            return 0
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            ctl.sendall(json.dumps({"error": "spawn needs two descriptors"}).encode() + b"\n")
            continue
        pid, init_pid = _spawn(ctl, req, fds[0], fds[1])
        ctl.sendall(json.dumps({"pid": pid, "init_pid": init_pid}).encode() + b"\n")


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1]), int(sys.argv[2])))
