"""Sweep commands: ``arena sweep SPEC.yaml`` and ``arena succinctness``."""

from __future__ import annotations

import json
from typing import Any

import typer

from arena.cli.app import app
from arena.errors import ArenaError
from arena.validation import finite_option


def _executor_opts(executor: str, workers: int | None) -> int:
    if executor not in ("local", "dask"):
        raise ArenaError(f"--executor must be local or dask, got {executor!r}")
    if workers is not None and not 1 <= workers <= 1024:
        raise ArenaError(f"--workers must be in 1..1024, got {workers}")
    return workers or 1


@app.command()
def sweep(
    spec_path: str = typer.Argument(..., metavar="SPEC.yaml", help="sweep spec (see sweeps/*.yaml)"),
    executor: str = typer.Option("local", "--executor", help="local (process pool) | dask"),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Dask scheduler address, e.g. tcp://host:8786 "
                                         "(default: a LocalCluster on 127.0.0.1)"),
    workers: int | None = typer.Option(None, "--workers", help="worker processes (default 1)"),
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL (default: $ARENA_DB_URL or sqlite:///results/arena.db)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list the runs (and which are already done); run nothing"),
    stack: int = typer.Option(8, "--stack", help="train up to N tiny runs (d_model <= 128, differing only in seed "
                              "and lr) as one stack per worker; 1 = every run alone"),
    json_out: bool = typer.Option(False, "--json", help="no progress bar; print a summary JSON as the last line"),
    max_runs: int | None = typer.Option(None, "--max-runs", min=1, max=10**9, help="refuse grids of more runs than "
                                        "this. Default: $ARENA_MAX_RUNS or 5000"),
) -> None:
    """Run a grid of experiments; finished config hashes are skipped, so rerunning resumes."""
    from arena.sweep import expand, load_spec, run_jobs

    n = _executor_opts(executor, workers)
    if not 1 <= stack <= 64:
        raise ArenaError(f"--stack must be in 1..64, got {stack}")
    spec = load_spec(spec_path)
    jobs = expand(spec, max_runs=max_runs)
    if dry_run:
        from arena.store import open_store
        from arena.store.repo import find_completed

        engine = open_store(db)
        rows = [{"config_hash": j.config_hash, "run": j.label,
                 "completed": find_completed(engine, j.config_hash) is not None} for j in jobs]
        if json_out:
            print(json.dumps(rows))
        else:
            for r in rows:
                print(f"{'done' if r['completed'] else 'todo'}  {r['config_hash'][:12]}  {r['run']}")
        return
    summary = run_jobs(jobs, db=db, executor=executor, scheduler=scheduler, workers=n, progress=not json_out,
                       name=spec.name, stack=stack)
    out = {"name": spec.name, **summary.as_dict()}
    if json_out:
        print(json.dumps(out))
    else:
        print(f"{spec.name}: {summary.total} runs: {summary.skipped} already completed, {summary.done} done, "
              f"{summary.failed} failed in {summary.seconds:.1f} s")
        for h, e in summary.errors.items():
            print(f"  failed {h[:12]}: {e}")
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def succinctness(
    task: str = typer.Option(..., "--task", help="recall-depth | counter-chain | nested-parity | scan-depth (any "
                             "depth-knob task)"),
    archs: str = typer.Option("rnn,transformer,mamba", "--archs", help="comma-separated architectures"),
    depths: str = typer.Option("1-4", "--depths", help="e.g. 1-4 or 1,2,3"),
    target: float = typer.Option(0.95, "--target", callback=finite_option(0, 1), help="score (task metric on the headline split) to reach"),
    ladder: str = typer.Option("4-128", "--ladder", help="d_model ladder: LO-HI in x sqrt(2) steps, or a comma list"),
    seeds: int = typer.Option(3, "--seeds", help="seeds per size; pass = ceil(2/3 of them) reach the target"),
    lrs: str = typer.Option("1e-3", "--lrs", help="comma-separated learning rates (a size passes if any LR does)"),
    n_layers: str = typer.Option("", "--n-layers", help="per-arch layers, e.g. rnn=1,transformer=2 (default: preset)"),
    variant: str | None = typer.Option(None, "--variant", help="nested-parity: mem | flat"),
    protocol: str = typer.Option("per-depth", "--protocol", help="per-depth: train, val and test at depth d; "
                                 "cumulative: train on depths 1..d mixed, val and test at d (counter-chain, "
                                 "nested-parity)"),
    set_: list[str] = typer.Option([], "--set", help="KEY=VALUE override for every run (task.X, train.X; arch.X only where the arch "
                                  "has X; ARCH:KEY=VALUE for one arch)"),
    max_steps: int = typer.Option(300, "--max-steps", help="training steps per run"),
    executor: str = typer.Option("local", "--executor", help="local | dask"),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Dask scheduler address"),
    workers: int | None = typer.Option(None, "--workers", help="worker processes (default 1)"),
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL"),
    time_limit: float | None = typer.Option(None, "--time-limit", callback=finite_option(0, lo_open=True), help="minutes; then stop and write what is known "
                                            "(unfinished searches are marked; rerun to continue)"),
    tag: str = typer.Option("", "--tag", help="suffix for the output files (e.g. a budget: steps1500)"),
    out: str = typer.Option("results", "--out", help="folder for succinctness_<task>.csv/.png"),
    stack: int = typer.Option(8, "--stack", help="train up to N tiny runs of one probe (seeds x lrs) as one stack; "
                              "1 = every run alone"),
    pilot: int = typer.Option(4, "--pilot", help="widths tried with seed 0 first to bracket the bisection (0: none)"),
    state_bits: bool = typer.Option(True, "--state-bits/--no-state-bits",
                                    help="measure the carried state in bits of the passing runs at P*"),
    json_out: bool = typer.Option(False, "--json", help="print the table and fits as JSON"),
    max_runs: int | None = typer.Option(None, "--max-runs", min=1, max=10**9, help="refuse a grid (archs x depths x "
                                        "widths x seeds x lrs) of more runs than this. Default: $ARENA_MAX_RUNS or "
                                        "5000"),
) -> None:
    """Smallest size reaching --target in >= 2 of 3 seeds per (arch, depth), by bisection; fit exp vs poly."""
    from arena.succinctness import SuccinctnessConfig, parse_depths, parse_ladder, run_succinctness

    n = _executor_opts(executor, workers)
    layers, lr_list = _succinctness_opts(stack, pilot, tag, n_layers, lrs)
    cfg = SuccinctnessConfig(task=task, archs=[a.strip() for a in archs.split(",") if a.strip()],
                             depths=parse_depths(depths), target=target, ladder=parse_ladder(ladder), seeds=seeds,
                             lrs=lr_list, n_layers=layers, variant=variant, overrides=list(set_),
                             max_steps=max_steps, time_limit_s=None if time_limit is None else time_limit * 60,
                             tag=tag, stack=stack, pilot=pilot, state_bits=state_bits, protocol=protocol)
    result = run_succinctness(cfg, db=db, executor=executor, scheduler=scheduler, workers=n, out_dir=out,
                              progress=not json_out, max_runs=max_runs)
    if json_out:
        print(json.dumps(result, default=str))
    else:
        _print_succinctness(result)


