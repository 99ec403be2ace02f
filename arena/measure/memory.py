"""Peak memory of one run: resident set size on CPU, max allocated on CUDA, over the run's own lifetime.

A sweep worker runs many jobs in one process, and the process's lifetime peak (``ru_maxrss``) would charge every
run after a large one with the large one's memory (a 164-parameter model after a mamba run read 1,670 MB).
:func:`start_run` therefore returns freed heap to the operating system and resets the kernel's high-water mark
(Linux: writing ``5`` to ``/proc/self/clear_refs`` resets ``VmHWM``), so :func:`peak_memory_mb` afterwards is the
peak since this run started: the interpreter, torch and whatever the process still holds, plus everything the run
allocated. Where the reset is unavailable (macOS, a restricted ``/proc``) :func:`can_reset` is False and the sweep
gives every job a fresh process instead (``LocalExecutor``), so the figure means the same thing everywhere.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import re
import resource
import sys

_CLEAR_REFS = "/proc/self/clear_refs"
_STATUS = "/proc/self/status"
_scope = "process"  # what the next peak_memory_mb() covers: "run" after a successful start_run()


def can_reset() -> bool:
    """Whether this process can reset its peak-RSS mark (Linux with a writable /proc/self/clear_refs)."""
    return sys.platform.startswith("linux") and os.access(_CLEAR_REFS, os.W_OK)


def _trim_heap() -> None:
    """Give freed memory back to the OS, so memory an earlier run freed does not count as this run's resident set."""
    gc.collect()
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
    except OSError:
        pass


def start_run(device: str = "cpu") -> str:
    """Begin a run's measurement window; returns its scope: ``"run"`` (peak since now) or ``"process"``."""
    global _scope
    _scope = _reset(device)
    return _scope


def scope() -> str:
    """``"run"`` if the peak was reset when the current run started, else ``"process"`` (lifetime peak)."""
    return _scope


def _reset(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
            return "run"
    if not can_reset():
        return "process"
    _trim_heap()
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
    except OSError:
        return "process"
    return "run"


def _vm_hwm_kib() -> int | None:
    try:
        with open(_STATUS) as f:
            m = re.search(r"^VmHWM:\s+(\d+)\s+kB", f.read(), re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def peak_memory_mb(device: str = "cpu") -> float:
    """Peak since :func:`start_run` (or since the process started, where the mark cannot be reset), in MiB."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return torch.cuda.max_memory_allocated() / 2**20
    hwm = _vm_hwm_kib()
    if hwm is not None:
        return hwm / 2**10
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux
