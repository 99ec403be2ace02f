"""The attention study behind docs/attention.md (issue 15): analysis, pruning and the committed tables and plots.

Inputs are ordinary runs in one database (trained with ``train.log_attention=true``). Stages (each resumable:
``arena run`` continues an unfinished run, ``arena analyze`` replaces its own metrics, ``arena prune`` skips a
derivation whose hash is already recorded):

* ``train``: the three transformer parents of docs/attention.md (``arena run``, settings in ``PARENTS``; 2 layers,
  d_model 128, 8 heads of 16 for SCAN and the LM, 2 heads of 64 for MQAR), each with ``train.log_attention=true``;
* ``analyze``: ``arena analyze RUN --split val --examples 256`` on every parent run;
* ``prune``: ``arena prune`` of every transformer parent by importance, magnitude and random (3 seeds), keeping
  75 / 50 / 25 % of the heads, without and with a fine-tune of ``--finetune-steps`` (``--methods`` and
  ``--finetune-methods`` choose the methods of each); head importance is measured on ``val``, except on ``lm``,
  whose ``val`` is the scored split: there it is measured on training windows;
* ``latency``: every pruned width of each parent timed side by side with the parent in one process (interleaved
  rounds, minimum of the rounds' medians), the load average printed beside it;
* ``report``: ``results/attention/*.csv`` (one row per run, with provenance) and ``*.png``, and the generated
  tables of ``docs/attention.md`` (between ``<!-- attention:NAME -->`` markers).

``--tasks`` limits every stage to those tasks, and ``--archs`` to those architectures (``transformer``: the parents
and their pruning; ``compressive``: the runs of ``sweeps/attention/compressive.yaml``, analysed and reported only).
``latency`` and ``report`` then replace only those (task, arch) rows of the CSVs already in ``results/attention/``
and keep the others' (another database's runs, with their own run ids and provenance), so one task or one
architecture can be rerun into a fresh database; the tables and the plots are made from the merged rows. The
compressive runs, for example, without touching the transformer rows of the same task::

    arena sweep sweeps/attention/compressive.yaml --db sqlite:///comp.db
    python scripts/attention_study.py --db sqlite:///comp.db --stage analyze --tasks lm --archs compressive
    python scripts/attention_study.py --db sqlite:///comp.db --stage report --tasks lm --archs compressive

    ARENA_DATA_DIR=path/to/data ARENA_CHECKPOINT_DIR=path/to/checkpoints \\
        python scripts/attention_study.py --db sqlite:///path/to/arena.db --stage all
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "attention"  # both moved under --root when it is given
DOC = ROOT / "docs" / "attention.md"
TASKS = ("scan", "mqar", "lm")
ARCHS = ("transformer", "compressive")
# the parents of docs/attention.md: ``arena run`` arguments per task (sizes that reach a real score in minutes of
# one CPU thread; the model and the attention logging are in PARENT_COMMON)
PARENT_COMMON = ["--arch", "transformer", "--d-model", "128", "--n-layers", "2", "--seed", "0", "--threads", "1",
                 "--set", "train.log_attention=true"]
PARENTS = {
    "scan": ["--task", "scan", "--split", "simple", "--set", "arch.n_heads=8", "--lr", "2e-3", "--max-steps", "2000",
             "--set", "train.eval_every=250", "--set", "train.max_eval_examples=500", "--set", "train.early_stop=0.99"],
    # 2 heads of 64, fresh examples every step: the setting that leaves the 1/D plateau
    # (results/attention/mqar_heads2_online.csv); the earlier 8-heads-of-16 parent (lr 3e-3, 2,500 steps) stayed on it
    "mqar": ["--task", "mqar", "--split", "iid", "--set", "arch.n_heads=2", "--set", "train.online=true", "--lr",
             "3e-3", "--max-steps", "3000", "--set", "train.eval_every=250", "--set", "train.max_eval_examples=500",
             "--set", "train.early_stop=0.99"],
    "lm": ["--task", "lm", "--set", "task.benchmarks=[]", "--set", "arch.n_heads=8", "--lr", "3e-3", "--max-steps",
           "1200", "--set", "train.eval_every=200", "--set", "train.max_eval_examples=500"],
}
STATS = ("entropy_norm", "support", "top1", "top4", "offset", "erank_frac")


def parents(engine: Any, arch: str = "transformer") -> dict[str, Any]:
    """The newest completed, non-derived run per task of ``arch`` trained with train.log_attention."""
    from arena.store import list_runs

    out: dict[str, Any] = {}
    for r in list_runs(engine, arch=arch, status="completed"):
        spec = (r.config or {}).get("spec") or {}
        if r.parent_run_id is None and (spec.get("train") or {}).get("log_attention") and r.task not in out:
            out[r.task] = r
    return out


def compressive_runs(engine: Any) -> list[Any]:
    from arena.store import list_runs

    return [r for r in list_runs(engine, arch="compressive", status="completed")
            if ((r.config or {}).get("spec") or {}).get("train", {}).get("log_attention")]


def stage_train(engine: Any, args: argparse.Namespace) -> None:
    import subprocess

    for task in args.tasks if "transformer" in args.archs else []:
        if task in parents(engine):
            print(f"train {task}: a completed parent is recorded, skipped", flush=True)
            continue
        command = [sys.executable, "-m", "arena.cli", "run", *PARENT_COMMON, *PARENTS[task], "--db", args.db, "--json"]
        print(" ".join(command), flush=True)
        subprocess.run(command, check=True)


def stage_analyze(engine: Any, args: argparse.Namespace) -> None:
    from arena.analyze import analyze_run

    runs = list(parents(engine).values()) + compressive_runs(engine)
    for r in [r for r in runs if r.task in args.tasks and r.arch in args.archs]:
        print(f"analyze run {r.id} ({r.arch} on {r.task})", flush=True)
        analyze_run(engine, r.id, "val", args.examples)


def stage_prune(engine: Any, args: argparse.Namespace) -> None:
    from arena.prune_run import prune_run

    for task, r in parents(engine).items():
        if task not in args.tasks or "transformer" not in args.archs:
            continue
        heads = r.config["arch_config"]["n_heads"] * r.config["shape"]["n_layers"]
        keep = ",".join(str(round(heads * f)) for f in (0.75, 0.5, 0.25))
        split = "train" if task == "lm" else "val"  # lm scores val itself: rank the heads on training windows
        for ft in dict.fromkeys((0, args.finetune_steps)):
            methods = args.methods if ft == 0 else args.finetune_methods
            runs = [(m, 0) for m in ("importance", "magnitude") if m in methods]
            runs += [("random", s) for s in args.random_seeds] if "random" in methods else []
            for method, seed in runs:
                command = (f"arena prune {r.id} --method {method} --keep {keep} --seed {seed} "
                           f"--finetune-steps {ft} --examples {args.examples}" + (" --split train" * (split == "train")))
                print(command, flush=True)
                done = prune_run(engine, r.id, method, keep, finetune_steps=ft, seed=seed, split=split,
                                 n_examples=args.examples, command=command)
                print("  ->", [(d["run_id"], d["keep"], "skipped" if d["skipped"] else "new") for d in done],
                      flush=True)


def stage_latency(engine: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Parent and its importance-pruned models (no fine-tune) timed in interleaved rounds in this process."""
    import torch

    from arena.measure.latency import measure_latency
    from arena.store.repo import derived_runs
    from arena.stored import load_run

    rows = []
    for task, r in parents(engine).items():
        if task not in args.tasks or "transformer" not in args.archs:
            continue
        kids = [k for k in derived_runs(engine, r.id) if k.derived_method == "importance" and not k.finetune_steps]
        models = {"parent": load_run(engine, r.id).model}
        models |= {f"keep {k.heads_kept}": load_run(engine, k.id).model for k in kids}
        seq_len = (r.extra or {}).get("latency_seq_len") or 64
        times: dict[str, list[float]] = {n: [] for n in models}
        torch.set_num_threads(1)
        for _ in range(args.latency_rounds):
            for name, m in models.items():
                times[name].append(measure_latency(m, seq_len, 16, 0.2)["p50_ms"])
        load = os.getloadavg()[0]
        for name, ts in times.items():
            rows.append({"task": task, "parent_run_id": r.id, "model": name, "seq_len": seq_len,
                         "p50_ms_min_of_rounds": min(ts), "ratio_to_parent": min(ts) / min(times["parent"]),
                         "rounds": len(ts), "loadavg_1min": round(load, 2)})
        print(json.dumps(rows[-len(times):]), flush=True)
    path = OUT / "latency_side_by_side.csv"
    _write_csv(path, merge_rows(read_rows(path), rows, args.tasks, args.archs))
    return rows


