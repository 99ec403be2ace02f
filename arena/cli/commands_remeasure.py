"""``arena remeasure RUN_ID...``: time recorded runs again from their checkpoints, keeping the old figures."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from arena.cli.app import app
from arena.cli.commands_core import RichProgress, console
from arena.validation import MAX_RUN_ID, finite_option


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g} ms"


@app.command()
def remeasure(
    run_ids: list[int] = typer.Argument(..., min=1, max=MAX_RUN_ID, metavar="RUN_ID...",
                                        help="completed runs with a checkpoint"),
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL (default: $ARENA_DB_URL or results/arena.db)"),
    min_run_time: float | None = typer.Option(None, "--min-run-time", callback=finite_option(0.01, 60),
                                              help="seconds per timing block (default: the run's own setting)"),
    memory: bool = typer.Option(True, "--memory/--no-memory",
                                help="also measure peak memory (a few training steps from the checkpoint)"),
    json_out: bool = typer.Option(False, "--json", help="quiet; print a JSON list as the last line"),
) -> None:
    """Re-time latency (and peak memory) from each run's checkpoint, e.g. on a quiet machine; the replaced
    figures stay in the run's history (extra.measurements). Scores are not touched."""
    from arena.remeasure import remeasure as do_remeasure

    with RichProgress(enabled=not json_out) as progress:
        results = do_remeasure(run_ids, db, min_run_time=min_run_time, memory=memory, progress=progress)
    if json_out:
        print(json.dumps(results, default=str))
        return
    t = Table(title="remeasured (old -> new)")
    for col in ("run", "p50 latency", "load avg", "peak memory"):
        t.add_column(col)
    for r in results:
        old, new = r["old"], r["new"]
        mem = (f"{old['memory_mb']:.0f} -> {new['memory_mb']:.0f} MiB" if old.get("memory_mb") is not None
               and new.get("memory_mb") is not None else "unchanged")
        load = f"{old['load_avg_1m']:.1f}" if old.get("load_avg_1m") is not None else "n/a"
        t.add_row(str(r["run_id"]), f"{_ms(old['latency_p50_ms'])} -> {_ms(new['latency_p50_ms'])}",
                  f"{load} -> {new['load_avg_1m']:.1f}", mem)
    console.print(t)
    console.print("the replaced figures are kept in each run's extra.measurements (arena show RUN_ID --json)",
                  highlight=False)
