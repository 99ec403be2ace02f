"""The typed record of one run: what its steps measure, how that maps onto the ``runs`` columns, how evaluation
results flatten into metric rows, the JSON summary of a stored run, and the command that reproduces it.

:func:`arena.runner.execute` fills a :class:`RunRecord` step by step (build -> train -> score -> measure) and
:func:`arena.store.repo.complete_run` writes it. Reading back goes the other way: :func:`summary` turns a stored
row (ORM object or any attribute view of one) into the ``arena show --json`` shape. This module imports no torch,
so export and the read-only CLI commands can use it.
"""

from __future__ import annotations

import functools
import json
import shlex
import sys
from dataclasses import dataclass, field, fields
from typing import Any

from arena.columns import COLUMNS

_PAYLOAD_ONLY = ("metrics", "provenance")


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def flatten_metrics(results: dict[str, dict[str, Any]], *, drop_none: bool = False) -> list[dict[str, Any]]:
    """``{split: {"metrics": {name: value, "n": n}, "slices": {key: {value: {name: v, "n": n}}}}}`` -> one metric
    row per (split, name[, slice]) in the shape of :class:`arena.store.models.Metric`. ``drop_none`` leaves out
    metrics without a value."""
    rows: list[dict[str, Any]] = []

    def add(split: str, ms: dict[str, Any], **where: Any) -> None:
        n = int(ms.get("n", 0) or 0) or None
        for name, value in ms.items():
            if name != "n" and not (drop_none and value is None):
                rows.append({"split": split, "name": name, "value": _num(value), **where, "n": n})

    for split, r in results.items():
        add(split, r.get("metrics", {}))
        for key, groups in r.get("slices", {}).items():
            for val, ms in groups.items():
                add(split, ms, slice_key=key, slice_value=str(val))
    return rows


def normalized(score: float | None, chance: float, higher_is_better: bool = True) -> float | None:
    """max(0, (s - chance) / (1 - chance)) for higher-is-better metrics in [0, 1]; None otherwise."""
    if score is None or not higher_is_better or chance >= 1:
        return None
    return max(0.0, (score - chance) / (1.0 - chance))


def provenance(command: str | None) -> dict[str, Any]:
    """Where a result came from: arena and package versions, git commit, python, the command."""
    from arena import __version__
    from arena.measure.hardware import git_commit, package_versions

    sha, dirty = git_commit()
    return {"arena_version": __version__, "git_commit": sha, "git_dirty": dirty, "python": sys.version.split()[0],
            "packages": package_versions(), "command": command}


@dataclass
class RunRecord:
    """The results of one run, named as the ``runs`` columns they fill (plus its metric rows and provenance).

    Each step of a run fills its part through the ``set_*`` methods, which own the mapping from a measurement's
    dict to columns; :meth:`columns` is what :func:`arena.store.repo.complete_run` writes.
    """

    step: int = 0
    # build
    params_total: int | None = None
    params_embedding: int | None = None
    params_non_embedding: int | None = None
    params_active: int | None = None
    state_size: int | None = None
    # train
    train_seconds: float | None = None
    # measure
    flops_forward_per_token: float | None = None
    flops_forward_per_example: float | None = None
    flops_train_total: float | None = None
    flops_counted_per_example: float | None = None
    flops_note: str | None = None
    flops_status: str | None = None  # submissions only: "verified" | "declared"
    isolation: str | None = None  # submissions only: how the plugin's workers were sandboxed
    latency_p50_ms: float | None = None
    latency_p90_ms: float | None = None
    latency_batch: int | None = None
    throughput_per_s: float | None = None
    load_avg_1m: float | None = None
    threads: int | None = None
    memory_mb: float | None = None
    hardware: dict[str, Any] | None = None
    # the hand-written prior of a task-specific model (None: a general model has none)
    prior_gzip_bytes: int | None = None
    prior_lines: int | None = None
    prior_learned_bits: float | None = None
    # score
    metric: str | None = None
    headline_split: str | None = None
    score: float | None = None
    normalized_score: float | None = None
    chance: float | None = None
    higher_is_better: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    def set_params(self, params: dict[str, int]) -> None:
        """From :func:`arena.measure.params.measure_params` (total / embedding / non_embedding / active)."""
        self.params_total, self.params_embedding = params["total"], params["embedding"]
        self.params_non_embedding, self.params_active = params["non_embedding"], params["active"]

    def set_flops(self, flops: dict[str, Any]) -> None:
        """From :func:`arena.measure.flops.measure_flops`."""
        self.flops_forward_per_token = flops["forward_per_token"]
        self.flops_forward_per_example = flops["forward_per_example"]
        self.flops_train_total = flops["train_total"]
        self.flops_counted_per_example = flops["counted_forward_per_example"]
        self.flops_note = flops["note"]
        self.extra["flops_breakdown"] = flops.get("breakdown")

    def set_latency(self, lat: dict[str, Any]) -> None:
        """From :func:`arena.measure.latency.measure_latency` (``{}`` when latency is switched off)."""
        self.latency_p50_ms, self.latency_p90_ms = lat.get("p50_ms"), lat.get("p90_ms")
        self.latency_batch, self.throughput_per_s = lat.get("batch"), lat.get("throughput_per_s")
        self.load_avg_1m = lat.get("load_avg_1m")

    def set_prior(self, prior: dict[str, Any] | None) -> None:
        """From :meth:`arena.api.HandWrittenPrior.hand_written_prior` (``{"gzip_bytes", "lines",
        "learned_bits"}``); ``None`` for a model without a hand-written prior."""
        prior = prior or {}

        def num(key: str, kind: type) -> Any:
            v = _num(prior.get(key))
            return None if v is None else kind(v)

        self.prior_gzip_bytes, self.prior_lines = num("gzip_bytes", int), num("lines", int)
        self.prior_learned_bits = num("learned_bits", float)

    def set_scores(self, results: dict[str, dict[str, Any]], task: Any, head: str) -> None:
        """From :func:`arena.evaluate.evaluate_task`: the metric rows and the headline (raw and normalized)."""
        self.metrics = flatten_metrics(results)
        self.metric, self.headline_split = task.metric, head
        self.score = results.get(head, {}).get("metrics", {}).get(task.metric)
        self.chance, self.higher_is_better = task.chance, task.higher_is_better
        self.normalized_score = normalized(self.score, task.chance, task.higher_is_better)

    def columns(self) -> dict[str, Any]:
        """The ``runs`` column values this record sets."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _PAYLOAD_ONLY}

    def payload(self) -> dict[str, Any]:
        """``{"fields", "metrics", "provenance"}``: the plain-dict form (what older callers pass around)."""
        return {"fields": self.columns(), "metrics": list(self.metrics), "provenance": dict(self.provenance)}


# ----------------------------------------------------------------------------------------------------------------
# reading back


def summary(run: Any) -> dict[str, Any]:
    """The JSON shape of a stored run (``arena run --json`` and ``arena show --json``), from an ORM ``Run`` or
    any object with its attributes, ``metrics`` and ``provenance``; a declared column (:mod:`arena.columns`)
    without a place below goes to its ``summary`` path."""
    rec = _summary(run)
    for c in COLUMNS:
        *parents, leaf = c.summary_path
        node = rec
        for key in parents:
            node = node.setdefault(key, {})
        node.setdefault(leaf, getattr(run, c.name, None))
    return rec


def _summary(run: Any) -> dict[str, Any]:
    scores: dict[str, dict[str, float]] = {}
    slices: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for m in run.metrics:
        if m.slice_key is None:
            scores.setdefault(m.split, {})[m.name] = m.value
        else:
            slices.setdefault(m.split, {}).setdefault(m.slice_key, {}).setdefault(m.slice_value, {})[m.name] = m.value
    prov = run.provenance
    return {
        "run_id": run.id, "config_hash": run.config_hash, "status": run.status, "arch": run.arch,
        "arch_version": run.arch_version, "task": run.task, "task_version": run.task_version, "split": run.split,
        "size": run.size, "seed": run.seed, "error": run.error,
        "params": {"total": run.params_total, "embedding": run.params_embedding,
                   "non_embedding": run.params_non_embedding, "active": run.params_active},
        "flops": {"forward_per_token": run.flops_forward_per_token,
                  "forward_per_example": run.flops_forward_per_example, "train_total": run.flops_train_total,
                  "counted_forward_per_example": run.flops_counted_per_example, "note": run.flops_note,
                  "status": getattr(run, "flops_status", None)},
        "latency_ms": {"p50": run.latency_p50_ms, "p90": run.latency_p90_ms, "batch": run.latency_batch,
                       "throughput_per_s": run.throughput_per_s, "threads": run.threads},
        "memory_mb": run.memory_mb, "state_size": run.state_size, "metric": run.metric,
        "headline_split": run.headline_split, "score": run.score, "scores": scores, "slices": slices,
        "normalized_score": run.normalized_score, "chance": run.chance, "steps": run.step,
        "train_seconds": run.train_seconds, "hardware": run.hardware or {},
        "isolation": getattr(run, "isolation", None),
        "source": run.source, "plugin": {"name": run.plugin_name, "version": run.plugin_version,
                                         "sha256": run.plugin_sha256} if run.plugin_name else None,
        "task_specific": run.task_specific, "config": run.config,
        "provenance": {"arena_version": prov.arena_version, "git_commit": prov.git_commit, "git_dirty": prov.git_dirty,
                       "python": prov.python, "packages": prov.packages, "command": prov.command} if prov else None,
        "extra": run.extra or {},
        "derived": {"parent_run_id": run.parent_run_id, "method": run.derived_method, "heads_kept": run.heads_kept,
                    "finetune_steps": run.finetune_steps} if getattr(run, "parent_run_id", None) else None,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "db": None,
    }


JSON_SUMMARY_KEYS = ("run_id", "config_hash", "status", "arch", "task", "split", "params", "flops", "latency_ms",
                     "memory_mb", "state_size", "scores", "metric", "headline_split", "score", "normalized_score",
                     "hardware", "steps", "train_seconds", "source", "plugin", "task_specific", "prior", "slices")


def json_summary(rec: dict[str, Any]) -> dict[str, Any]:
    """The one JSON object ``arena run --json`` prints (a subset of :func:`summary`)."""
    return {k: rec.get(k) for k in JSON_SUMMARY_KEYS}


def full_summary(run: Any) -> dict[str, Any]:
    """:func:`summary` plus ``reproduce`` (None for a config written without the usual spec, e.g. by a plugin)."""
    rec = summary(run)
    try:
        rec["reproduce"] = reproduce_command(rec) if rec.get("config") else None
    except (KeyError, TypeError):
        rec["reproduce"] = None
    return rec


def reproduce_command(record: dict[str, Any]) -> str:
    """The exact ``arena run`` command that reproduces a stored run (``arena prune`` for a derived run)."""
    derived = (record.get("config") or {}).get("derived")
    if derived:
        return prune_command(derived)
    spec = record["config"]["spec"]
    parts = ["arena", "run", "--arch", spec["arch"], "--task", spec["task"], "--split", record["split"]]
    if spec.get("params"):
        parts += ["--params", str(spec["params"])]
    elif spec.get("size"):
        parts += ["--size", spec["size"]]
    for flag in ("d_model", "n_layers"):
        if spec.get(flag):
            parts += [f"--{flag.replace('_', '-')}", str(spec[flag])]
    parts += ["--seed", str(spec["seed"])]
    if spec.get("data_seed") is not None:
        parts += ["--data-seed", str(spec["data_seed"])]
    if spec.get("threads"):
        parts += ["--threads", str(spec["threads"])]
    parts += ["--max-steps", str(spec["train"]["max_steps"])]
    defaults_train, defaults_latency = _spec_defaults()
    parts += [p for k, v in spec["train"].items() if k != "max_steps" and v != defaults_train.get(k)
              for p in ("--set", f"train.{k}={_cli_value(v)}")]
    parts += [p for k, v in (spec.get("latency") or {}).items() if v != defaults_latency.get(k)
              for p in ("--set", f"latency.{k}={_cli_value(v)}")]
    for prefix, key in (("arch", "arch_config"), ("task", "task_config")):
        parts += [p for k, v in spec.get(key, {}).items() for p in ("--set", f"{prefix}.{k}={_cli_value(v)}")]
    return " ".join(shlex.quote(p) for p in parts)


def prune_command(derived: dict[str, Any]) -> str:
    """The ``arena prune`` command that re-derives one pruned run from its parent."""
    parts = ["arena", "prune", str(derived["parent_run_id"]), "--method", derived["method"], "--keep",
             str(derived["keep"])]
    if derived.get("finetune_steps"):
        parts += ["--finetune-steps", str(derived["finetune_steps"])]
    if derived.get("finetune_lr") is not None:
        parts += ["--finetune-lr", str(derived["finetune_lr"])]
    if derived.get("seed") is not None:
        parts += ["--seed", str(derived["seed"])]
    if derived.get("importance"):
        parts += ["--split", derived["importance"]["split"], "--examples", str(derived["importance"]["examples"])]
    return " ".join(parts)


@functools.cache
def _spec_defaults() -> tuple[dict[str, Any], dict[str, Any]]:
    """The default ``train`` and ``latency`` sections (built once: a JSON export calls this for every run)."""
    from arena.spec import RunSpec

    defaults = RunSpec(arch="x", task="y")
    return defaults.train.model_dump(mode="json"), defaults.latency.model_dump(mode="json")


def _cli_value(v: Any) -> str:
    return json.dumps(v) if isinstance(v, (list, dict, bool)) or v is None else str(v)


__all__ = ["RunRecord", "flatten_metrics", "normalized", "provenance", "summary", "json_summary", "full_summary",
           "reproduce_command", "prune_command"]