# -- report ---------------------------------------------------------------------------------------------------------
def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


# CSV cells that stay text when rows are read back (a hash or commit of digits and one "e" would parse as a float)
TEXT_COLUMNS = {"arch", "task", "variant", "metric", "method", "model", "config_hash", "git_commit", "command"}


def _cell(key: str, value: str) -> Any:
    """A CSV cell back as what ``_write_csv`` wrote: "" -> None, True/False, int, float, else text."""
    if value == "":
        return None
    if key in TEXT_COLUMNS:
        return value
    if value in ("True", "False"):
        return value == "True"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: _cell(k, v) for k, v in row.items()} for row in csv.DictReader(f)]


def _arch(row: dict[str, Any]) -> str:
    """A row's architecture; rows without an ``arch`` column (heads, pruning, latency) are transformer parents'."""
    return row.get("arch") or "transformer"


def _asked(r: dict[str, Any], tasks: list[str], archs: list[str] | None) -> bool:
    """A row of one of ``tasks`` (and of ``archs``, default all): a row a report of those replaces."""
    return r["task"] in tasks and (archs is None or _arch(r) in archs)


def merge_rows(old: list[dict[str, Any]], new: list[dict[str, Any]], tasks: list[str],
               archs: list[str] | None = None) -> list[dict[str, Any]]:
    """``old`` with the rows of ``tasks`` (and of ``archs``, default all) replaced by ``new``'s rows of those, group
    by group, a group being one (task, arch) (at the place of the group's first old row, else at the end); every
    other row is kept as it is, whatever ``new`` holds for it."""
    fresh: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in new:
        if _asked(r, tasks, archs):
            fresh.setdefault((r["task"], _arch(r)), []).append(r)
    out: list[dict[str, Any]] = []
    placed: set[tuple[str, str]] = set()
    for r in old:
        key = (r["task"], _arch(r))
        if not _asked(r, tasks, archs):
            out.append(r)
        elif key not in placed:  # the group's first old row: all its new rows here (none: the group is dropped)
            out += fresh.get(key, [])
            placed.add(key)
    return out + [r for key, rows in fresh.items() if key not in placed for r in rows]


