"""The ``arena`` command line: thin Typer commands that parse, call one library function, and print.

Each command group lives in its own module under ``arena/cli/`` and registers itself on ``app`` when imported
at the bottom of this file. Exit codes: 0 success, 2 bad usage or input, 1 a run that failed.
"""

from __future__ import annotations

import sys

import typer

from arena.errors import ArenaError

app = typer.Typer(name="arena", help="Benchmark sequence architectures: capability per parameter, FLOP and ms.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def _global(db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL for every command (same as "
                                                            "$ARENA_DB_URL; a command's own --db wins)")) -> None:
    """Benchmark sequence architectures: capability per parameter, FLOP and ms."""
    if db:
        import os

        os.environ["ARENA_DB_URL"] = db


def main() -> None:
    """Console entry point: ArenaError -> clean message and its exit code, never a traceback."""
    from rich.console import Console

    from arena.printing import error_line, lit
    from arena.store import engine

    engine.ON_CREATE.append(lambda path: Console(stderr=True).print(
        f"[yellow]note:[/] created a new database at {lit(path)}", highlight=False))
    try:
        code = app(standalone_mode=False)  # typer.Exit(n) comes back as a return value here
        if code == 130 and _command() != "run":  # Ctrl-C (typer returns it); `arena run` says more itself
            Console(stderr=True, soft_wrap=True).print(_interrupted_line(), highlight=False, markup=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except ArenaError as exc:
        Console(stderr=True, soft_wrap=True).print(error_line(exc), highlight=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        Console(stderr=True, soft_wrap=True).print(_interrupted_line(), highlight=False, markup=False)
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode (typer may vendor click)
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        raise


def _command() -> str | None:
    """The subcommand of this invocation (after the global --db option, if given)."""
    args = iter(sys.argv[1:])
    for a in args:
        if a == "--db":
            next(args, None)
        elif not a.startswith("-"):
            return a
    return None


def _interrupted_line() -> str:
    import shlex

    args = sys.argv[1:]
    if _command() in ("sweep", "succinctness"):
        return ("interrupted — resume with: arena " + " ".join(shlex.quote(a) for a in args) + "  (completed runs "
                "are skipped; unfinished ones continue from their checkpoints)")
    return "interrupted"


# command modules (one line each; keep this list sorted)
from arena.cli import commands_attention  # noqa: E402,F401,I001
from arena.cli import commands_core  # noqa: E402,F401
from arena.cli import commands_data  # noqa: E402,F401
from arena.cli import commands_eval  # noqa: E402,F401
from arena.cli import commands_export  # noqa: E402,F401
from arena.cli import commands_remeasure  # noqa: E402,F401
from arena.cli import commands_rerun  # noqa: E402,F401
from arena.cli import commands_submit  # noqa: E402,F401
from arena.cli import commands_sweep  # noqa: E402,F401
