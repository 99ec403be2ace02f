"""Attention commands: ``arena analyze`` (does attention compress by itself?) and ``arena prune`` (remove heads)."""

from __future__ import annotations

import json
import shlex
import sys
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from arena.cli.app import app
from arena.printing import cell, lit
from arena.validation import MAX_RUN_ID, finite_option

console = Console()


@app.command()
def analyze(
    run_id: int = typer.Argument(..., min=1, max=MAX_RUN_ID, help="id of a completed run of an attention architecture"),
    split: str = typer.Option("val", "--split", help="split whose examples are analysed"),
    examples: int = typer.Option(256, "--examples", min=1, max=10_000_000, help="examples analysed (the first N of the split)"),
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL (default: $ARENA_DB_URL or sqlite:///results/arena.db)"),
    no_save: bool = typer.Option(False, "--no-save", help="print only; do not store the metrics in the run"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Per layer and head: attention entropy, support, top-1/top-4 mass, mean offset and effective rank, against
    the same model at initialisation and uniform attention. Stored as metrics of the run (split attention:SPLIT)."""
    from arena.analyze import analyze_run
    from arena.store import open_store

    engine = open_store(db)
    with console.status(f"analysing run {run_id} on {examples} {lit(split)} examples", spinner="dots") if not json_out \
            else _null():
        out = analyze_run(engine, run_id, split, examples, save=not no_save)
    if json_out:
        print(json.dumps(out, default=str))
        return
    _print_report(out)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: Any) -> None:
        return None


def _print_report(out: dict[str, Any]) -> None:
    t = Table(title=cell(f"run {out['run_id']}: {out['arch']} on {out['task']}, split {out['split']} "
                         f"({out['n_examples']} examples, {out['n_queries']:,} queries); (init) = same seed "
                         "untrained, (unif) = uniform attention"))
    for col in ("head", "entropy", "(init)", "support", "top-1", "top-4", "offset", "erank", "(init)", "(unif)",
                "bound", "n90", "n99"):
        t.add_column(col, justify="right")
    nan = float("nan")
    for li, lay in enumerate(out["layers"]):
        tr, ini, uni = lay["trained"], lay["init"], lay["trained"]["uniform"]
        uh = uni.get("head_erank") or []
        rows = [(f"{li}.{hi}", h, ini["heads"][hi], uh[hi] if hi < len(uh) else nan) for hi, h in enumerate(tr["heads"])]
        if tr["layer"].get("entropy_norm") is not None:
            rows.append((f"{li} all", tr["layer"], ini["layer"], uni.get("erank", nan)))
        for i, (name, h, hi, u) in enumerate(rows):
            t.add_row(cell(name), f"{h['entropy_norm']:.3f}", f"{hi['entropy_norm']:.3f}", f"{h['support']:.2f}",
                      f"{h['top1']:.3f}", f"{h['top4']:.3f}", f"{h['offset']:.2f}", f"{h['erank']:.2f}",
                      f"{hi['erank']:.2f}", f"{u:.2f}", str(h["bound"]), str(h["n90"]), str(h["n99"]),
                      end_section=i == len(rows) - 1)
    console.print(t)
    s = out["summary"]
    console.print("whole model (layer means): normalised entropy trained {:.3f}, init {:.3f}, uniform 1; "
                  "erank / (heads x d_head) trained {:.3f}, init {:.3f}, uniform {:.3f}".format(
                      s["trained"]["entropy_norm"], s["init"]["entropy_norm"], s["trained"].get("erank_frac", 0),
                      s["init"].get("erank_frac", 0), s["uniform"].get("erank_frac", 0)), highlight=False)


@app.command()
def prune(
    run_id: int = typer.Argument(..., min=1, max=MAX_RUN_ID, help="id of a completed run of an architecture with attention heads"),
    method: str = typer.Option(..., "--method", help="importance (Michel et al. 2019) | magnitude | random"),
    keep: str = typer.Option(..., "--keep", help="comma-separated numbers of heads to keep, e.g. 12,8,4"),
    finetune_steps: int = typer.Option(0, "--finetune-steps", min=0, max=100_000_000, help="training steps after pruning"),
    finetune_lr: float | None = typer.Option(None, "--finetune-lr", callback=finite_option(0, 10, lo_open=True), help="fine-tune lr (default: the parent's "
                                                                          "final lr, lr x min_lr_ratio)"),
    seed: int = typer.Option(0, "--seed", min=0, max=2**31 - 1, help="seed of the random order (method random)"),
    split: str = typer.Option("val", "--split", help="held-out split for head importance (never test)"),
    examples: int = typer.Option(256, "--examples", min=1, max=10_000_000, help="examples for head importance"),
    threads: int | None = typer.Option(None, "--threads", min=1, max=1024, help="torch threads (default: the parent run's)"),
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL (default: $ARENA_DB_URL or sqlite:///results/arena.db)"),
    json_out: bool = typer.Option(False, "--json", help="quiet; print one JSON object as the last line"),
) -> None:
    """Remove attention heads for real (smaller projections), evaluate and measure, and record every pruned
    model as a run derived from RUN_ID."""
    from arena.cli.commands_core import RichProgress
    from arena.errors import ArenaError, suggest
    from arena.prune import METHODS
    from arena.prune_run import prune_run
    from arena.record import summary as run_record
    from arena.store import get_run, open_store

    if method not in METHODS:
        raise ArenaError(f"unknown --method {method!r}{suggest(method, METHODS)}")
    if split == "test":
        raise ArenaError("--split test: head importance must come from held-out data other than the test split")
    engine = open_store(db)
    command = "arena " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    with RichProgress(enabled=not json_out) as progress:
        done = prune_run(engine, run_id, method, keep, finetune_steps=finetune_steps, finetune_lr=finetune_lr,
                         seed=seed, split=split, n_examples=examples, progress=progress, command=command,
                         threads=threads)
    rows = []
    for d in done:
        rec = run_record(get_run(engine, d["run_id"]))
        rows.append({"run_id": d["run_id"], "skipped": d["skipped"], "heads_kept": d["keep"],
                     "score": rec["score"], "metric": rec["metric"], "params": rec["params"]["total"],
                     "flops_per_example": rec["flops"]["forward_per_example"], "latency_p50_ms": rec["latency_ms"]["p50"]})
    if json_out:
        print(json.dumps({"parent_run_id": run_id, "method": method, "finetune_steps": finetune_steps,
                          "runs": rows}, default=str))
        return
    t = Table(title=cell(f"run {run_id} pruned by {method}" + (f", fine-tuned {finetune_steps} steps"
                                                               if finetune_steps else "")))
    for col in ("run", "heads kept", "score", "params", "FLOPs/example", "latency p50 ms"):
        t.add_column(col)
    for r in rows:
        t.add_row(f"{r['run_id']}{' (recorded before)' if r['skipped'] else ''}", str(r["heads_kept"]),
                  "n/a" if r["score"] is None else f"{r['score']:.4f}", f"{r['params']:,}",
                  "n/a" if r["flops_per_example"] is None else f"{r['flops_per_example']:.3g}",
                  "n/a" if r["latency_p50_ms"] is None else f"{r['latency_p50_ms']:.3g}")
    console.print(t)