def uncovered(old_sets: Any, new_sets: Any, tasks: list[str], archs: list[str] | None = None) -> str | None:
    """Why a report of ``tasks`` (x ``archs``) would lose committed rows: a (task, arch) group that is asked for and
    has rows in the CSVs (``old_sets``) but none in the database (``new_sets``) would be replaced by nothing, e.g.
    a report against a database of other tasks. None when every such group is held."""
    held = {(r["task"], _arch(r)) for rows in new_sets for r in rows}
    lost = sorted({(r["task"], _arch(r)) for rows in old_sets for r in rows if _asked(r, tasks, archs)} - held)
    if not lost:
        return None
    return "the database holds no runs of " + ", ".join(f"{t} ({a})" for t, a in lost)


def _provenance(r: Any) -> dict[str, Any]:
    p = r.provenance
    return {"run_id": r.id, "config_hash": r.config_hash[:16], "git_commit": p.git_commit if p else None,
            "git_dirty": p.git_dirty if p else None,
            "command": re.sub(r"--db \S+", "--db DB_URL", p.command) if p and p.command else None}  # no local paths


def analysis_rows(engine: Any) -> list[dict[str, Any]]:
    """One row per (run, layer, variant) from ``extra.attention.val`` and the layer metrics."""
    from arena.store import get_run

    rows = []
    for r in list(parents(engine).values()) + compressive_runs(engine):
        run = get_run(engine, r.id)
        layer_metrics: dict[tuple[str, str], float] = {}
        for m in run.metrics:
            if m.split == "attention:val" and m.slice_key == "layer":
                layer_metrics[(m.slice_value, m.name)] = m.value
        for layer in sorted({k[0] for k in layer_metrics}, key=int):
            for variant, suffix in (("trained", ""), ("init", "@init"), ("uniform", "@uniform")):
                row = {"arch": r.arch, "task": r.task, "reg_lambda": r.config["arch_config"].get("reg_lambda"),
                       "layer": int(layer), "variant": variant}
                for stat in ("entropy_norm", "support", "top1", "top4", "offset", "erank", "n90", "n99", "bound"):
                    row[stat] = layer_metrics.get((layer, stat + suffix))
                rows.append(row | _provenance(run))
    return rows


