"""The headline tables and plot (issue 18), regenerated from the run database.

The runs are ordinary arena runs made by the sweeps in ``sweeps/headline/`` (``arena sweep ... --db URL``); this
script only reads them. For every run it writes one CSV row with provenance (run id, config hash, git commit and
dirty flag, arena version, the reproducing ``arena run`` command, CPU seconds, stop reason, the validation curve
as ``step:val`` pairs) and then:

* selects the learning rate per (model, task, split) on **seed 0's validation exact match** (ties: fewer steps);
  seeds 1-2 are run at that learning rate only. Test scores are never used to choose anything;
* renders the tables between the ``<!-- table:NAME -->`` / ``<!-- /table:NAME -->`` markers of ``--doc``
  (``converged``: in-distribution validation and ``simple`` test; ``generalisation``: ``length`` and
  ``addprim_jump`` test; ``shift``: the control grammar ``scan-shift``);
* plots test exact match against parameters (log x), one panel per split, the state machine as one point with its
  hand-written prior marked (``--plot``).

Usage::

    python scripts/headline.py --db sqlite:///path/to/arena.db            # CSV + tables + plot
    python scripts/headline.py --db ... --no-plot --doc /tmp/h.md         # tables elsewhere
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("simple", "length", "addprim_jump")
TASKS = ("scan", "scan-shift")
FIELDS = ["model", "arch", "task", "split", "seed", "lr", "lr_selected", "d_model", "n_layers", "params_total",
          "prior_skeleton_lines", "prior_skeleton_gzip_bytes", "prior_learned_bits", "max_steps", "steps",
          "stop_reason", "early_stop", "patience", "val_exact_match", "test_exact_match", "n_test", "converged", "val_curve",
          "train_seconds", "cpu_seconds", "latency_p50_ms", "flops_forward_per_token", "run_id", "config_hash",
          "status", "git_commit", "git_dirty", "arena_version", "hardware", "finished_at", "sweep_command",
          "reproduce", "earlier", "source"]
CONVERGED = 0.99  # the protocol's in-distribution target (validation exact match)


def model_name(rec: dict[str, Any]) -> str:
    shape = rec["config"]["shape"]
    if rec["arch"] == "state-machine":
        return "state-machine (LexSM-164)"
    if rec["arch"] == "rnn-lm":
        return f"lstm {shape['n_layers']}x{shape['d_model']}"
    return f"{rec['arch']} d{shape['d_model']}x{shape['n_layers']}"


def prior(rec: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(skeleton lines, skeleton gzip bytes, learned bits) of a task-specific model; blanks for general models."""
    recorded = rec.get("prior") or {}  # the run's prior columns (arena.columns.PRIOR)
    cols = [recorded.get(k) for k in ("lines", "gzip_bytes", "learned_bits")]
    if any(c is not None for c in cols):
        return tuple(cols)  # type: ignore[return-value]
    extra = rec.get("extra") or {}
    sk = extra.get("skeleton_size") or {}
    if not sk:
        return "", "", ""
    return sk.get("lines", ""), sk.get("gzip_bytes", ""), extra.get("n_learned_bits", "")


