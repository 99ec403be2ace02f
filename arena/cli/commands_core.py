"""Core commands: run, list, show, validate, doctor."""

from __future__ import annotations

import json
import shlex
import sys
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from arena.cli.app import app
from arena.columns import COLUMNS, COSTS, SCORES
from arena.errors import ArenaError
from arena.printing import cell, lit
from arena.validation import MAX_RUN_ID

console = Console()
err = Console(stderr=True)


class RichProgress:
    """Phase-aware progress bar on stderr (stdout stays clean for --json)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar: Progress | None = None
        self.task_id: Any = None

    def __enter__(self) -> RichProgress:
        if self.enabled:
            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                console=err, transient=False)
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar:
            if exc[0] is None:
                self._finish()
            self.bar.__exit__(*exc)

    def _finish(self) -> None:
        """Complete the current phase; one without a known total (preparing, measuring) shows done, not 0/?."""
        if self.bar is None or self.task_id is None:
            return
        task = self.bar.tasks[-1]
        total = task.total if task.total else max(1, int(task.completed))
        self.bar.update(self.task_id, total=total, completed=total)
        self.bar.stop_task(self.task_id)

    def phase(self, name: str, total: int | None = None) -> None:
        if not self.bar:
            return
        self._finish()
        self.task_id = self.bar.add_task(lit(name), total=total, info="")

    def advance(self, completed: int, info: dict[str, float] | None = None) -> None:
        if not self.bar or self.task_id is None:
            return
        text = "  ".join(f"{k} {v:.4g}" for k, v in (info or {}).items() if k in ("loss", "val", "reward", "train_em"))
        self.bar.update(self.task_id, completed=completed, info=text)


@app.command()
def run(
    arch: str = typer.Option(..., "--arch", help="architecture name (arena list archs)"),
    task: str = typer.Option(..., "--task", help="task name (arena list tasks)"),
    split: str | None = typer.Option(None, "--split", help="task split (default: the task's own)"),
    size: str = typer.Option("small", "--size", help="size preset: tiny | small | base"),
    params: int | None = typer.Option(None, "--params", help="parameter budget: widths chosen to land within 5%"),
    d_model: int | None = typer.Option(None, "--d-model", help="override the preset width"),
    n_layers: int | None = typer.Option(None, "--n-layers", help="override the preset depth"),
    seed: int = typer.Option(0, "--seed"),
    data_seed: int | None = typer.Option(None, "--data-seed", help="seed of the task's data (default: --seed); "
                                                                 "reproduces a submission's secret sample"),
    max_steps: int | None = typer.Option(None, "--max-steps", help="training steps (default: train.max_steps)"),
    lr: float | None = typer.Option(None, "--lr", help="peak learning rate (default: train.lr)"),
    set_: list[str] = typer.Option([], "--set", help="config override KEY=VALUE (arch.X, task.X, train.X); repeatable"),
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL (default: $ARENA_DB_URL or sqlite:///results/arena.db)"),
    threads: int | None = typer.Option(None, "--threads", help="torch threads"),
    resume: bool = typer.Option(False, "--resume", help="continue the newest unfinished run with this config"),
    json_out: bool = typer.Option(False, "--json", help="quiet; print one JSON object as the last line"),
) -> None:
    """Train, evaluate, measure and record one run."""
    from pydantic import ValidationError

    from arena.record import json_summary
    from arena.runner import run as do_run
    from arena.spec import RunSpec

    if size not in ("tiny", "small", "base"):
        raise ArenaError(f"--size must be tiny, small or base, got {size!r}")
    overrides: list[str | tuple[str, Any]] = list(set_)  # typed options after --set: they win, and stay typed
    if max_steps is not None:
        overrides.append(("train.max_steps", max_steps))
    if lr is not None:
        overrides.append(("train.lr", lr))
    try:
        spec = RunSpec(arch=arch, task=task, split=split, size=size, params=params, d_model=d_model,
                       n_layers=n_layers, seed=seed, data_seed=data_seed, threads=threads)
    except ValidationError as exc:
        from arena.errors import format_errors

        raise ArenaError("invalid run options: " + format_errors(exc)) from None
    command = "arena " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        with RichProgress(enabled=not json_out) as progress:
            result = do_run(spec, overrides=overrides, db=db, resume=resume, progress=progress, command=command)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: after the bar has stopped, say how to continue
        again = command if resume else f"{command} --resume"
        rid = getattr(exc, "arena_run_id", None)
        saved = f"run {rid} recorded as interrupted, its checkpoint kept; " if rid else ""
        err.print(f"interrupted — {saved}resume with: {again}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(130) from None
    rec = result.record
    if json_out:
        print(json.dumps(json_summary(rec), default=str))
    else:
        print_summary(rec)


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.4g}{unit}"
    if isinstance(v, int):
        return f"{v:,}{unit}"
    return f"{v}{unit}"


def prior_text(prior: dict[str, Any] | None, task_specific: bool = False) -> str:
    """The hand-written prior of a task-specific model in words (the ``prior_*`` columns, :data:`arena.columns.PRIOR`)."""
    prior = prior or {}
    if prior.get("gzip_bytes") is None and prior.get("learned_bits") is None:
        return "not recorded (task-specific model)" if task_specific else "none (general model: all of it learned)"
    return (f"{_fmt(prior.get('gzip_bytes'), ' B')} gzip, {_fmt(prior.get('lines'))} lines of hand-written skeleton; "
            f"{_fmt(prior.get('learned_bits'), ' bits')} learned")


def print_summary(rec: dict[str, Any]) -> None:
    t = Table(title=cell(f"run {rec['run_id']}: {rec['arch']} on {rec['task']}/{rec['split']} [{rec['status']}]"),
              show_header=False)

    def row(*values: Any) -> None:
        t.add_row(*(cell(v) for v in values))

    t.add_column(style="bold")
    t.add_column()
    p, f, lat = rec["params"], rec["flops"], rec["latency_ms"]
    row("params", f"{_fmt(p['total'])} total, {_fmt(p['non_embedding'])} non-embedding, "
                        f"{_fmt(p['active'])} active")
    row("state size", _fmt(rec["state_size"], " floats"))
    row("FLOPs", "n/a (symbolic)" if f["forward_per_token"] is None else
              f"{_fmt(f['forward_per_token'])}/token, {_fmt(f['forward_per_example'])}/example, "
              f"train {_fmt(f['train_total'])}")
    row("FLOP counter", _fmt(f["counted_forward_per_example"]) + (f"  ({f['note']})" if f.get("note") else ""))
    row("latency", f"p50 {_fmt(lat['p50'], ' ms')}, p90 {_fmt(lat['p90'], ' ms')} (batch 1); "
                         f"{_fmt(lat['throughput_per_s'])} ex/s at batch {_fmt(lat['batch'])}, {lat['threads']} threads")
    row("memory", _fmt(rec["memory_mb"], " MB peak RSS"))
    row("prior", prior_text(rec.get("prior"), bool(rec.get("task_specific"))))
    for c in COLUMNS:  # declared columns without a hand-made row above
        if c.show:
            value: Any = rec
            for key in c.summary_path:
                value = (value or {}).get(key)
            row(c.label, _fmt(value) + f"  ({c.unit})")
    row("training", f"{rec['steps']} steps in {_fmt(rec['train_seconds'], ' s')}")
    for split, ms in rec["scores"].items():
        row(f"score {split}", ", ".join(f"{k} {v:.4f}" for k, v in ms.items() if v is not None))
    row("headline", f"{rec['metric']} on {rec['headline_split']} = {_fmt(rec['score'])} "
                          f"(normalized {_fmt(rec['normalized_score'])})")
    console.print(t)
    shown = _slice_keys(rec["task"])
    for split, keys in rec.get("slices", {}).items():
        for key, groups in keys.items():
            if shown is not None and key not in shown:
                continue
            line = "  ".join(f"{v}: {ms.get(rec['metric'], 0):.3f}" for v, ms in groups.items())
            console.print(f"  {split} by {key}: {line}", highlight=False, markup=False)


def _slice_keys(task: str) -> tuple[str, ...] | None:
    """The slice keys the task declares worth printing (``Task.slice_keys``); None (all) for an unknown task."""
    from arena.registry import get_task

    try:
        return get_task(task).cls.slice_keys
    except Exception:  # noqa: BLE001 - a stored run of a task no longer installed still shows
        return None


@app.command("list")
def list_(
    what: str = typer.Argument(..., help="archs | tasks | runs"),
    json_out: bool = typer.Option(False, "--json"),
    db: str | None = typer.Option(None, "--db"),
    limit: int = typer.Option(50, "--limit", min=1, max=1_000_000, help="runs: how many (newest first)"),
) -> None:
    """List registered architectures or tasks (name, kind, family, version, description), or recorded runs."""
    from arena.errors import suggest
    from arena.registry import ARCHS, TASKS, Lazy

    rows: list[dict[str, Any]] = []
    if what in ("archs", "arch", "architectures"):
        for name in ARCHS.names():
            entry = ARCHS.entry(name)
            try:
                s = ARCHS.get(name)
                rows.append({"name": name, "kind": s.kind, "family": s.family, "version": s.version,
                             "description": s.description, "source": s.source,
                             "plugin": _plugin_label(entry)})
            except ArenaError as exc:
                rows.append({"name": name, "kind": "?", "family": "?", "version": None,
                             "description": f"(failed to load: {exc})", "source": "plugin", "plugin": ""})
    elif what in ("tasks", "task"):
        for name in TASKS.names():
            try:
                s = TASKS.get(name)
                rows.append({"name": name, "kind": s.cls.scoring, "family": s.family, "version": s.version,
                             "description": s.description, "source": s.source, "splits": list(s.cls.split_names)})
            except ArenaError as exc:
                rows.append({"name": name, "kind": "?", "family": "?", "version": None,
                             "description": f"(failed to load: {exc})", "source": "plugin"})
    elif what == "runs":
        from arena.store import list_runs, open_store

        listed = [c for c in COSTS + SCORES if c.list_key]
        engine = open_store(db, readonly=True)
        for r in list_runs(engine, limit=limit):
            rows.append({"run_id": r.id, "status": r.status, "arch": r.arch, "task": r.task, "split": r.split,
                         "size": r.size, "seed": r.seed,
                         **{c.list_key: getattr(r, c.name) for c in listed if c.list_key},
                         "metric": r.metric, "created_at": r.created_at.isoformat() if r.created_at else None})
    else:
        raise ArenaError(f"unknown list target {what!r}{suggest(what, ['archs', 'tasks', 'runs'])}")
    _ = Lazy
    if json_out:
        print(json.dumps(rows, default=str))
        return
    t = Table(title=cell(what))
    for col in rows[0].keys() if rows else ["name"]:
        t.add_column(col)
    for r in rows:
        t.add_row(*[cell(_fmt(v) if not isinstance(v, str) else v) for v in r.values()])
    console.print(t)


def _plugin_label(entry: Any) -> str:
    from arena.registry import Lazy

    if isinstance(entry, Lazy) and entry.dist:
        return f"{entry.dist} {entry.dist_version or ''}".strip()
    return ""


@app.command()
def show(
    run_id: int = typer.Argument(..., min=1, max=MAX_RUN_ID, help="run id"),
    db: str | None = typer.Option(None, "--db"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Show one recorded run with its scores, costs and provenance."""
    from arena.record import full_summary
    from arena.store import get_run, open_store

    engine = open_store(db, readonly=True)
    r = get_run(engine, run_id)
    if r is None:
        raise ArenaError(f"no run {run_id} in {engine.url.render_as_string(hide_password=True)}")
    rec = full_summary(r)
    if json_out:
        print(json.dumps(rec, default=str))
        return
    print_summary(rec)
    if rec["error"]:
        console.print(f"[red]error:[/] {lit(rec['error'])}", highlight=False)
    if rec["provenance"]:
        pv = rec["provenance"]
        console.print(f"provenance: arena {pv['arena_version']}, git {pv['git_commit'] or 'n/a'}"
                      f"{' (dirty)' if pv['git_dirty'] else ''}, python {pv['python']}, "
                      f"torch {pv['packages'].get('torch')}", highlight=False, markup=False)
    console.print(f"reproduce: {rec['reproduce']}", highlight=False, markup=False)