def head_rows(engine: Any) -> list[dict[str, Any]]:
    from arena.store import get_run

    rows = []
    for r in parents(engine).values():
        run = get_run(engine, r.id)
        by_head: dict[str, dict[str, float]] = {}
        for m in run.metrics:
            if m.split == "attention:val" and m.slice_key == "head":
                by_head.setdefault(m.slice_value, {})[m.name] = m.value
        for key, stats in sorted(by_head.items()):
            li, hi = key.split(".")
            rows.append({"task": r.task, "layer": int(li), "head": int(hi), **stats, "run_id": r.id})
    return rows


def pruning_rows(engine: Any) -> list[dict[str, Any]]:
    from arena.store import get_run
    from arena.store.repo import derived_runs

    rows = []
    for task, r in parents(engine).items():
        heads = r.config["arch_config"]["n_heads"] * r.config["shape"]["n_layers"]
        for run in [get_run(engine, r.id)] + [get_run(engine, k.id) for k in derived_runs(engine, r.id)]:
            d = (run.config or {}).get("derived") or {}
            rows.append({"task": task, "metric": run.metric, "higher_is_better": run.higher_is_better,
                         "method": run.derived_method or "parent", "seed": d.get("seed"),
                         "heads_kept": run.heads_kept if run.derived_method else heads, "heads_total": heads,
                         "finetune_steps": run.finetune_steps or 0, "score": run.score,
                         "params_total": run.params_total, "flops_per_example": run.flops_forward_per_example,
                         "flops_counted_per_example": run.flops_counted_per_example,
                         "latency_p50_ms_at_record": run.latency_p50_ms, "train_seconds": run.train_seconds,
                         "cpu_seconds": (run.extra or {}).get("cpu_seconds"), "parent_run_id": r.id}
                        | _provenance(run))
    return rows


def curve_rows(engine: Any) -> list[dict[str, Any]]:
    rows = []
    for r in list(parents(engine).values()) + compressive_runs(engine):
        for point in (r.extra or {}).get("attention_curve") or []:
            at = [c for c in (r.extra or {}).get("curve", []) if c.get("step") == point["step"]]
            val = next((c["val"] for c in at if c.get("val") is not None), None)
            loss = next((c["loss"] for c in at if c.get("loss") is not None), None)  # training loss (nats/token)
            for li, lay in enumerate(point["layers"]):
                row = {"arch": r.arch, "task": r.task, "reg_lambda": r.config["arch_config"].get("reg_lambda"),
                       "step": point["step"], "layer": li, "val": val, "train_loss": loss, "run_id": r.id}
                for stat in ("entropy_norm", "top1", "offset", "erank", "bound"):
                    row[stat] = lay["layer"].get(stat)
                    row[f"{stat}_uniform"] = lay["uniform"].get(stat)
                row["head_entropy_min"] = min(h["entropy_norm"] for h in lay["heads"])
                row["head_entropy_max"] = max(h["entropy_norm"] for h in lay["heads"])
                rows.append(row)
    return rows


