"""Signal hygiene for tests that send Ctrl-C to a child process.

A shell that starts a job in the background (``pytest ... &`` from a script, ``nohup``) starts it with SIGINT
ignored, and every child inherits that disposition across exec: Python then never installs its
KeyboardInterrupt handler, and a test's SIGINT does nothing. Children that a test interrupts are started with
``preexec_fn=default_sigint`` so the test means the same however the suite was launched.
"""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """In the child, before exec: SIGINT back to its default action (Python then installs its own handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