@app.command()
def validate(name: str = typer.Argument(..., help="architecture name")) -> None:
    """Run the conformance checks on an architecture: one line per check; exit 0 only if all pass."""
    from arena.registry import get_arch
    from arena.testing import check_architecture

    spec = get_arch(name)
    results = check_architecture(spec)
    for r in results:
        mark = "[green]PASS[/]" if r.ok else "[red]FAIL[/]"
        console.print(f"{mark} {lit(r.name)}: {lit(r.detail)}", highlight=False)
    failed = [r for r in results if not r.ok]
    if failed:
        raise typer.Exit(1)


@app.command()
def doctor(json_out: bool = typer.Option(False, "--json")) -> None:
    """Report torch, threads, OpenMP wait policy, CUDA and which optional fast kernels are importable."""
    import os

    import torch

    from arena.measure.hardware import cpu_model

    info: dict[str, Any] = {
        "torch": torch.__version__, "threads": torch.get_num_threads(), "cores": os.cpu_count(), "cpu": cpu_model(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "cuda": torch.cuda.is_available(),
        "db_url": __import__("arena.store.engine", fromlist=["resolve_url"]).resolve_url(None),
    }
    try:
        from arena.kernels import available_kernels

        info["kernels"] = available_kernels()
    except ImportError:
        info["kernels"] = {}
    if json_out:
        print(json.dumps(info, default=str))
        return
    for k, v in info.items():
        console.print(f"[bold]{k}[/]: {lit(v)}", highlight=False)
    if info["omp_wait_policy"] != "PASSIVE":
        console.print("[yellow]hint:[/] set OMP_WAIT_POLICY=PASSIVE for stable latency on a shared CPU")
