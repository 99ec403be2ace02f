"""OS isolation for one untrusted worker, applied in the forked child before any plugin code runs.

``namespaces`` (root, or where the kernel allows it): new PID, mount, network, IPC and UTS namespaces. The worker
is PID 1 of its PID namespace, so when it dies the kernel kills every process it started (daemons included).
The mount namespace gets private tmpfs over ``/tmp``, ``/var/tmp``, ``/dev/shm`` and ``/run`` and over every
folder the parent names as hidden (its cwd, home, the database's folder), with only the folders the worker needs
(arena's code, the plugin) bound back read-only; the root file system is remounted read-only, and a fresh
``/proc`` shows only the worker's own processes. The network namespace has no interface but a down loopback.

``uid`` (root without namespaces): only the privilege drop below.

Always (when root): the worker runs as a fresh unprivileged uid/gid with no supplementary groups and
``no_new_privs``; it gets ``PR_SET_PDEATHSIG`` (its parent dying kills it) and resource limits (address space,
process count, no core files).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import signal
from pathlib import Path
from typing import Any

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE = 1, 38, 4
SCRATCH = "/tmp/work"  # the worker's cwd and HOME inside the namespace

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def prctl(option: int, arg: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), f"prctl({option})")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return s.encode() if s is not None else None

    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {source} on {target}")


def namespaces_available() -> bool:
    """Whether this process may create the namespaces (tried in a throw-away child, so nothing changes here)."""
    if os.geteuid() != 0:
        return False
    pid = os.fork()
    if pid == 0:
        try:
            unshare(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
            mount(None, "/", None, MS_REC | MS_PRIVATE)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def enter_namespaces() -> int:
    """Unshare and fork: returns the host pid of the new PID namespace's init in the caller (the intermediate),
    0 in the init itself."""
    unshare(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
    return os.fork()


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def build_mounts(hide: list[str], keep: list[str], uid: int, scratch_mb: int) -> None:
    """Private mounts (see the module docstring). Runs as root inside the new mount namespace."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    hidden = sorted({str(Path(h)) for h in [*hide, "/tmp", "/var/tmp", "/dev/shm", "/run"]
                     if h and Path(h).is_dir() and str(Path(h)) != "/"}, key=lambda p: p.count("/"))
    kept = sorted({str(Path(k)) for k in keep if k and Path(k).exists()})
    # O_PATH handles opened before anything is covered: a kept folder is bound back from its handle
    handles = {k: os.open(k, os.O_PATH) for k in kept if any(_under(k, h) and k != h for h in hidden)}
    covered: list[str] = []
    for h in hidden:
        # a folder inside one already covered is invisible anyway, unless a kept folder brought it back
        if any(_under(h, c) for c in covered) and not any(_under(h, k) for k in kept):
            continue
        size = f"{scratch_mb}m" if h == "/tmp" else "1m"
        mount("tmpfs", h, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode={'1777' if h == '/tmp' else '0755'}")
        covered.append(h)
        for k, fd in handles.items():
            if _under(k, h) and k != h:
                _bind_back(k, fd)
    for fd in handles.values():
        os.close(fd)
    os.makedirs(SCRATCH, mode=0o700, exist_ok=True)
    os.chown(SCRATCH, uid, uid)
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def _bind_back(path: str, fd: int) -> None:
    target = Path(path)
    if Path(f"/proc/self/fd/{fd}").is_dir():
        target.mkdir(parents=True, exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
    mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
    mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def set_limits(memory_mb: int, nproc: int = 64) -> None:
    limit = int(memory_mb) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if os.geteuid() == 0:  # per-uid: the sandbox uid is fresh for each submission
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def confine(req: dict[str, Any]) -> None:
    """Everything after the namespace fork, in the worker itself: mounts, limits, privileges, death signal."""
    mode, uid = req["isolation"], int(req["uid"])
    if mode == "namespaces":
        build_mounts(list(req.get("hide", [])), list(req.get("keep", [])), uid, int(req.get("scratch_mb", 256)))
    set_limits(int(req["memory_mb"]))
    if os.geteuid() == 0:
        drop_privileges(uid)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # set after the uid change, which clears it
    home = SCRATCH if mode == "namespaces" else req.get("scratch") or "/"
    os.chdir(home)
    os.environ.update(HOME=home, TMPDIR=home)


__all__ = ["namespaces_available", "enter_namespaces", "confine", "prctl", "PR_SET_PDEATHSIG", "SCRATCH"]