def to_row(rec: dict[str, Any], n_test: int | None = None) -> dict[str, Any]:
    from arena.runner import reproduce_command

    spec, extra = rec["config"]["spec"], rec.get("extra") or {}
    train, prov = spec["train"], rec.get("provenance") or {}
    lines, gz, bits = prior(rec)
    val = (rec["scores"].get("val") or {}).get("exact_match")
    test = (rec["scores"].get("test") or {}).get("exact_match")
    custom = rec["arch"] == "state-machine"
    return {
        "model": model_name(rec), "arch": rec["arch"], "task": rec["task"], "split": rec["split"],
        "seed": rec["seed"], "lr": "" if custom else train["lr"], "d_model": rec["config"]["shape"]["d_model"],
        "n_layers": rec["config"]["shape"]["n_layers"], "params_total": rec["params"]["total"],
        "prior_skeleton_lines": lines, "prior_skeleton_gzip_bytes": gz, "prior_learned_bits": bits,
        "max_steps": train["max_steps"], "steps": rec["steps"],
        "stop_reason": ("train_em_1.0" if custom and extra.get("train_exact_match") == 1.0 else
                        extra.get("stop_reason") or "budget"),
        "early_stop": "" if custom else train.get("early_stop"), "patience": "" if custom else train.get("patience"),
        "val_exact_match": val, "test_exact_match": test, "n_test": n_test,
        "converged": val is not None and val >= CONVERGED,
        "val_curve": " ".join(f"{p['step']}:{p['val']:.3f}" for p in extra.get("curve") or [] if "val" in p), "train_seconds": round(rec["train_seconds"] or 0, 1),
        "cpu_seconds": round(extra["cpu_seconds"], 1) if extra.get("cpu_seconds") is not None else "",
        "latency_p50_ms": rec["latency_ms"]["p50"], "flops_forward_per_token": rec["flops"]["forward_per_token"],
        "run_id": rec["run_id"], "config_hash": rec["config_hash"], "status": rec["status"],
        "git_commit": prov.get("git_commit"), "git_dirty": prov.get("git_dirty"),
        "arena_version": prov.get("arena_version"), "hardware": (rec.get("hardware") or {}).get("cpu", ""),
        "finished_at": rec.get("finished_at"), "sweep_command": _no_db_url(prov.get("command")),
        "reproduce": reproduce_command(rec), "source": "database",
    }


def _no_db_url(command: str | None) -> str | None:
    """A recorded command without its database URL (a machine-local path or credentials do not belong in a CSV)."""
    import re

    return None if command is None else re.sub(r"--db(=|\s+)\S+", "--db $ARENA_DB_URL", command)


def load(db: str) -> list[dict[str, Any]]:
    from arena.runner import run_record
    from arena.store import get_run, list_runs, open_store

    engine = open_store(db)
    rows = []
    for run in list_runs(engine, status="completed"):
        if run.task in TASKS and run.split in SPLITS:
            full = get_run(engine, run.id)
            n_test = next((m.n for m in full.metrics if m.split == "test" and m.name == "exact_match"
                           and m.slice_key is None), None)
            rows.append(to_row(run_record(full), n_test))
    return sorted(rows, key=lambda r: (r["task"], r["split"], int(r["params_total"]), r["model"], r["seed"],
                                       str(r["lr"])))


KEPT = ("results/headline_ladder_first.csv",)


def kept_rows(path: str) -> list[dict[str, Any]]:
    """Rows this script wrote earlier for runs of the same protocol whose database was not kept (the first ladder
    sweep): read back with their provenance, typed as :func:`to_row` types them, ``source`` naming the file. They
    are not marked †: they are runs of this protocol, only their database is gone."""
    full = Path(path) if Path(path).is_absolute() else ROOT / path
    if not full.exists():
        return []
    out = []
    for r in csv.DictReader(full.open()):
        if r.get("earlier"):
            continue
        row: dict[str, Any] = {k: r.get(k, "") for k in FIELDS}
        row.update(seed=int(r["seed"]), params_total=int(r["params_total"]), steps=int(r["steps"]),
                   lr=float(r["lr"]) if r["lr"] else "", converged=r["converged"] == "True", source=path)
        for k in ("val_exact_match", "test_exact_match"):
            row[k] = float(r[k]) if r[k] else None
        out.append(row)
    return out


