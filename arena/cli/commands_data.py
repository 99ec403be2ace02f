"""``arena data``: use a task's data without training (export a split to files, show a few examples)."""

from __future__ import annotations

from pathlib import Path

import typer

from arena.cli.app import app

data_app = typer.Typer(help="Task data without training: export splits, show examples.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _load(task: str, split: str | None, sets: list[str] | None, seed: int):
    from arena.data import load_task, parse_overrides

    return load_task(task, split=split, seed=seed, **parse_overrides(sets or []))


def _fail(exc: Exception) -> None:
    """Print an ArenaError cleanly and exit with its code, under ``main`` and under CliRunner alike (SystemExit,
    because ``typer.Exit`` in non-standalone mode only becomes a return value)."""
    from rich.console import Console

    from arena.printing import error_line

    Console(stderr=True).print(error_line(exc), highlight=False)
    raise SystemExit(getattr(exc, "exit_code", 2))


@data_app.command("export")
def export(
    task: str = typer.Argument(..., help="registered task name, e.g. scan"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder (created if missing)"),
    split: str | None = typer.Option(None, "--split", "-s", help="the task's split (default: the task's default)"),
    sets: list[str] | None = typer.Option(None, "--set", help="task config override KEY=VALUE (repeatable)"),
    seed: int = typer.Option(0, "--seed", help="data seed. Default: 0"),
) -> None:
    """Write a split's examples: SCAN as train.txt/test.txt in the official format, others as <set>.jsonl."""
    from arena.data import export_task
    from arena.errors import ArenaError
    from arena.validation import check_out_dir

    try:
        t = _load(task, split, sets, seed)
        check_out_dir(out, "--out")
        try:
            written = export_task(t, out)
        except OSError as exc:
            raise ArenaError(f"--out {out}: cannot write: {exc.strerror or exc}") from None
    except ArenaError as exc:
        _fail(exc)
    for name, n in written.items():
        typer.echo(f"{out / name}\t{n} lines")


@data_app.command("show")
def show(
    task: str = typer.Argument(..., help="registered task name"),
    split: str | None = typer.Option(None, "--split", "-s", help="the task's split"),
    which: str = typer.Option("train", "--which", help="which set of the split (train, val, test, ...)"),
    n: int = typer.Option(5, "-n", help="examples to print. Default: 5"),
    sets: list[str] | None = typer.Option(None, "--set", help="task config override KEY=VALUE (repeatable)"),
    seed: int = typer.Option(0, "--seed", help="data seed. Default: 0"),
) -> None:
    """Print sizes of every set and the first N examples of one."""
    import json

    from arena.errors import ArenaError, suggest

    try:
        t = _load(task, split, sets, seed)
        splits = t.splits
        if which not in splits:
            raise ArenaError(f"split {t.split!r} of task {task!r} has no set {which!r}{suggest(which, splits)}")
    except ArenaError as exc:
        _fail(exc)
    typer.echo(f"{t.name} v{t.version} split={t.split} scoring={t.scoring} metric={t.metric} chance={t.chance}")
    typer.echo("  ".join(f"{k}: {len(v)}" for k, v in splits.items()) + f"  max_seq_len: {t.max_seq_len}")
    for ex in splits[which][:n]:
        typer.echo(json.dumps(t.describe_example(ex)))
