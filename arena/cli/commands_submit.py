"""``arena submit``: check a plugin in isolated workers, score it on the parent, record a small standard suite."""

from __future__ import annotations

import json
import shlex
import sys
from typing import Any

import typer
from rich.console import Console

from arena.cli.app import app
from arena.printing import lit
from arena.validation import finite_option

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@app.command()
def submit(
    target: str = typer.Argument(..., metavar="PATH|PACKAGE",
                                 help="a .py file defining one ArchSpec, or an installed plugin (architecture or "
                                      "distribution name)"),
    tasks: list[str] = typer.Option([], "--tasks", help="suite tasks (repeatable or comma-separated; default: "
                                                        "the tasks marked in_default_suite: scan-depth); see arena "
                                                        "list tasks"),
    name: str | None = typer.Option(None, "--name", help="which architecture, when the file or package has several"),
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL (default: $ARENA_DB_URL or "
                                                     "sqlite:///results/arena.db)"),
    time_limit: float | None = typer.Option(None, "--time-limit", callback=finite_option(0, 7 * 86_400, lo_open=True),
                                            help="wall-clock seconds for the whole submission, every worker. Default: 300"),
    memory_limit: int | None = typer.Option(None, "--memory-limit", min=64, max=10_000_000,
                                            help="address-space limit of each worker process in MB. Default: 4096"),
    max_steps: int | None = typer.Option(None, "--max-steps", min=0, max=100_000_000, help="training steps per suite run. Default: 60"),
    seed: int = typer.Option(0, "--seed", min=0, max=2**31 - 1, help="seed of the model's initialisation and training batches (the data "
                                               "seed is drawn in secret and recorded after scoring). Default: 0"),
    verify_flops: bool = typer.Option(False, "--verify-flops", help="count FLOPs on arena's side from the model's "
                                      "exported graph (torch.export; slower); otherwise they stay 'declared'"),
    isolation: str = typer.Option("auto", "--isolation", help="auto (strongest available) | namespaces | uid | none"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON object (the full result) and nothing else"),
) -> None:
    """Check an architecture plugin in isolated workers, then train, score and record a small suite.

    The plugin's code runs only in isolated worker processes that see training examples or inputs; arena builds
    the data from a secret seed, computes every score itself and records the runs flagged with their provenance.

    Exit codes: 0 accepted and recorded; 1 rejected (the message names the failed check; nothing recorded);
    2 bad input (missing file, unknown plugin or task).
    """
    from arena import submit as sub

    task_list = [t.strip() for item in tasks for t in item.split(",") if t.strip()]
    limits = {"time_limit": time_limit if time_limit is not None else sub.DEFAULT_TIME_LIMIT,
              "memory_limit_mb": memory_limit if memory_limit is not None else sub.DEFAULT_MEMORY_LIMIT_MB,
              "max_steps": max_steps if max_steps is not None else sub.DEFAULT_MAX_STEPS}
    command = "arena " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        if not json_out:
            sub.check_tasks(task_list)  # fail fast on a typo, before announcing anything
            src = sub.resolve_plugin(target, name)
            what = f"{src.label()} (package)" if src.kind == "package" else f"{src.name} (single file)"
            err.print(lit(f"submitting {what}, sha256 {src.sha256[:16]}…; limits: {limits['time_limit']:g} s, "
                             f"{limits['memory_limit_mb']} MB per worker"), highlight=False)
        result = sub.submit(target, tasks=task_list, db=db, name=name, command=command, seed=seed, isolation=isolation,
                            verify_flops=verify_flops,
                            on_event=None if json_out else _print_event, **limits)
    except sub.SubmitInputError as exc:
        if json_out:
            print(json.dumps({"ok": False, "exit_code": exc.exit_code, "message": str(exc)}))
            raise SystemExit(exc.exit_code) from None
        raise
    if json_out:
        print(json.dumps(result.to_json(), default=str))
    else:
        _print_result(result)
    if result.exit_code:
        # SystemExit, not typer.Exit: arena's main() runs click with standalone_mode=False, which turns typer.Exit
        # into a return value that is then dropped (exit status 0)
        raise SystemExit(result.exit_code)


def _print_result(result: Any) -> None:
    """What a submission recorded (or why it was rejected), for people."""
    if result.ok:
        for r in result.runs:
            score = "n/a" if r["score"] is None else f"{r['score']:.4f}"
            console.print(lit(f"recorded run {r['run_id']}: {result.arch} on {r['task']}/{r['split']}, {r['metric']} "
                          f"{score}, {r['params']:,} params (arena show {r['run_id']})"), highlight=False)
        for r in result.duplicates:
            console.print(lit(f"already recorded as run {r['run_id']}: {result.arch} on {r['task']} (same plugin "
                                 "bytes and seed: the same run, not a new replicate)"), highlight=False)
        console.print(f"[green]{lit(result.message)}[/] in {lit(result.db or '')} ({result.seconds:.0f} s, "
                      f"isolation: {lit(result.isolation)})", highlight=False)
    else:
        if result.log_tail and result.failed_check in ("crash", "import", "protocol"):
            err.print(result.log_tail[-800:], highlight=False, markup=False)
        err.print(f"[bold red]rejected:[/] {lit(result.message)}", highlight=False)


def _print_event(e: dict[str, Any]) -> None:
    kind = e.get("event")
    if kind == "isolation":
        if e["mode"] == "none":
            err.print("[bold red]WARNING: no OS isolation is possible here (not root, no user namespaces): the "
                      "plugin's code runs with your permissions. Scores are still computed by arena, but the "
                      "plugin can read and write your files. Runs are recorded with isolation: none.[/]")
        else:
            err.print(lit(f"isolation: {e['mode']}"), highlight=False)
    elif kind == "loaded":
        err.print(lit(f"loaded {e['arch']} version {e['version']} ({e['kind']}, family {e['family']}; plugin "
                         f"version {e['plugin_version']})"),
                  highlight=False)
    elif kind == "check":
        mark = "[green]PASS[/]" if e["ok"] else "[red]FAIL[/]"
        by = " (plugin's own check)" if e.get("by") == "worker" else ""
        err.print(f"{mark} {lit(e['name'])}{by}: {lit(e['detail'])}", highlight=False)
    elif kind == "stage":
        err.print(lit(f"{e['stage']} …"), highlight=False)
    elif kind == "run":
        score = "n/a" if e.get("score") is None else f"{e['score']:.4f}"
        err.print(lit(f"  {e['task']}: {e['metric']} {score} (scored by arena)"), highlight=False)
