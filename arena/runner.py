"""One run end to end: resolve -> build -> measure statically -> train -> evaluate -> measure latency -> store.

The run row is written as ``running`` before training starts (with a heartbeat at every checkpoint), and
completed in one transaction with its metrics and provenance; an exception marks it ``failed``, Ctrl-C or
SIGTERM ``interrupted``. ``resume=True`` continues the newest unfinished run with the same config hash from its
checkpoint.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from arena import __version__, ownership
from arena.blocks import analytic_state_size, build_model, module_logs
from arena.errors import ArenaError, RunFailedError
from arena.evaluate import evaluate_task
from arena.measure import memory as run_memory
from arena.measure.flops import measure_flops
from arena.measure.hardware import git_commit, hardware, package_versions
from arena.measure.latency import measure_latency
from arena.measure.params import measure_params
from arena.registry import get_arch, get_task
from arena.spec import Resolved, RunSpec, apply_overrides, resolve
from arena.store import repo
from arena.store.engine import open_store, resolve_url
from arena.train import TrainState, fit_custom, train
from arena.validation import check_memory


class Progress(Protocol):
    def phase(self, name: str, total: int | None = None) -> None: ...
    def advance(self, completed: int, info: dict[str, float] | None = None) -> None: ...


class _Silent:
    def phase(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, completed: int, info: dict[str, float] | None = None) -> None:
        pass


@dataclass
class RunResult:
    run_id: int
    status: str
    record: dict[str, Any]


def normalized(score: float | None, chance: float, higher_is_better: bool = True) -> float | None:
    """max(0, (s - chance) / (1 - chance)) for higher-is-better metrics in [0, 1]; None otherwise."""
    if score is None or not higher_is_better or chance >= 1:
        return None
    return max(0.0, (score - chance) / (1.0 - chance))


def headline_split(task: Any) -> str:
    if task.headline_split:
        return task.headline_split
    splits = task.eval_splits
    for name in ("test", "test_ood"):
        if name in splits:
            return name
    return [s for s in splits if s != "val"][-1] if [s for s in splits if s != "val"] else splits[-1]


def checkpoint_dir() -> Path:
    return Path(os.environ.get("ARENA_CHECKPOINT_DIR", "results/checkpoints"))


def prepare(spec: RunSpec, overrides: list[str] | None = None, extra_hash: str = "") -> Resolved:
    arch = get_arch(spec.arch)
    task_spec = get_task(spec.task)
    if overrides:
        spec = apply_overrides(spec, overrides, arch, task_spec)
    res = resolve(spec, arch, task_spec, extra_hash=extra_hash)
    check_memory(res)  # before any model is built or any row written
    return res


def run(spec: RunSpec, *, overrides: list[str] | None = None, db: str | None = None, resume: bool = False,
        progress: Progress | None = None, command: str | None = None, plugin: dict[str, str] | None = None,
        engine: Any = None) -> RunResult:
    """Execute one run and record it. Raises ArenaError for bad input (nothing written) and RunFailedError for a
    run that started and failed (recorded as failed)."""
    progress = progress or _Silent()
    if spec.threads:
        torch.set_num_threads(spec.threads)
    run_memory.start_run(spec.device)  # the memory figure covers this run, not the process's earlier work
    progress.phase("preparing")
    res = prepare(spec, overrides, extra_hash=(plugin or {}).get("sha256", ""))
    # one live process per configuration: a second copy is refused (naming the live run) before it writes anything
    with ownership.claim(checkpoint_path(res.config_hash), command or "arena.runner.run") as owner:
        return _run_owned(res, owner, db=db, resume=resume, progress=progress, command=command, plugin=plugin,
                          engine=engine)


def _run_owned(res: Resolved, owner: ownership.Claim, *, db: str | None, resume: bool, progress: Progress,
               command: str | None, plugin: dict[str, str] | None, engine: Any) -> RunResult:
    engine = engine or open_store(db)
    repo.mark_stale_runs(engine)
    run_id, resumed = None, False
    if resume:
        live = repo.find_live(engine, res.config_hash)
        if live is not None:
            raise repo.LiveRunError(f"run {live.id} with this configuration is still running (pid {live.pid} on "
                                    f"{live.host}); not taking it over — wait for it to finish, or stop it first")
        prev = repo.find_resumable(engine, res.config_hash)
        if prev is not None:
            run_id, resumed = prev.id, True
            repo.reopen_run(engine, run_id)
    if run_id is None:
        run_id = repo.create_run(engine, **identity(res, plugin))
    ckpt = checkpoint_path(res.config_hash)
    interrupted = {"flag": False}

    def on_term(signum, frame):  # SIGTERM -> same path as Ctrl-C: record interrupted, keep the checkpoint
        interrupted["flag"] = True
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term) if _main_thread() else None
    try:  # from the moment the row exists: any end of this process is recorded on it
        owner.note(run_id=run_id)
        repo.heartbeat(engine, run_id, checkpoint_path=str(ckpt))
        payload = execute(res, ckpt, resumed, progress, command, beat=_heartbeat(engine, run_id))
        repo.complete_run(engine, run_id, payload["fields"], payload["metrics"], payload["provenance"])
        record = run_record(repo.get_run(engine, run_id))
    except KeyboardInterrupt as exc:
        repo.end_run(engine, run_id, "interrupted", "interrupted by signal; resume with --resume")
        exc.arena_run_id = run_id  # the CLI names it in its "interrupted — resume with …" line
        raise
    except ArenaError as exc:
        repo.end_run(engine, run_id, "failed", str(exc))
        raise RunFailedError(f"run {run_id} failed: {exc}") from exc
    except Exception as exc:
        repo.end_run(engine, run_id, "failed", "".join(traceback.format_exception(exc)))
        raise RunFailedError(f"run {run_id} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    return RunResult(run_id, "completed", record)


def _heartbeat(engine: Any, run_id: int) -> Callable[[int], None]:
    """Progress writes that never end a healthy run: one the database refuses (a write lock held past the busy
    timeout, a dropped connection) is skipped with a warning and retried at the next beat; the completion
    reclaims the row even if a stale check marked it interrupted meanwhile."""
    import warnings

    from arena.errors import StoreError

    missed = [0]

    def beat(step: int) -> None:
        try:
            repo.heartbeat(engine, run_id, step=step)
        except StoreError as exc:
            missed[0] += 1
            warnings.warn(f"run {run_id}: heartbeat at step {step} not written ({exc}); retrying at the next one "
                          f"({missed[0]} missed so far)", RuntimeWarning, stacklevel=2)
        else:
            missed[0] = 0

    return beat


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def checkpoint_path(config_hash: str) -> Path:
    """Checkpoints are keyed by config hash, so any process (a sweep worker too) can resume the experiment."""
    return checkpoint_dir() / config_hash[:24] / "last.pt"


def identity(res: Resolved, plugin: dict[str, str] | None = None) -> dict[str, Any]:
    """The columns that say which experiment a run row is."""
    spec = res.spec
    return dict(arch=res.arch.name, arch_version=res.arch.version, arch_kind=res.arch.kind,
                arch_family=res.arch.family, task=res.task_spec.name, task_version=res.task_spec.version,
                split=res.task.split, size=None if spec.params else spec.size, seed=spec.seed, config=res.config,
                config_hash=res.config_hash, source=(plugin or {}).get("source", res.arch.source),
                plugin_name=(plugin or {}).get("name"), plugin_version=(plugin or {}).get("version"),
                plugin_sha256=(plugin or {}).get("sha256"), task_specific=res.arch.task_specific)


def build_for(res: Resolved) -> torch.nn.Module:
    """The run's model at initialisation (seeded with the run's seed)."""
    torch.manual_seed(res.spec.seed)
    return build_model(res.arch, res.shape, res.arch_cfg).to(res.spec.device)


def execute(res: Resolved, ckpt: Path | None, resumed: bool, progress: Progress, command: str | None,
            beat: Callable[[int], None] | None = None,
            trained: tuple[torch.nn.Module, TrainState] | None = None) -> dict[str, Any]:
    """Train, evaluate and measure without touching the database; returns ``{"fields", "metrics", "provenance"}``
    ready for :func:`arena.store.repo.complete_run` (sweep workers hand this to a single writer).

    ``trained=(model, state)``: the model was already trained elsewhere (several models stacked in one process by
    :mod:`arena.batched`); only evaluation and measurement run here."""
    spec, task, arch = res.spec, res.task, res.arch
    device = spec.device
    wall0, cpu0 = time.perf_counter(), time.process_time()
    model = trained[0] if trained is not None else build_for(res)
    params = measure_params(arch, res.shape, res.arch_cfg, model)
    progress.phase("training", total=spec.train.max_steps)
    last_beat = [time.monotonic()]

    def on_step(state: TrainState, info: dict[str, float]) -> None:
        progress.advance(state.step, info)
        if beat and time.monotonic() - last_beat[0] > 30:
            beat(state.step)
            last_beat[0] = time.monotonic()

    def on_checkpoint(state: TrainState) -> None:
        if beat:
            beat(state.step)
        last_beat[0] = time.monotonic()

    if trained is not None:
        state, custom_extra = trained[1], {}
    elif arch.custom_fit:
        state, custom_extra, params = fit_custom(arch, model, task, spec.train.max_steps, spec.seed,
                                                 lambda step, info: progress.advance(step, info))
    else:
        state = train(model, task, spec.train, spec.seed, checkpoint=ckpt, resume=resumed,
                      config_hash=res.config_hash, device=device, on_step=on_step, on_checkpoint=on_checkpoint)
        custom_extra = {}
    t_train = time.perf_counter()
    trained_s = state.seconds if trained is not None else 0.0  # this model's share of a stacked training
    progress.phase("evaluating", total=len(task.eval_splits))
    done = [0]

    def on_split(name: str) -> None:
        progress.advance(done[0], {"split": 0.0})
        done[0] += 1

    results = evaluate_task(model, task, spec.train.eval_batch_size, device, spec.train.max_eval_examples, on_split)
    t_eval = time.perf_counter()
    progress.phase("measuring")
    head = headline_split(task)
    eval_lens = [len(e.tokens) - 1 for s in task.eval_splits for e in task.splits[s]]
    seq_len = max(1, round(sum(eval_lens) / len(eval_lens))) if eval_lens else task.max_seq_len
    flops = measure_flops(arch, res.shape, res.arch_cfg, model, seq_len, state.tokens_seen)
    # time a real input of typical length (a placeholder input can short-circuit task-specific models)
    pool = [e for e in task.splits.get(head, []) or [e for s in task.eval_splits for e in task.splits[s]]]
    sample = min(pool, key=lambda e: abs(len(e.tokens) - 1 - seq_len)).tokens[:-1] if pool else None
    lat = (measure_latency(model, seq_len, spec.latency.batch, spec.latency.min_run_time, device, sample)
           if spec.latency.enabled else {})
    memory = run_memory.peak_memory_mb(device)
    state_size = analytic_state_size(arch, res.shape, res.arch_cfg, seq_len)
    score = results.get(head, {}).get("metrics", {}).get(task.metric)
    norm = normalized(score, task.chance, task.higher_is_better)
    hw = hardware(device)
    t_measure = time.perf_counter()
    extra: dict[str, Any] = {"curve": state.curve, "stopped_early": state.stopped_early, "best_val": state.best_val,
                             "stop_reason": state.stop_reason, "tokens_seen": state.tokens_seen,
                             "flops_breakdown": flops.get("breakdown"),
                             "latency_seq_len": seq_len, "wall_seconds": time.perf_counter() - wall0 + trained_s,
                             "cpu_seconds": time.process_time() - cpu0 + trained_s,
                             "phase_seconds": {"build_and_train": t_train - wall0 + trained_s,
                                               "evaluate": t_eval - t_train,
                                               "measure": t_measure - t_eval},
                             "eval_seq_len": seq_len, "memory_scope": run_memory.scope(), **custom_extra}
    if state.attention_curve:
        extra["attention_curve"] = state.attention_curve
    logs = module_logs(model)
    if logs:
        extra["module_logs"] = logs
    fields = {
        "step": state.step, "params_total": params["total"], "params_embedding": params["embedding"],
        "params_non_embedding": params["non_embedding"], "params_active": params["active"], "state_size": state_size,
        "flops_forward_per_token": flops["forward_per_token"], "flops_forward_per_example": flops["forward_per_example"],
        "flops_train_total": flops["train_total"], "flops_counted_per_example": flops["counted_forward_per_example"],
        "flops_note": flops["note"], "latency_p50_ms": lat.get("p50_ms"), "latency_p90_ms": lat.get("p90_ms"),
        "latency_batch": lat.get("batch"), "throughput_per_s": lat.get("throughput_per_s"),
        "threads": torch.get_num_threads(), "memory_mb": memory, "train_seconds": state.seconds,
        "metric": task.metric, "headline_split": head, "score": score, "normalized_score": norm,
        "chance": task.chance, "higher_is_better": task.higher_is_better, "hardware": hw, "extra": extra,
    }
    metrics = []
    for split, r in results.items():
        for name, value in r.get("metrics", {}).items():
            if name != "n":
                metrics.append({"split": split, "name": name, "value": _num(value),
                                "n": int(r["metrics"].get("n", 0)) or None})
        for key, groups in r.get("slices", {}).items():
            for val, ms in groups.items():
                for name, value in ms.items():
                    if name != "n":
                        metrics.append({"split": split, "name": name, "value": _num(value), "slice_key": key,
                                        "slice_value": str(val), "n": int(ms.get("n", 0)) or None})
    sha, dirty = git_commit()
    provenance = {"arena_version": __version__, "git_commit": sha, "git_dirty": dirty,
                  "python": sys.version.split()[0], "packages": package_versions(), "command": command}
    return {"fields": fields, "metrics": metrics, "provenance": provenance}


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def run_record(run: Any) -> dict[str, Any]:
    """The JSON shape of a run (``arena run --json`` and ``arena show --json``)."""
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
    defaults_train = RunSpec(arch="x", task="y").train.model_dump(mode="json")
    defaults_latency = RunSpec(arch="x", task="y").latency.model_dump(mode="json")
    for k, v in spec["train"].items():
        if k != "max_steps" and v != defaults_train.get(k):
            parts += ["--set", f"train.{k}={_yaml(v)}"]
    for k, v in (spec.get("latency") or {}).items():
        if v != defaults_latency.get(k):
            parts += ["--set", f"latency.{k}={_yaml(v)}"]
    for k, v in spec.get("arch_config", {}).items():
        parts += ["--set", f"arch.{k}={_yaml(v)}"]
    for k, v in spec.get("task_config", {}).items():
        parts += ["--set", f"task.{k}={_yaml(v)}"]
    import shlex

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


def _yaml(v: Any) -> str:
    import json

    return json.dumps(v) if isinstance(v, (list, dict, bool)) or v is None else str(v)


__all__ = ["run", "prepare", "run_record", "reproduce_command", "normalized", "RunResult", "resolve_url"]
