"""Graceful stops: a signal that arrives while a model trains ends it at a step boundary, with its checkpoint saved.

Without this, SIGTERM (a sweep's ``--time-limit``, a scheduler's preemption, ``kill``) ended a run wherever it
was, and everything since the last periodic checkpoint was trained again on resume: up to ``checkpoint_every``
steps (half a run for the succinctness search). Now the first signal only asks the training loop to stop; the
loop finishes the step it is in, writes the checkpoint at that step (so resuming repeats nothing and gives the
same weights as an uninterrupted run) and raises :class:`Stopped`, a ``KeyboardInterrupt``, so every caller's
"interrupted" path (the run row's status, the CLI's "resume with" line) is unchanged. Outside training (data
building, evaluation, measurement) and on a second signal the handler raises ``KeyboardInterrupt`` at once,
as before.

Used by :func:`arena.train.train` and :func:`arena.batched.train_many` (``with training(): ... check()``), and
installed by ``arena run`` (SIGTERM, SIGINT: :func:`handling`) and by sweep workers (:func:`install_in_worker`:
SIGTERM, which their parent sends to end them; they ignore the terminal's SIGINT, and after the save, or at once
outside training, they die by the signal as before, with no traceback and no result to send).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_requested = threading.Event()
_depth = 0  # > 0 while a training loop runs in this process
_die_after = False  # a sweep worker: end the process by the signal once the checkpoint is written


class Stopped(KeyboardInterrupt):
    """Training stopped at a step boundary on request; its checkpoint (if it has one) is at that step."""

    def __init__(self, step: int, saved: bool):
        self.step, self.saved = step, saved
        super().__init__(f"stopped at step {step}" + ("; checkpoint saved" if saved else ""))


def request() -> None:
    """Ask the running training loop to stop after its current step (what the signal handler does)."""
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def handler(signum: int, frame: Any) -> None:
    """The signal handler: while training, the first signal asks for a stop at the next step boundary; otherwise
    (or again) ``KeyboardInterrupt`` now."""
    if _depth > 0 and not _requested.is_set():
        _requested.set()
        return
    if _die_after:
        _die(signum)
    raise KeyboardInterrupt


def _die(signum: int) -> None:
    """End this process by ``signum``'s default action (what it did before a handler was installed)."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def install_in_worker() -> None:
    """A sweep worker's handlers: SIGTERM stops training at the step boundary, then ends the process; SIGINT
    (Ctrl-C reaches the whole process group) is left to the parent, which stops its workers with SIGTERM."""
    global _die_after
    _die_after = True
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def training() -> Iterator[None]:
    """Mark a training loop: inside it a signal waits for the step boundary. A request left over from before
    (a signal that arrived outside any loop already raised) is cleared on entry."""
    global _depth
    if _depth == 0:
        _requested.clear()
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            _requested.clear()


def check(step: int, save: Callable[[], bool]) -> None:
    """At a step boundary: if a stop was asked for, ``save()`` (returns whether it wrote a checkpoint) and raise
    :class:`Stopped`."""
    if _requested.is_set():
        _requested.clear()
        saved = save()
        if _die_after:
            _die(signal.SIGTERM)
        raise Stopped(step, saved)


@contextmanager
def handling(*signums: int) -> Iterator[None]:
    """Install :func:`handler` for these signals (main thread only: elsewhere signals cannot be handled), and put
    the old handlers back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


__all__ = ["Stopped", "request", "requested", "handler", "training", "check", "handling", "install_in_worker"]
