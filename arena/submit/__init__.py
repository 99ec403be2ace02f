"""Plugin submission: untrusted code computes, arena scores.

``arena submit PATH|PACKAGE`` checks a new architecture and records a small standard suite, without ever
trusting the plugin's code with a number that reaches the leaderboard:

* the parent (this process) never imports the plugin (:mod:`~arena.submit.resolve`: files and metadata only);
* plugin code runs only in isolated workers forked per phase from a clean fork server
  (:mod:`~arena.submit.sandbox`, :mod:`~arena.submit.zygote`, :mod:`~arena.submit.isolation`), which get
  training examples or inputs and return weights or logits (:mod:`~arena.submit.worker`);
* the parent builds the data from a secret seed, checks what it gets back (:mod:`~arena.submit.verify`),
  scores with arena's own scorer through proxy models (:mod:`~arena.submit.score`, :mod:`~arena.submit.suite`)
  and writes the rows itself, all suite runs in one transaction (:mod:`~arena.submit.record`).

Exit codes (:attr:`SubmitResult.exit_code`): 0 accepted, 1 rejected (a failed check, a limit, a crash), 2 bad
input (missing path, unknown plugin or task, ambiguous choice).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from arena.errors import ArenaError
from arena.submit.resolve import (
    GROUP,
    PluginSource,
    SubmitInputError,
    check_name,
    check_tasks,
    default_tasks,
    names_taken,
    resolve_plugin,
    sha256_file,
    sha256_tree,
)

DEFAULT_TIME_LIMIT = 300.0  # seconds of wall clock for the whole submission (every worker together)
DEFAULT_MEMORY_LIMIT_MB = 4096  # address space of each worker
DEFAULT_MAX_STEPS = 60
_MEMORY_ERRORS = ("MemoryError", "can't allocate memory", "Cannot allocate memory", "bad_alloc", "out of memory")


@dataclass
class SubmitResult:
    ok: bool
    exit_code: int
    message: str
    plugin: dict[str, Any]
    arch: str | None = None
    loaded_from: str | None = None  # the file the factory was defined in, as the worker reported it
    failed_check: str | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)  # recorded in the real database by this submission
    sandbox_runs: list[dict[str, Any]] = field(default_factory=list)  # scored (recorded or not)
    duplicates: list[dict[str, Any]] = field(default_factory=list)  # already recorded: the same run, not a replicate
    isolation: str = "none"
    db: str | None = None
    seconds: float = 0.0
    log_tail: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def submit(target: str, *, tasks: list[str] | None = None, db: str | None = None, name: str | None = None,
           time_limit: float = DEFAULT_TIME_LIMIT, memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB,
           max_steps: int = DEFAULT_MAX_STEPS, command: str | None = None, seed: int = 0,
           data_seed: int | None = None, isolation: str = "auto", verify_flops: bool = False,
           on_event: Callable[..., None] | None = None) -> SubmitResult:
    """Check a plugin in isolated workers and, if it passes, record the standard suite in ``db``.

    ``data_seed`` (default: a fresh secret) seeds the task data; it is recorded only after scoring.
    ``verify_flops`` counts the FLOPs of the model's exported graph on arena's side (slower: torch.export). Raises
    :class:`SubmitInputError` for bad input; every other outcome is a :class:`SubmitResult`.
    """
    from arena.store.engine import resolve_url

    if time_limit <= 0 or memory_limit_mb <= 0 or max_steps < 1:
        raise SubmitInputError("--time-limit, --memory-limit and --max-steps must be positive")
    if isolation not in ("auto", "namespaces", "uid", "none"):
        raise SubmitInputError(f"isolation must be auto, namespaces, uid or none, got {isolation!r}")
    source = resolve_plugin(target, name)
    tasks = check_tasks(list(tasks or []))
    url = resolve_url(db)
    from arena.submit.prepare import plugin_request, visible_paths
    from arena.submit.sandbox import Sandbox

    tmp = Path(tempfile.mkdtemp(prefix="arena-submit-"))
    old = _sigterm_as_interrupt()
    try:
        req, code_path = plugin_request(source, tmp)
        hide, keep = visible_paths(url, code_path)
        # the fork server starts first: its torch import overlaps with the parent's own
        limits = {"time_limit": time_limit, "memory_mb": memory_limit_mb, "hide": hide, "keep": keep}
        with Sandbox(isolation=isolation, **limits) as sandbox, contextlib.ExitStack() as more:
            # with namespaces, a second fork server (torch.export preloaded) counts FLOPs beside the scoring
            exporter = (more.enter_context(Sandbox(isolation="namespaces", warm_export=True, **limits))
                        if verify_flops and sandbox.mode == "namespaces" else None)
            from arena.submit.flow import Submission

            return Submission(source, tasks, url, sandbox, req, code_path, max_steps=max_steps, command=command,
                              seed=seed, data_seed=data_seed if data_seed is not None else secrets.randbelow(2**31),
                              on_event=on_event or (lambda e: None), exporter=exporter,
                              verify_flops=verify_flops).run()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def _sigterm_as_interrupt() -> Any:
    """SIGTERM takes the Ctrl-C path (the sandbox is torn down in ``finally`` blocks either way)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, on_term)


__all__ = ["submit", "SubmitResult", "SubmitInputError", "PluginSource", "resolve_plugin", "check_tasks",
           "check_name", "names_taken", "sha256_file", "sha256_tree", "default_tasks", "DEFAULT_TIME_LIMIT",
           "DEFAULT_MEMORY_LIMIT_MB", "DEFAULT_MAX_STEPS", "GROUP", "ArenaError"]
