"""One run end to end: resolve -> build -> train -> score -> measure (filling a :class:`arena.record.RunRecord`) -> store.

The run row is written as ``running`` before training starts (with a heartbeat at every checkpoint), and
completed in one transaction with its metrics and provenance; an exception marks it ``failed``, Ctrl-C or
SIGTERM ``interrupted``. ``resume=True`` continues the newest unfinished run with the same config hash from its
checkpoint.
"""

from __future__ import annotations

import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from arena import ownership, stopping
from arena.blocks import analytic_state_size, build_model, module_logs
from arena.errors import ArenaError, RunFailedError
from arena.evaluate import evaluate_task
from arena.measure import memory as run_memory
from arena.measure.flops import measure_flops
from arena.measure.hardware import hardware
from arena.measure.latency import measure_latency, typical_input
from arena.measure.params import measure_params
from arena.record import RunRecord, normalized, provenance, reproduce_command
from arena.record import summary as run_record
from arena.registry import get_arch, get_task
from arena.spec import Resolved, RunSpec, apply_overrides, resolve
from arena.store import repo
from arena.store.engine import open_store, resolve_url
from arena.train import TrainState, fit_custom, hand_written_prior, train
from arena.validation import check_memory, env_dir


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


def headline_split(task: Any) -> str:
    if task.headline_split:
        return task.headline_split
    splits = task.eval_splits
    for name in ("test", "test_ood"):
        if name in splits:
            return name
    return [s for s in splits if s != "val"][-1] if [s for s in splits if s != "val"] else splits[-1]


def checkpoint_dir() -> Path:
    """$ARENA_CHECKPOINT_DIR (default results/checkpoints); a path that is a file is an ArenaError naming it."""
    return env_dir("ARENA_CHECKPOINT_DIR", "results/checkpoints")


def prepare(spec: RunSpec, overrides: list[str] | None = None, extra_hash: str = "") -> Resolved:
    arch = get_arch(spec.arch)
    task_spec = get_task(spec.task)
    if overrides:
        spec = apply_overrides(spec, overrides, arch, task_spec)
    res = resolve(spec, arch, task_spec, extra_hash=extra_hash)
    check_memory(res)  # before any model is built or any row written
    checkpoint_dir()  # likewise: the environment's checkpoint folder is usable
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
    # SIGTERM and Ctrl-C while training end the run after a whole step with its checkpoint at that step
    # (arena.stopping), elsewhere (or a second time) at once; either way the row is recorded as interrupted
    with stopping.handling(signal.SIGTERM, signal.SIGINT):
        try:  # from the moment the row exists: any end of this process is recorded on it
            owner.note(run_id=run_id)
            repo.heartbeat(engine, run_id, checkpoint_path=str(ckpt))
            rec = execute(res, ckpt, resumed, progress, command, beat=_heartbeat(engine, run_id))
            repo.complete_run(engine, run_id, rec)
            record = run_record(repo.get_run(engine, run_id))
        except KeyboardInterrupt as exc:
            saved = isinstance(exc, stopping.Stopped) and exc.saved
            where = f" at step {exc.step}, checkpoint saved" if saved else ""
            repo.end_run(engine, run_id, "interrupted", f"interrupted by signal{where}; resume with --resume")
            exc.arena_run_id = run_id  # the CLI names it in its "interrupted — resume with …" line
            raise
        except ArenaError as exc:
            repo.end_run(engine, run_id, "failed", str(exc))
            raise RunFailedError(f"run {run_id} failed: {exc}") from exc
        except Exception as exc:
            repo.end_run(engine, run_id, "failed", "".join(traceback.format_exception(exc)))
            raise RunFailedError(f"run {run_id} failed: {type(exc).__name__}: {exc}") from exc
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


@dataclass
class _Clock:
    """Wall and CPU time since the run's start, and the phase boundaries (``phase_seconds`` in extra)."""

    wall0: float
    cpu0: float
    marks: dict[str, float]

    @classmethod
    def start(cls) -> _Clock:
        return cls(time.perf_counter(), time.process_time(), {})

    def mark(self, name: str) -> None:
        self.marks[name] = time.perf_counter()


