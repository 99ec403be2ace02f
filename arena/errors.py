"""Error types with exit codes, and the "did you mean" helper used everywhere a name is looked up."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class ArenaError(Exception):
    """Bad usage or input: the CLI prints the message (no traceback) and exits with ``exit_code``."""

    exit_code = 2


class UnknownNameError(ArenaError, KeyError):
    """A registry lookup failed; the message carries suggestions."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class RegistryCollisionError(ArenaError):
    """Two entries claim the same registry name."""


class RunFailedError(ArenaError):
    """A run started and failed; it is recorded as failed."""

    exit_code = 1


class StoreError(ArenaError):
    """The database cannot be opened or written (bad URL, read-only file, full disk)."""

    exit_code = 1


def format_errors(exc: Any) -> str:
    """A pydantic ``ValidationError`` as one line: ``unknown field 'x'`` or ``loc: message (got value)`` per error."""
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(root)"
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown field {loc!r}")
        else:
            parts.append(f"{loc}: {e['msg']} (got {e.get('input')!r})")
    return "; ".join(parts)


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choices, or a list of the valid names."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if not close:
        close = [c for c in choices if name and (name in c or c in name)][:3]
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    if choices:
        shown = ", ".join(choices[:30]) + (" …" if len(choices) > 30 else "")
        return f"; valid names: {shown}"
    return ""
