"""The LM track: every architecture at one parameter budget, trained on the same tokens of Tiny Shakespeare,
scored on held-out bits/char, lm-eval BLiMP and LAMBADA; writes the table of docs/benchmarks-lm.md.

Each architecture is one ordinary ``arena run`` (task ``lm``) recorded in a database, so every row can be
inspected with ``arena show`` and re-evaluated with ``arena eval``. Mixer architectures reach the budget with
``--params`` (width chosen by the arena at a fixed depth); whole-model architectures (``rnn-lm``) get the width
whose analytic parameter count is closest to the budget.

    ARENA_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python scripts/lm_track.py \\
        --db sqlite:///results/lm_track.db --steps 300 --eval-limit 50 --write docs/benchmarks-lm.md

``--table-only`` rebuilds the table from the runs already in the database (newest completed run per
architecture with the same settings).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from typing import Any

DEFAULT_ARCHS = ("transformer", "rnn", "rnn-lm", "mamba", "hyena", "moe", "compressive")
BEGIN, END = "<!-- lm-track:begin -->", "<!-- lm-track:end -->"
BLIMP_REFS = (("5-gram", 61.2), ("LSTM", 69.8), ("Transformer-XL", 69.6), ("GPT-2", 83.0))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", default=",".join(DEFAULT_ARCHS), help="comma-separated architectures")
    p.add_argument("--params", type=int, default=1_000_000, help="parameter budget (total). Default: 1,000,000")
    p.add_argument("--n-layers", type=int, default=2, help="depth shared by every architecture. Default: 2")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps. Default: 300")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per step. Default: 32")
    p.add_argument("--block-size", type=int, default=128, help="characters per sequence. Default: 128")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate. Default: 3e-3")
    p.add_argument("--eval-limit", type=int, default=50, help="lm-eval documents per task / BLiMP paradigm. "
                                                              "Default: 50")
    p.add_argument("--corpus", default="tinyshakespeare", help="tinyshakespeare | tinystories")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads. Default: 1")
    p.add_argument("--db", default="sqlite:///results/lm_track.db",
                   help="SQLAlchemy URL for the runs; a comma-separated list is read together (runs go to the first)")
    p.add_argument("--write", default=None, help="markdown file whose lm-track table section is (re)written")
    p.add_argument("--table-only", action="store_true", help="do not train; tabulate the runs in --db")
    return p.parse_args(argv)


def spec_for(arch: str, a: argparse.Namespace) -> Any:
    from arena.registry import get_arch
    from arena.spec import LatencyConfig, RunSpec, TrainConfig

    train = TrainConfig(max_steps=a.steps, batch_size=a.batch_size, lr=a.lr, warmup_steps=max(1, a.steps // 10),
                        eval_every=10**9, checkpoint_every=max(1, a.steps), early_stop=None)
    task_cfg = {"corpus": a.corpus, "block_size": a.block_size, "eval_limit": a.eval_limit}
    common = dict(arch=arch, task="lm", size="small", n_layers=a.n_layers, seed=a.seed, task_config=task_cfg,
                  train=train, latency=LatencyConfig(batch=16, min_run_time=0.2), threads=a.threads)
    if get_arch(arch).kind == "mixer":
        from arena.errors import ArenaError
        from arena.runner import prepare

        try:  # the arena's own fit (within 5%); widths move in steps of the head count, so it can miss
            prepare(RunSpec(params=a.params, **common))
            return RunSpec(params=a.params, **common)
        except ArenaError as exc:
            if "cannot reach a parameter budget" not in str(exc):
                raise
    return RunSpec(d_model=_model_width(arch, a, common), **common)


def _model_width(arch: str, a: argparse.Namespace, common: dict[str, Any]) -> int:
    """Width of a whole-model architecture whose analytic parameter count is closest to the budget."""
    from arena.blocks import analytic_params
    from arena.runner import prepare
    from arena.spec import RunSpec

    res = prepare(RunSpec(d_model=8, **common))
    best = (8, float("inf"))
    step = math.lcm(2 * int(getattr(res.arch_cfg, "n_heads", 1) or 1), 4)
    for d in range(step, 4097, step):
        shape = type(res.shape)(res.shape.vocab_size, d, res.shape.n_layers, res.shape.max_seq_len)
        n = analytic_params(res.arch, shape, res.arch_cfg)["total"]
        if abs(n - a.params) < abs(best[1] - a.params):
            best = (d, n)
        if n > 1.1 * a.params:
            break
    return best[0]


def run_all(a: argparse.Namespace) -> None:
    import torch

    from arena.runner import run

    torch.set_num_threads(a.threads)
    for arch in [x.strip() for x in a.archs.split(",") if x.strip()]:
        t0 = time.perf_counter()
        try:
            res = run(spec_for(arch, a), db=a.db.split(",")[0], command="scripts/lm_track.py " + " ".join(sys.argv[1:]))
            s = res.record["scores"]
            print(f"{arch}: run {res.run_id} in {time.perf_counter() - t0:.0f} s; bits/char "
                  f"{s['val']['bits_per_char']:.3f}, BLiMP {s['blimp']['acc']:.3f}, "
                  f"LAMBADA ppl {s['lambada_openai']['perplexity']:.4g}", flush=True)
        except Exception as exc:  # one architecture failing must not stop the others
            print(f"{arch}: FAILED after {time.perf_counter() - t0:.0f} s: {exc}", flush=True)


def collect(a: argparse.Namespace) -> list[dict[str, Any]]:
    """Newest completed run per architecture whose settings match ``a`` (over every database in ``--db``)."""
    from arena.runner import run_record
    from arena.store import get_run, list_runs, open_store

    rows: dict[str, tuple[Any, dict[str, Any]]] = {}
    for url in a.db.split(","):
        engine = open_store(url)
        for r in list_runs(engine, task="lm", limit=10_000):
            spec = (r.config or {}).get("spec", {})
            tc, tr = spec.get("task_config", {}), spec.get("train", {})
            same = (tr.get("max_steps"), tr.get("batch_size"), tc.get("block_size"), tc.get("eval_limit"),
                    tc.get("corpus"), spec.get("seed")) == (a.steps, a.batch_size, a.block_size, a.eval_limit,
                                                           a.corpus, a.seed)
            if r.status != "completed" or not same:
                continue
            if r.arch not in rows or r.finished_at > rows[r.arch][0]:
                rows[r.arch] = (r.finished_at, run_record(get_run(engine, r.id)))
    order = [x.strip() for x in a.archs.split(",")]
    return [rows[k][1] for k in sorted(rows, key=lambda k: order.index(k) if k in order else len(order))]


def _f(v: float | None, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


def table(records: list[dict[str, Any]], a: argparse.Namespace) -> str:
    lines = [
        "| arch | params (active) | d_model x layers | tokens | val bits/char | BLiMP acc % | LAMBADA ppl | "
        "LAMBADA acc % | fwd FLOPs/token | train FLOPs | latency p50 ms | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(records, key=lambda r: r["scores"].get("val", {}).get("bits_per_char", 99)):
        s, shape = r["scores"], r["config"]["shape"]
        p = r["params"]
        active = f" ({p['active']:,})" if p["active"] != p["total"] else ""
        lines.append(
            f"| {r['arch']} | {p['total']:,}{active} | {shape['d_model']} x {shape['n_layers']} | "
            f"{r['extra'].get('tokens_seen', 0):,} | {_f(s['val'].get('bits_per_char'), '.3f')} | "
            f"{_f(100 * s['blimp']['acc'], '.1f')} | {_f(s['lambada_openai'].get('perplexity'), '.3g')} | "
            f"{_f(100 * s['lambada_openai']['acc'], '.1f')} | {_f(r['flops']['forward_per_token'], '.3g')} | "
            f"{_f(r['flops']['train_total'], '.3g')} | {_f(r['latency_ms']['p50'], '.2f')} | "
            f"{_f(r['train_seconds'], '.0f')} |")
    refs = ", ".join(f"{name} {acc}" for name, acc in BLIMP_REFS)
    n_blimp = 67 * a.eval_limit
    lines += ["", f"Settings: budget {a.params:,} params, {a.n_layers} layers, {a.steps} steps x {a.batch_size} "
                  f"sequences x {a.block_size} characters of {a.corpus}, lr {a.lr:g}, seed {a.seed}; lm-eval "
                  f"`limit={a.eval_limit}` ({n_blimp:,} BLiMP pairs, {a.eval_limit} LAMBADA passages); "
                  f"{a.threads} thread(s). Published BLiMP (full set, word/BPE models on far larger corpora): {refs}; "
                  "chance 50."]
    return "\n".join(lines)


def write_section(path: str, body: str) -> None:
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else f"{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: f"{BEGIN}\n{body}\n{END}", text, flags=re.S)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    if not a.table_only:
        run_all(a)
    body = table(collect(a), a)
    print(body)
    if a.write:
        write_section(a.write, body)


if __name__ == "__main__":
    main()