@app.command("succinctness-merge")
def succinctness_merge(
    tables: list[str] = typer.Argument(..., metavar="CSV...", help="succinctness CSVs, earlier first"),
    out: str = typer.Option(..., "--out", help="output stem: writes STEM.csv and STEM.png"),
    title: str = typer.Option("", "--title", help="plot title (default: the output's name)"),
    keep: str = typer.Option("last", "--keep", help="last: a later file's (arch, depth) row replaces an earlier one; "
                             "smallest: the smallest P* any file found (tables of one task and target under "
                             "different protocols), its budget summed over all of them"),
    task_label: str | None = typer.Option(None, "--task-label", help="value of the merged table's task column"),
    json_out: bool = typer.Option(False, "--json", help="print the merged rows and fits as JSON"),
) -> None:
    """Combine succinctness tables (e.g. one per architecture or protocol) into one CSV + plot, refitting growth."""
    from pathlib import Path

    from arena.errors import suggest
    from arena.succinctness import MERGE_KEEPS, PROTOCOLS, merge_tables

    if keep not in MERGE_KEEPS:
        raise ArenaError(f"--keep must be {' or '.join(MERGE_KEEPS)}, got {keep!r}{suggest(keep, MERGE_KEEPS)}")
    for t in tables:
        if not Path(t).is_file():
            raise ArenaError(f"no such succinctness table: {t}")
        with open(t, newline="") as f:
            header = f.readline().strip().split(",")
        missing = [c for c in ("arch", "depth", "p_star", "reached", "p_star_lower") if c not in header]
        if missing:
            raise ArenaError(f"{t} is not a succinctness table: no column {', '.join(missing)}")
    result = merge_tables(tables, out, title or Path(out).name, task_label=task_label, keep=keep)
    if json_out:
        print(json.dumps(result, default=str))
        return
    for row in result["rows"]:
        p = row["p_star"] if row["reached"] else f"> {row['p_star_lower']}"
        print(f"{row['arch']:>12} d={row['depth']}  P*={p}  protocol={row.get('protocol') or PROTOCOLS[0]}")
    print(f"wrote {Path(out).with_suffix('.csv')} and {Path(out).with_suffix('.png')}")