def unfinished_runs(db: str) -> list[dict[str, Any]]:
    """Gradient-trained runs of the headline tasks that have not finished (still training, stopped or killed): the
    validation curve their last checkpoint holds, with provenance. The 6.5M Transformer is one."""
    from arena.errors import ArenaError
    from arena.store import list_runs, open_store
    from arena.stored import checkpoint_file
    from arena.train import read_checkpoint

    engine = open_store(db)
    out = []
    for run in list_runs(engine):
        if run.status == "completed" or run.task not in TASKS or run.split not in SPLITS:
            continue
        try:  # its recorded path, else the config hash's place under $ARENA_CHECKPOINT_DIR
            path = checkpoint_file(run)
        except ArenaError:
            continue
        state = read_checkpoint(path).get("state") or {}
        curve = [p for p in state.get("curve") or [] if "val" in p]
        cfg = run.config or {}
        shape, train = cfg.get("shape") or {}, (cfg.get("spec") or {}).get("train") or {}
        out.append({"model": model_name({"arch": run.arch, "config": cfg}), "arch": run.arch, "task": run.task,
                    "split": run.split, "seed": run.seed, "lr": train.get("lr"), "d_model": shape.get("d_model"),
                    "n_layers": shape.get("n_layers"), "params_total": run.params_total or _params(run.arch, cfg),
                    "status": run.status,
                    "steps": state.get("step"), "max_steps": train.get("max_steps"),
                    "seconds": round(float(state.get("seconds") or 0), 1),
                    "val_curve": " ".join(f"{p['step']}:{p['val']:.3f}" for p in curve),
                    "best_val": max((p["val"] for p in curve), default=None),
                    "run_id": run.id, "config_hash": run.config_hash})
    return out


def shift_ceilings(seeds: tuple[int, ...] = (0, 1, 2)) -> list[dict[str, Any]]:
    """What the state machine's skeleton can reach on each ``scan-shift`` test set: the share of commands with at
    most one conjunction (no lexicon does better: the skeleton rejects a second conjunction), and the exact match
    of SCAN's own lexicon, i.e. of SCAN's interpretation function on those commands (the skeleton with SCAN's
    lexicon computes it exactly, tests/architectures/test_state_machine.py): every 0-conjunction command, every
    'after', and an 'and' only where interleaving equals concatenation. Per seed: the seed draws the split's
    commands."""
    from arena.data import load_task
    from arena.tasks.scan_grammar import interpret

    out = []
    for split, seed in ((s, k) for s in SPLITS for k in seeds):
        task = load_task("scan-shift", split=split, seed=seed)
        words = task.vocab.tokens
        n = at_most_one = scan_lex = 0
        for e in task.splits["test"]:
            cmd = " ".join(words[i] for i in e.tokens[1: e.prompt_len - 1])
            target = [words[i] for i in e.tokens[e.prompt_len: -1]]
            parsable = sum(w in ("and", "after") for w in cmd.split()) <= 1
            n += 1
            at_most_one += parsable
            scan_lex += parsable and interpret(cmd) == target
        out.append({"split": split, "seed": seed, "n_test": n, "at_most_one_conj": at_most_one / n,
                    "scan_lexicon": scan_lex / n})
    return out


