"""Export and leaderboard commands: ``arena export`` (CSV/Markdown/LaTeX/JSON/Parquet) and ``arena leaderboard``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer
from rich.console import Console

from arena.cli.app import app
from arena.errors import ArenaError
from arena.printing import lit
from arena.validation import check_out_file, finite_option

err = Console(stderr=True)


@app.command()
def export(
    fmt: str | None = typer.Option(None, "--format", "-f",
                                   help="csv | md | latex | json | parquet (default: from --out's suffix, else csv)"),
    task: str | None = typer.Option(None, "--task", help="only this task"),
    split: str | None = typer.Option(None, "--split", help="only this split"),
    gate: float = typer.Option(0.5, "--gate", callback=finite_option(0.0, 1.0),
                               help="normalized score a row needs for its efficiency ratios"),
    include_failed: bool = typer.Option(False, "--include-failed", help="count failed/interrupted runs in n_failed"),
    out: Path | None = typer.Option(None, "--out", "-o", help="write here instead of stdout"),
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL (default: $ARENA_DB_URL or sqlite:///results/arena.db)"),
    no_cache: bool = typer.Option(False, "--no-cache", help="export from the database even if this exact export "
                                  "of an unchanged SQLite file is cached (see arena.export_cache)"),
) -> None:
    """The leaderboard table: one row per arch/task/split/size, mean ± std over seeds, gated ratios, Pareto flags."""
    from arena import export_cache
    from arena.export_formats import format_for
    from arena.store.engine import resolve_url

    kind = format_for(out, fmt)
    if kind == "parquet" and out is None:
        raise ArenaError("--format parquet is binary: give --out FILE")
    if out is not None:
        check_out_file(out)  # before the database is read, not after
    url = resolve_url(db)
    options = {"format": kind, "gate": gate, "task": task, "split": split, "include_failed": include_failed}
    cache_key = None if no_cache else export_cache.key(url, options)
    hit = export_cache.get(cache_key)
    if hit is not None:
        info, raw = hit
        _emit(raw.decode("utf-8") if info.get("text") else raw, out, kind, int(info.get("n_rows", 0)))
        return
    from arena.export import leaderboard_frame, render
    from arena.store.engine import open_store

    engine = open_store(url, readonly=True)
    frame = leaderboard_frame(engine, task=task, split=split, gate=gate, include_failed=include_failed)
    if frame.empty:
        err.print(f"[yellow]note:[/] no completed runs{' for ' + lit(task) if task else ''} in "
                  f"{lit(engine.url.render_as_string(hide_password=True))}", highlight=False)
    query = {"task": task, "split": split, "include_failed": include_failed or None,
             "db": engine.url.render_as_string(hide_password=True)}
    data = render(frame, kind, engine=engine, gate=gate, query=query)
    if not frame.empty:
        export_cache.put(cache_key, data, n_rows=len(frame))
    _emit(data, out, kind, len(frame))


def _emit(data: str | bytes, out: Path | None, kind: str, n_rows: int) -> None:
    if out is None:
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data)
        sys.stdout.flush()
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            out.write_bytes(data)
        else:
            out.write_text(data, encoding="utf-8")
    except OSError as exc:
        raise ArenaError(f"cannot write {out}: {exc.strerror}") from None
    err.print(f"wrote {n_rows} rows to {out} ({kind})", highlight=False, markup=False)


def app_path() -> Path:
    """The installed streamlit_app.py (the leaderboard/ folder is the package ``arena.leaderboard``)."""
    import arena.leaderboard

    return Path(arena.leaderboard.__file__).resolve().parent / "streamlit_app.py"


def leaderboard_command(url: str, address: str, port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(app_path()), "--server.address", address,
            "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--server.runOnSave", "false"]


@app.command()
def leaderboard(
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL (default: $ARENA_DB_URL or sqlite:///results/arena.db)"),
    address: str = typer.Option("127.0.0.1", "--address", help="interface to listen on (0.0.0.0 exposes it)"),
    port: int = typer.Option(8501, "--port", min=1, max=65535),
) -> None:
    """Serve the read-only Streamlit leaderboard (filter, Pareto, depth curves, run details, downloads)."""
    from arena.store.engine import _sqlite_path, resolve_url

    try:
        import streamlit  # noqa: F401
    except ImportError:
        raise ArenaError("the leaderboard needs streamlit: pip install 'arena[leaderboard]'") from None
    url = resolve_url(db)
    path = _sqlite_path(url)
    if path is not None:
        if not path.exists():
            err.print(f"[yellow]note:[/] {lit(path)} does not exist yet; the app will say so until runs are recorded",
                      highlight=False)
        url = f"sqlite:///{path.resolve()}"  # the app may run from another working directory
    env = dict(os.environ, ARENA_DB_URL=url)
    from sqlalchemy.engine import make_url

    shown = make_url(url).render_as_string(hide_password=True)  # the URL goes to the app by env, never printed
    err.print(f"leaderboard on http://{address}:{port} (database {shown}); Ctrl-C to stop", highlight=False,
              markup=False)
    cmd = leaderboard_command(url, address, port)
    if os.name == "posix":  # become the server: Ctrl-C and SIGTERM reach streamlit directly, no orphan left
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(cmd[0], cmd, env)
    try:
        code = subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        code = 0
    if code not in (0, -2, 130):
        raise typer.Exit(code)
