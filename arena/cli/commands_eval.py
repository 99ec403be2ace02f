"""``arena eval``: run lm-evaluation-harness tasks on the checkpoint of a stored run of a task that declares
:class:`arena.api.HarnessTask` (the ``lm`` task)."""

from __future__ import annotations

import json
import time
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from arena.cli.app import app
from arena.errors import ArenaError
from arena.printing import cell
from arena.validation import MAX_RUN_ID

console = Console()


@app.command("eval")
def eval_(
    run_id: int = typer.Option(..., "--run", min=1, max=MAX_RUN_ID, help="id of a completed run of task 'lm' (arena list runs)"),
    tasks: str | None = typer.Option(None, "--tasks",
                                     help="comma-separated lm-eval tasks; 'val' = held-out bits per character. "
                                          "Default: the run's task's (lm: blimp,lambada_openai)"),
    limit: int | None = typer.Option(None, "--limit", min=1,
                                     help="documents per lm-eval task (per paradigm for BLiMP). Default: all"),
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL (default: $ARENA_DB_URL or sqlite:///results/arena.db)"),
    data_dir: str | None = typer.Option(None, "--data-dir", help="data folder (default: the run's data_dir, "
                                                                 "else $ARENA_DATA_DIR, else Hugging Face ids)"),
    batch_size: int = typer.Option(64, "--batch-size", min=1, max=65_536, help="sequences per forward pass"),
    save: bool = typer.Option(False, "--save", help="store the scores in the run record (replacing those splits)"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Evaluate an existing checkpoint with lm-eval (offline with a data folder) and print the scores."""
    from arena.lm_eval_adapter import load_run_model

    names = None if tasks is None else [t.strip() for t in tasks.split(",") if t.strip()]
    if names is not None and not names:
        raise ArenaError("--tasks is empty")
    t0 = time.perf_counter()
    model, task = load_run_model(run_id, db, data_dir=data_dir)
    names = list(task.harness_names()) if names is None else names
    results = task.harness_scores(task.harness_model(model, batch_size=batch_size), names, limit)
    if save:
        _save(run_id, db, results, limit)
    out = {"run_id": run_id, "tasks": names, "limit": limit, "seconds": round(time.perf_counter() - t0, 3),
           "scores": {n: {k: v for k, v in r["metrics"].items()} for n, r in results.items()},
           "slices": {n: r["slices"] for n, r in results.items() if r.get("slices")}, "saved": save}
    if json_out:
        print(json.dumps(out, default=str))
        return
    t = Table(title=cell(f"run {run_id}: lm-eval" + (f" (limit {limit})" if limit else "")))
    t.add_column("task")
    t.add_column("scores")
    for n, r in results.items():
        t.add_row(cell(n), cell(", ".join(f"{k} {v:.4g}" for k, v in r["metrics"].items() if v is not None)))
    console.print(t)
    for name, r in results.items():
        for key, groups in (r.get("slices") or {}).items():
            _print_extremes(name, key, groups)


def _print_extremes(name: str, key: str, groups: dict[str, dict[str, float]]) -> None:
    """The three best and worst slices (BLiMP's paradigms) by the first metric they report."""
    metric = next((m for ms in groups.values() for m in ms if m != "n"), None)
    ranked = sorted(((k, v[metric]) for k, v in groups.items() if v.get(metric) is not None), key=lambda kv: kv[1])
    if not ranked:
        return
    worst = ", ".join(f"{k} {v:.2f}" for k, v in ranked[:3])
    best = ", ".join(f"{k} {v:.2f}" for k, v in ranked[-3:][::-1])
    console.print(f"  {name} best {key}s ({metric}): {best}\n  {name} worst: {worst}", highlight=False, markup=False)


def _save(run_id: int, db: str | None, results: dict[str, dict[str, Any]], limit: int | None) -> None:
    """Replace the metrics of the evaluated splits in the run record, noting the limit in ``extra.lm_eval``."""
    from arena.record import flatten_metrics
    from arena.store import open_store, repo

    repo.replace_metrics(open_store(db), run_id, list(results), flatten_metrics(results, drop_none=True),
                         {"lm_eval": {split: {"limit": limit} for split in results}}, merge=True)