def _succinctness_opts(stack: int, pilot: int, tag: str | None, n_layers: str, lrs: str
                       ) -> tuple[dict[str, int], list[float]]:
    """Check --stack, --pilot and --tag; parse --n-layers (ARCH=N,...) and --lrs."""
    import re

    if not 1 <= stack <= 64:
        raise ArenaError(f"--stack must be in 1..64, got {stack}")
    if pilot < 0:
        raise ArenaError(f"--pilot must be >= 0, got {pilot}")
    if tag and not re.fullmatch(r"[A-Za-z0-9._-]+", tag):
        raise ArenaError(f"--tag may hold letters, digits, '.', '_' and '-' only, got {tag!r}")
    layers: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in n_layers.split(","))):
        k, sep, v = part.partition("=")
        if not sep or not v.isdigit():
            raise ArenaError(f"--n-layers expects ARCH=N pairs, got {part!r}")
        layers[k] = int(v)
    try:
        return layers, [float(x) for x in lrs.split(",") if x.strip()]
    except ValueError:
        raise ArenaError(f"--lrs expects comma-separated numbers, got {lrs!r}") from None


def _print_succinctness(result: dict[str, Any]) -> None:
    """The human-readable summary of a succinctness search: rows, fits, budget, caveats, files written."""
    from arena.succinctness import CAVEATS

    for row in result["rows"]:
        print(f"{row['arch']:>12} d={row['depth']}  P*={row['p_star'] if row['reached'] else '> ' + str(row['p_star_lower'])}"
              f"  state={row['state_size']}  d_model*={row['d_model']}  state_bits={row.get('state_bits')}"
              f" (bound {row.get('state_bits_bound')})")
    for arch, f in result["fits"].items():
        print(f"{arch}: {f['preferred']} (exp R2 {f['exp']['r2']}, poly R2 {f['poly']['r2']})"
              if f.get("preferred") else f"{arch}: too few reached depths to fit")
    b = result["budget"]
    print(f"budget: {b['runs']} runs recorded for these searches, {b['run_cpu_seconds']:.0f} CPU s / "
          f"{b['run_wall_seconds']:.0f} wall s summed over their records (all invocations); this invocation "
          f"{b['invocation_cpu_seconds']:.0f} CPU s (with its workers) in {b['invocation_wall_seconds']:.0f} s")
    print("caveats:\n" + "\n".join(f"  {i}. {c}" for i, c in enumerate(CAVEATS, 1)))
    print(f"wrote {result['csv']} and {result['png']}")