def ceiling_table(ceilings: list[dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    """Per split: mean (per seed) of the two ceilings and of the state machine's learned test exact match."""
    def cell(vals: list[float]) -> str:
        each = ", ".join(f"{100 * v:.1f}" for v in vals)
        return f"**{100 * statistics.mean(vals):.1f}**" + (f" ({each})" if len(vals) > 1 else "")

    lines = ["| scan-shift split | test commands | ≤ 1 conjunction (ceiling for any lexicon) | SCAN's lexicon | "
             "state machine, learned (test EM) |", "|---|---:|---:|---:|---:|"]
    for split in SPLITS:
        cs = sorted((c for c in ceilings if c["split"] == split), key=lambda c: c["seed"])
        if not cs:
            continue
        runs = {int(r["seed"]): r for r in _chosen(rows, "state-machine (LexSM-164)", "scan-shift", split)}
        learned = [float(runs[c["seed"]]["test_exact_match"]) for c in cs if c["seed"] in runs]
        n = sorted({c["n_test"] for c in cs})
        lines.append(f"| {split} | {'–'.join(f'{k:,}' for k in (n[0], n[-1]) if k) if len(n) > 1 else f'{n[0]:,}'} | "
                     f"{cell([c['at_most_one_conj'] for c in cs])} | {cell([c['scan_lexicon'] for c in cs])} | "
                     f"{cell(learned) if learned else '–'} |")
    return "\n".join(lines)


def _params(arch: str, config: dict[str, Any]) -> int | None:
    """Analytic parameters of a run that has not recorded its own yet (they are written when it completes)."""
    from arena.api import ModelShape
    from arena.blocks import analytic_params
    from arena.registry import get_arch

    try:
        spec = get_arch(arch)
        return analytic_params(spec, ModelShape(**config["shape"]),
                               spec.config.model_validate(config.get("arch_config", {})))["total"]
    except Exception:  # an unknown or changed architecture: leave the cell blank rather than guess
        return None


def unfinished_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | params | task / split | LR | steps done / cap | best val EM | validation curve (step: val EM) "
             "| status |", "|---|---:|---|---:|---|---:|---|---|"]
    for r in rows:
        best = "–" if r["best_val"] is None else f"**{100 * r['best_val']:.1f}**"
        curve = ", ".join(f"{s}: {100 * float(v):.1f}" for s, v in (p.split(":") for p in r["val_curve"].split()))
        params = f"{int(r['params_total']):,}" if r["params_total"] else "–"
        lines.append(f"| {r['model']} | {params} | {r['task']} / {r['split']} | {r['lr']} | "
                     f"{r['steps']:,} / {r['max_steps']:,} | {best} | {curve or '–'} | {r['status']} (run {r['run_id']}) |")
    return "\n".join(lines)


EARLIER = ("results/headline.csv:state-machine", "results/headline.csv:rnn-lm", "results/headline_transformer_400steps.csv")


def earlier_rows(spec: str) -> list[dict[str, Any]]:
    """Rows of an earlier run CSV (the format the previous ``headline.py`` wrote; its databases were not kept) in
    this script's columns, marked ``earlier``. ``PATH[:ARCH]`` keeps only that architecture's selected rows."""
    path, _, arch = spec.partition(":")
    full = Path(path) if Path(path).is_absolute() else ROOT / path
    if not full.exists():
        return []
    out = []
    for r in csv.DictReader(full.open()):
        if (arch and r["arch"] != arch) or r["task"] not in TASKS or r["split"] not in SPLITS \
                or r.get("selected", "True") != "True":
            continue
        sm = r["arch"] == "state-machine"
        val = float(r["val_exact_match"]) if r["val_exact_match"] else None
        out.append({
            "model": f"{'state-machine (LexSM-164)' if sm else r['model']} †", "earlier": path, "arch": r["arch"],
            "task": r["task"], "split": r["split"], "seed": int(r["seed"]), "lr": r["lr"], "d_model": "",
            "n_layers": "", "params_total": int(r["params_total"]),
            "prior_skeleton_lines": r.get("skeleton_lines", ""), "prior_skeleton_gzip_bytes": r.get("skeleton_gzip_bytes", ""),
            "prior_learned_bits": _learned_bits() if sm else "", "max_steps": r["max_steps"], "steps": r["steps"],
            "stop_reason": ("train_em_1.0" if int(r["steps"]) < int(r["max_steps"]) else "budget") if sm else "budget",
            "early_stop": "", "patience": "", "val_exact_match": val, "test_exact_match": float(r["test_exact_match"]),
            "n_test": r["max_eval_examples"] or "all", "converged": val is not None and val >= CONVERGED,
            "val_curve": "", "train_seconds": r["train_seconds"], "cpu_seconds": "",
            "latency_p50_ms": r["latency_p50_ms"], "flops_forward_per_token": r["flops_forward_per_token"],
            "run_id": r["run_id"], "config_hash": "", "status": r["status"], "git_commit": r["git_commit"],
            "git_dirty": r["git_dirty"], "arena_version": r["arena_version"], "hardware": r.get("host", ""),
            "finished_at": r["timestamp"], "sweep_command": r["command"], "reproduce": "", "source": path})
    return out


def _learned_bits() -> float:
    """The SCAN skeleton's lexicon choices in bits (rows x log2(roles x args) + log2(templates))."""
    import math

    from arena.architectures.state_machine import SKELETONS

    rows, roles, args, templates, _ = SKELETONS["scan"]
    return round(rows * math.log2(roles * args) + math.log2(templates), 1)


def select(rows: list[dict[str, Any]]) -> None:
    """Mark ``lr_selected``: per (model, task, split), the LR of seed 0's best validation exact match."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["model"], r["task"], r["split"])].append(r)
    for grp in groups.values():
        if grp[0].get("earlier"):  # already the selected runs of that earlier protocol
            for r in grp:
                r["lr_selected"] = True
            continue
        seed0 = [r for r in grp if int(r["seed"]) == 0] or grp
        best = max(seed0, key=lambda r: (float(r["val_exact_match"] or 0), -int(r["steps"])))
        for r in grp:
            r["lr_selected"] = r["lr"] == best["lr"]


def write_csv(rows: list[dict[str, Any]], path: Path, fields: list[str] = FIELDS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


# -- tables -------------------------------------------------------------------------------------------------------
def _chosen(rows: list[dict[str, Any]], model: str, task: str, split: str) -> list[dict[str, Any]]:
    return sorted((r for r in rows if r["model"] == model and r["task"] == task and r["split"] == split
                   and r["lr_selected"]), key=lambda r: int(r["seed"]))


def _cell(runs: list[dict[str, Any]], key: str) -> str:
    vals = [100 * float(r[key]) for r in runs if r[key] not in ("", None)]
    if not vals:
        return "–"
    each = ", ".join(f"{v:.1f}" for v in vals)
    return f"**{statistics.mean(vals):.1f}**" + (f" ({each})" if len(vals) > 1 else "")


def _prior_text(r: dict[str, Any]) -> str:
    if r["prior_skeleton_gzip_bytes"] in ("", None):
        return "none"
    return f"{r['prior_skeleton_gzip_bytes']} B gzip / {r['prior_skeleton_lines']} lines; {r['prior_learned_bits']} bits"


def _stops(runs: list[dict[str, Any]]) -> str:
    steps = [int(r["steps"]) for r in runs]
    reasons = sorted({r["stop_reason"] for r in runs})
    return f"{min(steps):,}–{max(steps):,}" + f" ({', '.join(reasons)})"


def models_of(rows: list[dict[str, Any]], task: str) -> list[str]:
    seen: dict[str, int] = {}
    for r in rows:
        if r["task"] == task:
            seen[r["model"]] = int(r["params_total"])
    return sorted(seen, key=lambda m: (m.startswith("lstm"), seen[m]))


def table(rows: list[dict[str, Any]], task: str, kind: str) -> str:
    head = "| model | params | hand-written prior (skeleton; learned bits) |"
    sep = "|---|---:|---|"
    splits = SPLITS if kind != "generalisation" else SPLITS[1:]
    for s in splits:
        if kind == "converged":
            head += f" {s}: LR | {s}: steps (stop) | {s}: val EM |"
            sep += "---:|---|---:|"
        else:
            head += f" {s}: test EM |"
            sep += "---:|"
    if kind == "converged":
        head += " simple: test EM |"
        sep += "---:|"
    lines = [head, sep]
    for m in models_of(rows, task):
        first = next(r for r in rows if r["model"] == m and r["task"] == task)
        line = f"| {m} | {int(first['params_total']):,} | {_prior_text(first)} |"
        for s in splits:
            runs = _chosen(rows, m, task, s)
            if kind == "converged":
                lr = runs[0]["lr"] if runs and runs[0]["lr"] != "" else "—"
                line += (f" {lr} | {_stops(runs)} | {_cell(runs, 'val_exact_match')} |" if runs else " – | – | – |")
            else:
                line += f" {_cell(runs, 'test_exact_match')} |"
        if kind == "converged":
            line += f" {_cell(_chosen(rows, m, task, 'simple'), 'test_exact_match')} |"
        lines.append(line)
    return "\n".join(lines)


def render(rows: list[dict[str, Any]], doc: Path, unfinished: list[dict[str, Any]] | None = None) -> None:
    text = doc.read_text()
    tables = {"unfinished": unfinished_table(unfinished or []), "converged": table(rows, "scan", "converged"), "generalisation": table(rows, "scan", "generalisation"),
              "shift": table(rows, "scan-shift", "shift"), "shift-converged": table(rows, "scan-shift", "converged"),
              "cpu": cpu_table(rows)}
    if "<!-- table:shift-ceiling -->" in text:
        seeds = sorted({int(r["seed"]) for r in rows if r["arch"] == "state-machine" and r["task"] == "scan-shift"})
        tables["shift-ceiling"] = ceiling_table(shift_ceilings(tuple(seeds) or (0,)), rows)
    for name, body in tables.items():
        a, b = f"<!-- table:{name} -->", f"<!-- /table:{name} -->"
        if a in text and b in text:
            i, j = text.index(a), text.index(b)
            text = text[: i + len(a)] + "\n" + body + "\n" + text[j:]
    doc.write_text(text)


def cpu_table(rows: list[dict[str, Any]]) -> str:
    """CPU hours per model (process CPU time of every run in the database, chosen LR or not; not earlier rows)."""
    per: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r.get("earlier"):  # not run from this database (and timed in wall seconds)
            continue
        sec = r["cpu_seconds"] if r["cpu_seconds"] not in ("", None) else r["train_seconds"]
        per[r["model"]].append(float(sec))
    lines = ["| model | runs | CPU hours |", "|---|---:|---:|"]
    for m, secs in sorted(per.items()):
        lines.append(f"| {m} | {len(secs)} | {sum(secs) / 3600:.2f} |")
    total = sum(sum(v) for v in per.values())
    lines.append(f"| all | {sum(len(v) for v in per.values())} | {total / 3600:.2f} |")
    return "\n".join(lines)


# -- plot ---------------------------------------------------------------------------------------------------------
def plot(rows: list[dict[str, Any]], task: str, path: Path) -> None:
    """One panel per split; earlier gradient-trained runs (``earlier`` set) are hollow crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(SPLITS), figsize=(4.2 * len(SPLITS), 3.8), sharey=True)
    for ax, split in zip(axes, SPLITS, strict=True):
        for family, style in (("transformer", "o-"), ("lstm", "s"), ("state-machine", "*")):
            pts = []
            for m in models_of(rows, task):
                if not m.startswith(family) or (m.endswith("†") and family != "state-machine"):
                    continue
                runs = _chosen(rows, m, task, split)
                if not runs:
                    continue
                vals = [100 * float(r["test_exact_match"]) for r in runs]
                p = int(runs[0]["params_total"])
                ax.scatter([p] * len(vals), vals, s=10, color="grey", alpha=0.6, zorder=2)
                pts.append((p, statistics.mean(vals), runs[0]))
            if not pts:
                continue
            xs, ys = [p for p, _, _ in pts], [y for _, y, _ in pts]
            size = 14 if family == "state-machine" else 6
            color = {"transformer": "C0", "lstm": "C2", "state-machine": "C1"}[family]
            (line,) = ax.plot(xs, ys, style, markersize=size, label=family, color=color, zorder=3)
            for x, y, r in pts:  # hollow: the in-distribution validation did not reach the target on every seed
                if not all(bool(q["converged"]) for q in _chosen(rows, r["model"], task, split)):
                    ax.plot([x], [y], style[0], markersize=size, color=line.get_color(), markerfacecolor="white",
                            zorder=4)
            if family == "state-machine":
                r = pts[0][2]
                ax.annotate(f"+ hand-written prior:\n{r['prior_skeleton_gzip_bytes']} B gzip skeleton,\n"
                            f"{r['prior_skeleton_lines']} lines; {r['prior_learned_bits']} bits learned",
                            (xs[0], ys[0]), textcoords="offset points", xytext=(12, -42 if ys[0] > 50 else 12),
                            fontsize=7)
        earlier: dict[str, list[dict[str, Any]]] = defaultdict(list)  # earlier gradient-trained runs, per model
        for r in rows:
            if r.get("earlier") and r["arch"] != "state-machine" and r["task"] == task and r["split"] == split:
                earlier[r["model"]].append(r)
        for m, runs in earlier.items():  # hollow, off the lines: e.g. the 6.5M Transformer at 400 steps
            vals = [100 * float(r["val_exact_match"]) for r in runs]
            ax.plot([int(runs[0]["params_total"])], [statistics.mean(100 * float(r["test_exact_match"]) for r in runs)],
                    "X" if runs[0]["arch"] == "transformer" else "s", markersize=8, color="black",
                    markerfacecolor="white", zorder=4,
                    label=f"{m}: {runs[0]['steps']} steps, val "
                    + (f"{min(vals):.0f}–{max(vals):.0f} %" if len(vals) > 1 else f"{vals[0]:.0f} %"))
        ax.set_xscale("log")
        ax.set_xlim(50, 3e7)
        ax.set_title(f"{task} / {split}")
        ax.set_xlabel("trainable parameters (log)")
        ax.set_ylim(-3, 103)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test exact match (%)")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="center left")
    fig.text(0.01, 0.01, "filled: val exact match >= 99 % on every seed (converged in distribution); hollow: not; "
             "grey dots: single seeds; † earlier runs from their own CSV (no database kept; gradient-trained ones scored "
             "on the first 200 test examples)", fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True, help="SQLAlchemy URL of the database the headline sweeps wrote")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "headline_ladder.csv")
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "headline.md")
    ap.add_argument("--plot-dir", type=Path, default=ROOT / "results")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--kept", nargs="*", default=list(KEPT),
                    help="CSVs this script wrote for runs of the same protocol whose database was not kept")
    ap.add_argument("--earlier", nargs="*", default=list(EARLIER),
                    help="earlier runs' CSVs (PATH[:ARCH]) added to the tables and plots, marked †")
    args = ap.parse_args(argv)
    rows = load(args.db)
    in_db = {r["config_hash"] for r in rows}
    rows += [r for path in args.kept for r in kept_rows(path) if r["config_hash"] not in in_db]
    # the state machine's earlier rows join only where this database has none of its runs on that split (its
    # skeleton has since gained a resource bound that leaves SCAN's results unchanged but its size not)
    measured = {(r["task"], r["split"]) for r in rows if r["arch"] == "state-machine"}
    rows += [r for spec in args.earlier for r in earlier_rows(spec)
             if r["arch"] != "state-machine" or (r["task"], r["split"]) not in measured]
    select(rows)
    write_csv(rows, args.out)
    unfinished = unfinished_runs(args.db)
    unfinished_csv = args.out.with_name(args.out.stem + "_unfinished.csv")
    if unfinished:
        write_csv(unfinished, unfinished_csv, list(unfinished[0]))
    else:  # every run finished: no stale curve file
        unfinished_csv.unlink(missing_ok=True)
    if args.doc.exists():
        render(rows, args.doc, unfinished)
    if not args.no_plot:
        for task in TASKS:
            if any(r["task"] == task for r in rows):
                plot(rows, task, args.plot_dir / f"headline_{task}_params.png")
    print(json.dumps({"runs": len(rows), "csv": str(args.out), "doc": str(args.doc)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
