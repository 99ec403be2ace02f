"""Synthetic-but-valid run rows for tests, benchmarks and trying the app without training anything.

``seed_database(url, n_runs)`` writes completed runs with the same shape the runner writes (cost columns, headline
score, per-split metrics, depth slices, a training curve, provenance, hardware) through bulk ORM inserts, so a
10,000-run database takes a few seconds. Scores are a deterministic function of (arch, size, depth, learning rate:
each architecture tolerates a different width of LR grid around the default, :data:`LR_TOLERANCE`) plus noise;
one architecture (``chance-sm``, 164 parameters plus a hand-written prior, :data:`PRIOR`) sits exactly at chance
on every task — the model a naive score-per-parameter ranking would crown.
"""

from __future__ import annotations

import hashlib
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from arena.store.engine import open_store
from arena.store.models import Metric, Provenance, Run

# learning-rate tolerance in decades around 3e-3 (the default): how much of an LR grid each architecture survives
LR_TOLERANCE = {"rnn": 0.4, "transformer": 0.8, "mamba": 1.5, "moe-transformer": 0.6}
ARCHS = {  # name -> (family, params per size, skill 0..1, latency factor)
    "rnn": ("recurrent", {"tiny": 17_664, "small": 120_000, "base": 900_000}, 0.55, 1.0),
    "transformer": ("attention", {"tiny": 25_000, "small": 210_000, "base": 1_600_000}, 0.85, 1.6),
    "mamba": ("ssm", {"tiny": 22_000, "small": 180_000, "base": 1_300_000}, 0.8, 1.3),
    "moe-transformer": ("attention", {"tiny": 60_000, "small": 520_000, "base": 4_000_000}, 0.9, 2.0),
    "chance-sm": ("symbolic", {"tiny": 164, "small": 164, "base": 164}, 0.0, 0.05),
}
TASKS = {  # name -> (split, metric, chance, headline split, depths of the ood split)
    "scan-depth": ("depth", "exact_match", 0.0, "test_ood", (4, 5, 6)),
    "nested-parity": ("np-mem", "accuracy", 0.5, "test_ood", (5, 6, 7, 8)),
}
# the task-specific model's hand-written prior (the state machine's SCAN skeleton); general models have none
PRIOR = {"prior_gzip_bytes": 709, "prior_lines": 58, "prior_learned_bits": 69.7}
SIZES = ("tiny", "small", "base")
HARDWARE = [
    {"device": "cpu", "cpu": "AMD EPYC", "cores": 2, "threads": 1, "omp_wait_policy": "PASSIVE",
     "torch": "2.13.0+cpu", "platform": "Linux", "host": "ci"},
    {"device": "cuda", "cpu": "Intel Xeon", "cores": 8, "threads": 8, "gpu": "NVIDIA A100", "torch": "2.13.0",
     "platform": "Linux", "host": "gpu1"},
]
TRAIN = {"max_steps": 1500, "batch_size": 32, "lr": 0.003, "weight_decay": 0.01, "betas": [0.9, 0.98],
         "warmup_steps": 100, "min_lr_ratio": 0.1, "grad_clip": 1.0, "eval_every": 250, "early_stop": 1.0,
         "checkpoint_every": 250, "eval_batch_size": 64, "max_eval_examples": None}


def _config(arch: str, task: str, split: str, size: str, seed: int, lr: float) -> dict[str, Any]:
    train = dict(TRAIN, lr=lr)
    spec = {"arch": arch, "task": task, "split": None, "size": size, "params": None, "d_model": None,
            "n_layers": None, "seed": seed, "arch_config": {}, "task_config": {}, "train": train,
            "latency": {"batch": 16, "min_run_time": 0.3, "enabled": True}, "device": "cpu", "threads": None}
    return {"spec": spec, "arch_config": {}, "task_config": {}, "split": split, "versions": {"arch": 1, "task": 1},
            "shape": {"vocab_size": 24, "d_model": 32, "n_layers": 1}}


def _lr_factor(arch: str, lr: float) -> float:
    """1 at the default LR, falling off with the distance in decades (an architecture's LR robustness)."""
    tol = LR_TOLERANCE.get(arch, 0.6)
    return math.exp(-((math.log10(lr) - math.log10(0.003)) ** 2) / (2 * tol**2))


def _score(rng: random.Random, skill: float, size_i: int, depth: int, chance: float) -> float:
    if skill == 0.0:
        return chance
    p = skill * (0.6 + 0.2 * size_i) * (0.93 ** depth) + rng.gauss(0, 0.02)
    return min(1.0, max(0.0, chance + (1 - chance) * p))


def make_rows(n_runs: int, start_id: int = 1, seed: int = 0, archs: dict | None = None,
              tasks: dict | None = None, lrs: tuple[float, ...] = (0.003,)) -> tuple[list, list, list]:
    """Dicts for bulk insert into runs, metrics and provenance (ids assigned from ``start_id``)."""
    rng = random.Random(seed)
    archs = archs or ARCHS
    tasks = tasks or TASKS
    combos = [(a, t, s, lr) for a in archs for t in tasks for s in SIZES for lr in lrs]
    base_time = datetime(2026, 1, 1, tzinfo=UTC)
    runs, metrics, prov = [], [], []
    for k in range(n_runs):
        rid = start_id + k
        arch, task, size, lr = combos[k % len(combos)]
        run_seed = k // len(combos)
        family, sizes, skill, lat = archs[arch]
        split, metric, chance, head, depths = tasks[task]
        size_i = SIZES.index(size)
        params = sizes[size]
        hw = HARDWARE[0]
        skill_lr = skill * _lr_factor(arch, lr)
        per_depth = {d: _score(rng, skill_lr, size_i, d, chance) for d in depths}
        iid = {d: _score(rng, skill_lr, size_i, d, chance) for d in range(1, 4)}
        val = {d: _score(rng, skill_lr, size_i, d, chance) for d in range(1, 4)}
        score = sum(per_depth.values()) / len(per_depth)
        norm = max(0.0, (score - chance) / (1 - chance)) if chance < 1 else None
        cfg = _config(arch, task, split, size, run_seed, lr)
        chash = hashlib.sha256(f"{arch}|{task}|{split}|{size}|{lr}|{run_seed}".encode()).hexdigest()
        t0 = base_time + timedelta(minutes=rid)
        flops_tok = 2.0 * params
        runs.append({
            "id": rid, "arch": arch, "arch_version": 1, "arch_kind": "neural" if skill else "symbolic",
            "arch_family": family, "task": task, "task_version": 1, "split": split, "size": size, "seed": run_seed,
            "config": cfg, "config_hash": chash, "status": "completed", "error": None, "created_at": t0,
            "finished_at": t0 + timedelta(seconds=30), "heartbeat_at": t0 + timedelta(seconds=30), "host": "ci",
            "pid": None, "step": 1500, "checkpoint_path": None, "params_total": params,
            "params_embedding": params // 20, "params_non_embedding": params - params // 20,
            "params_active": params // 4 if arch.startswith("moe") else params, "state_size": 64 * (size_i + 1),
            "flops_forward_per_token": flops_tok, "flops_forward_per_example": flops_tok * 100,
            "flops_train_total": flops_tok * 3 * 32 * 100 * 1500, "flops_counted_per_example": flops_tok * 90,
            "flops_note": None, "latency_p50_ms": lat * (0.5 + size_i) * (1 + 0.05 * rng.random()),
            "latency_p90_ms": lat * (0.6 + size_i), "latency_batch": 16, "throughput_per_s": 1000.0 / lat,
            "threads": 1, "memory_mb": 300.0 + params / 1e4, "train_seconds": 20.0 + size_i * 10,
            "metric": metric, "headline_split": head, "score": score, "normalized_score": norm, "chance": chance,
            "higher_is_better": True, "source": "builtin", "plugin_name": None, "plugin_version": None,
            "plugin_sha256": None, "task_specific": skill == 0.0, "hardware": hw,
            **{k: v if skill == 0.0 else None for k, v in PRIOR.items()},
            "extra": {"curve": [{"step": s, "loss": 3.0 / (1 + s / 300), "lr": lr} for s in (1, 500, 1000, 1500)]
                      + [{"step": 1500, "val": score}]},
        })
        for sp, vals in (("test_ood", per_depth), ("test_iid", iid), ("val", val)):
            mean = sum(vals.values()) / len(vals)
            metrics.append({"run_id": rid, "split": sp, "name": metric, "value": mean, "slice_key": None,
                            "slice_value": None, "n": 100 * len(vals)})
            for d, v in vals.items():
                metrics.append({"run_id": rid, "split": sp, "name": metric, "value": v, "slice_key": "depth",
                                "slice_value": str(d), "n": 100})
        prov.append({"run_id": rid, "arena_version": "0.1.0", "git_commit": "0" * 40, "git_dirty": False,
                     "python": "3.11.7", "packages": {"torch": "2.13.0+cpu"}, "created_at": t0,
                     "command": f"arena run --arch {arch} --task {task} --size {size} --seed {run_seed}"})
    return runs, metrics, prov


def insert_rows(engine: Engine, runs: list, metrics: list, prov: list, chunk: int = 20000) -> None:
    """One transaction; executemany on the models' tables (the ORM's bulk path would fetch every new id)."""
    with Session(engine) as s, s.begin():
        for model, rows in ((Run, runs), (Metric, metrics), (Provenance, prov)):
            for i in range(0, len(rows), chunk):
                s.execute(insert(model.__table__), rows[i:i + chunk])


def seed_database(url: str, n_runs: int = 60, *, seed: int = 0, engine: Engine | None = None,
                  **kwargs: Any) -> Engine:
    """Append ``n_runs`` synthetic completed runs to the database at ``url`` (created and migrated if needed)."""
    engine = engine or open_store(url)
    with Session(engine) as s:
        start = (s.scalar(select(func.max(Run.id))) or 0) + 1
    insert_rows(engine, *make_rows(n_runs, start_id=start, seed=seed, **kwargs))
    return engine


def add_run(engine: Engine, **overrides: Any) -> int:
    """Insert one synthetic completed run with some fields overridden (e.g. a plugin with a hostile name)."""
    with Session(engine) as s:
        start = (s.scalar(select(func.max(Run.id))) or 0) + 1
    runs, metrics, prov = make_rows(1, start_id=start)
    runs[0].update(overrides)
    if "config" not in overrides:
        runs[0]["config"]["spec"]["arch"] = runs[0]["arch"]
        runs[0]["config"]["spec"]["task"] = runs[0]["task"]
    insert_rows(engine, runs, metrics, prov)
    return start
