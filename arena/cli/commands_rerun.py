"""``arena rerun RUN_ID``: determinism check against the stored record."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from arena.cli.app import app
from arena.cli.commands_core import RichProgress, console
from arena.printing import cell
from arena.validation import MAX_RUN_ID, finite_option


@app.command()
def rerun(
    run_id: int = typer.Argument(..., min=1, max=MAX_RUN_ID, help="a completed run"),
    db: str | None = typer.Option(None, "--db"),
    tolerance: float = typer.Option(0.0, "--tolerance", callback=finite_option(lo=0), help="allowed absolute score difference. Default: exact"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Run a recorded experiment again from its stored config and compare scores; exit 1 if they differ."""
    from arena.rerun import rerun as do_rerun

    with RichProgress(enabled=not json_out) as progress:
        out = do_rerun(run_id, db, progress, tolerance)
    if json_out:
        print(json.dumps(out, default=str))
    else:
        t = Table(title=cell(f"rerun of run {run_id} -> run {out['new_run_id']}"))
        for c in ("split", "metric", "stored", "new", "same"):
            t.add_column(c)
        for d in out["scores"]:
            t.add_row(cell(d["split"]), cell(d["metric"]), cell(d["stored"]), cell(d["new"]),
                      "yes" if d["same"] else "[red]NO[/]")
        console.print(t)
        console.print("identical" if out["identical"] else "[red]scores differ[/]")
    if not out["identical"]:
        raise typer.Exit(1)