def execute(res: Resolved, ckpt: Path | None, resumed: bool, progress: Progress, command: str | None,
            beat: Callable[[int], None] | None = None,
            trained: tuple[torch.nn.Module, TrainState] | None = None) -> RunRecord:
    """Build -> train -> score -> measure, without touching the database; returns the :class:`RunRecord` that
    :func:`arena.store.repo.complete_run` writes (sweep workers hand it to a single writer).

    ``trained=(model, state)``: the model was already trained elsewhere (several models stacked in one process by
    :mod:`arena.batched`); only evaluation and measurement run here."""
    clock, rec = _Clock.start(), RunRecord()
    model = trained[0] if trained is not None else build_for(res)
    rec.set_params(measure_params(res.arch, res.shape, res.arch_cfg, model))
    state = trained[1] if trained is not None else train_step(res, model, rec, ckpt, resumed, progress, beat)
    rec.set_prior(hand_written_prior(model, rec.extra))  # after training: the skeleton may be chosen for the task
    shared = state.seconds if trained is not None else 0.0  # this model's share of a stacked training
    clock.mark("train")
    score_step(res, model, rec, progress)
    clock.mark("evaluate")
    measure_step(res, model, state, rec, progress)
    clock.mark("measure")
    rec.step, rec.train_seconds = state.step, state.seconds
    rec.extra = {"curve": state.curve, "stopped_early": state.stopped_early, "best_val": state.best_val,
                 "stop_reason": state.stop_reason, "tokens_seen": state.tokens_seen,
                 "wall_seconds": time.perf_counter() - clock.wall0 + shared,
                 "cpu_seconds": time.process_time() - clock.cpu0 + shared,
                 "phase_seconds": {"build_and_train": clock.marks["train"] - clock.wall0 + shared,
                                   "evaluate": clock.marks["evaluate"] - clock.marks["train"],
                                   "measure": clock.marks["measure"] - clock.marks["evaluate"]},
                 **rec.extra}
    if state.attention_curve:
        rec.extra["attention_curve"] = state.attention_curve
    logs = module_logs(model)
    if logs:
        rec.extra["module_logs"] = logs
    rec.provenance = provenance(command)
    return rec


def train_step(res: Resolved, model: torch.nn.Module, rec: RunRecord, ckpt: Path | None, resumed: bool,
               progress: Progress, beat: Callable[[int], None] | None) -> TrainState:
    """Train with arena's loop, or the module's own ``fit`` for an architecture that declares a custom trainer."""
    spec, arch = res.spec, res.arch
    progress.phase("training", total=spec.train.max_steps)
    if arch.custom_fit:
        return _fit_custom(res, model, rec, progress)
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

    return train(model, res.task, spec.train, spec.seed, checkpoint=ckpt, resume=resumed,
                 config_hash=res.config_hash, device=spec.device, on_step=on_step, on_checkpoint=on_checkpoint)


def _fit_custom(res: Resolved, model: torch.nn.Module, rec: RunRecord, progress: Progress) -> TrainState:
    state, summary, params = fit_custom(res.arch, model, res.task, res.spec.train.max_steps, res.spec.seed,
                                        lambda step, info: progress.advance(step, info))
    rec.set_params(params)
    rec.extra.update(summary)
    return state


def score_step(res: Resolved, model: torch.nn.Module, rec: RunRecord, progress: Progress) -> None:
    """Evaluate every split and slice with the task's scoring mode; fill the metric rows and the headline."""
    spec, task = res.spec, res.task
    progress.phase("evaluating", total=len(task.eval_splits))
    done = [0]

    def on_split(name: str) -> None:
        progress.advance(done[0], {"split": 0.0})
        done[0] += 1

    results = evaluate_task(model, task, spec.train.eval_batch_size, spec.device, spec.train.max_eval_examples,
                            on_split)
    rec.set_scores(results, task, headline_split(task))


def measure_step(res: Resolved, model: torch.nn.Module, state: TrainState, rec: RunRecord,
                 progress: Progress) -> None:
    """FLOPs, latency on a real input of typical length, peak memory, state size and hardware."""
    spec, device = res.spec, res.spec.device
    progress.phase("measuring")
    # time a real input of typical length (a placeholder input can short-circuit task-specific models)
    seq_len, sample = typical_input(res.task, rec.headline_split or headline_split(res.task))
    rec.set_flops(measure_flops(res.arch, res.shape, res.arch_cfg, model, seq_len, state.tokens_seen))
    rec.set_latency(measure_latency(model, seq_len, spec.latency.batch, spec.latency.min_run_time, device, sample)
                    if spec.latency.enabled else {})
    rec.memory_mb = run_memory.peak_memory_mb(device)
    rec.state_size = analytic_state_size(res.arch, res.shape, res.arch_cfg, seq_len)
    rec.threads, rec.hardware = torch.get_num_threads(), hardware(device)
    rec.extra.update({"latency_seq_len": seq_len, "eval_seq_len": seq_len, "memory_scope": run_memory.scope()})


__all__ = ["run", "prepare", "run_record", "reproduce_command", "normalized", "RunResult", "resolve_url"]