def plot_curves(rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tf = [r for r in rows if r["arch"] == "transformer"]
    tasks = [t for t in TASKS if any(r["task"] == t for r in tf)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        sub = [r for r in tf if r["task"] == task]
        for li in sorted({r["layer"] for r in sub}):
            pts = sorted((r["step"], r["entropy_norm"], r["head_entropy_min"], r["head_entropy_max"]) for r in sub
                         if r["layer"] == li)
            steps = [p[0] for p in pts]
            line, = ax.plot(steps, [p[1] for p in pts], marker="o", ms=3, label=f"layer {li} (mean of heads)")
            ax.fill_between(steps, [p[2] for p in pts], [p[3] for p in pts], alpha=0.15, color=line.get_color())
        ax.axhline(1.0, color="gray", ls="--", lw=1, label="uniform")
        ax.set_title(f"transformer on {task}")
        ax.set_xlabel("training step (0 = initialisation)")
        ax.set_ylim(0, 1.05)
    axes[0][0].set_ylabel("normalised attention entropy")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(OUT / "entropy_over_training.png", dpi=120)
    comp = [r for r in rows if r["arch"] == "compressive"]
    if comp:
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        for lam in sorted({r["reg_lambda"] for r in comp}):
            for li in sorted({r["layer"] for r in comp}):
                pts = sorted((r["step"], r["entropy_norm"]) for r in comp if r["reg_lambda"] == lam and r["layer"] == li)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3,
                        ls="-" if lam == 0 else "--", label=f"lambda={lam:g}, layer {li}")
        ax.axhline(1.0, color="gray", ls=":", lw=1, label="uniform")
        ax.set_title("compressive on lm: entropy regulariser lambda = 0 vs > 0")
        ax.set_xlabel("training step (0 = initialisation)")
        ax.set_ylabel("normalised attention entropy")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(OUT / "compressive_lambda.png", dpi=120)


def replace_block(text: str, name: str, body: str) -> str:
    pat = re.compile(rf"(<!-- attention:{name} -->\n).*?(<!-- /attention:{name} -->)", re.S)
    if not pat.search(text):
        return text
    return pat.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text)


def stage_report(engine: Any, args: argparse.Namespace) -> None:
    from attention_tables import (  # same folder
        claim_table,
        compressive_table,
        curve_table,
        entropy_table,
        pruning_table,
        rank_table,
    )

    OUT.mkdir(parents=True, exist_ok=True)
    fresh = {"analysis_layers": analysis_rows(engine), "analysis_heads": head_rows(engine),
             "pruning": pruning_rows(engine), "curves": curve_rows(engine)}
    old = {name: read_rows(OUT / f"{name}.csv") for name in fresh}
    why = uncovered(old.values(), fresh.values(), args.tasks, args.archs)
    if why:
        raise SystemExit(f"report: {why}; nothing was replaced (the committed rows stay). Pass --tasks/--archs "
                         "for what this database holds.")
    merged = {}
    for name, rows in fresh.items():
        merged[name] = merge_rows(old[name], rows, args.tasks, args.archs)
        _write_csv(OUT / f"{name}.csv", merged[name])
    analysis, heads, prune, curves = (merged[n] for n in ("analysis_layers", "analysis_heads", "pruning", "curves"))
    plot_curves(curves)
    latency = read_rows(OUT / "latency_side_by_side.csv")
    if DOC.exists():
        text = DOC.read_text()
        text = replace_block(text, "entropy", entropy_table(analysis))
        text = replace_block(text, "rank", rank_table(analysis, heads))
        text = replace_block(text, "pruning", pruning_table(prune, latency))
        text = replace_block(text, "curves", curve_table(curves))
        text = replace_block(text, "claim", claim_table(prune, latency))
        text = replace_block(text, "compressive", compressive_table(curves))
        DOC.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--stage", choices=["train", "analyze", "prune", "latency", "report", "all"], default="all")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--archs", default=",".join(ARCHS), help="transformer (parents, pruning), compressive (analysis)")
    ap.add_argument("--examples", type=int, default=256)
    ap.add_argument("--finetune-steps", type=int, default=200)
    ap.add_argument("--random-seeds", default="0,1,2")
    ap.add_argument("--methods", default="importance,magnitude,random", help="pruning methods without fine-tune")
    ap.add_argument("--finetune-methods", default="importance,magnitude,random",
                    help="pruning methods with the --finetune-steps fine-tune")
    ap.add_argument("--latency-rounds", type=int, default=5)
    ap.add_argument("--root", help="write results/attention/ and docs/attention.md under this folder (default: the "
                                   "repository)")
    args = ap.parse_args()
    if args.root:
        global OUT, DOC
        OUT, DOC = Path(args.root) / "results" / "attention", Path(args.root) / "docs" / "attention.md"
    args.tasks, args.archs = args.tasks.split(","), args.archs.split(",")
    args.random_seeds = [int(s) for s in args.random_seeds.split(",")]
    args.methods, args.finetune_methods = args.methods.split(","), args.finetune_methods.split(",")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from arena.store.engine import open_store

    engine = open_store(args.db)
    stages = ["train", "analyze", "prune", "latency", "report"] if args.stage == "all" else [args.stage]
    for stage in stages:
        globals()[f"stage_{stage}"](engine, args)


if __name__ == "__main__":
    main()
