"""Sweeps: a YAML grid -> RunSpecs keyed by config hash -> executed on a process pool or a Dask cluster.

Workers only compute (:func:`arena.runner.execute`); the parent process is the single writer that records each
result in one transaction. A config hash with a ``completed`` row is never run again, so an interrupted sweep
(Ctrl-C, SIGKILL, a lost machine) is resumed by running the same command; a run that left a checkpoint continues
from it. A failed run is recorded as ``failed`` (with the error) and retried by the next invocation, updating the
same row, so every config hash has at most one row written by sweeps.

Spec format (every key is checked; unknown keys are errors)::

    name: tiny-grid
    archs: [rnn, {name: transformer, config: {n_heads: 2}}]
    tasks: [{name: counter-chain, split: iid, config: {depth: 1, n_train: 64}}]
    sizes: [tiny]            # or params: [20000, 40000]  or d_models: [16, 32]
    n_layers: [1, 2]         # optional
    seeds: [0, 1, 2]
    lrs: [1e-3, 3e-4]        # optional; default train.lr
    train: {max_steps: 20}
    latency: {min_run_time: 0.01}
    set: ["train.eval_every=10"]   # extra --set overrides applied to every run
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from arena.api import StrictConfig
from arena.errors import ArenaError

# ----------------------------------------------------------------------------------------------- spec


class _Strict(StrictConfig):
    """Unknown keys refused, floats finite, no boolean where a number is expected (see StrictConfig)."""


class ArchEntry(_Strict):
    name: str = Field(description="registered architecture name")
    config: dict[str, Any] = Field(default_factory=dict, description="arch config fields. Default: {}")
    n_layers: int | None = Field(None, ge=1, le=1024, description="layers for this arch (overrides the grid)")


class TaskEntry(_Strict):
    name: str = Field(description="registered task name")
    split: str | None = Field(None, description="task split. Default: the task's own")
    config: dict[str, Any] = Field(default_factory=dict, description="task config fields. Default: {}")


class SweepSpec(_Strict):
    name: str = Field("sweep", description="label shown in the progress bar. Default: sweep")
    archs: list[ArchEntry] = Field(min_length=1)
    tasks: list[TaskEntry] = Field(min_length=1)
    sizes: list[Literal["tiny", "small", "base"]] | None = Field(None, min_length=1)
    params: list[int] | None = Field(None, min_length=1, description="parameter budgets (widths fitted)")
    d_models: list[int] | None = Field(None, min_length=1, description="explicit widths")
    n_layers: list[int] | None = Field(None, min_length=1)
    seeds: list[int] = Field([0], min_length=1)
    lrs: list[float] | None = Field(None, min_length=1)
    train: dict[str, Any] = Field(default_factory=dict, description="TrainConfig fields for every run")
    latency: dict[str, Any] = Field(default_factory=dict, description="LatencyConfig fields for every run")
    set: list[str] = Field(default_factory=list, description="extra KEY=VALUE overrides for every run")
    device: str = "cpu"

    @field_validator("archs", mode="before")
    @classmethod
    def _arch_names(cls, v: Any) -> Any:
        return [{"name": x} if isinstance(x, str) else x for x in v] if isinstance(v, list) else v

    @field_validator("tasks", mode="before")
    @classmethod
    def _task_names(cls, v: Any) -> Any:
        return [{"name": x} if isinstance(x, str) else x for x in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _one_size_axis(self) -> SweepSpec:
        given = [k for k in ("sizes", "params", "d_models") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"give one size axis, not {' and '.join(given)}")
        return self


@dataclass(frozen=True)
class Job:
    """One run of a sweep: the RunSpec as JSON, its overrides, and its config hash (computed by the parent).
    ``width``: the resolved d_model when known (jobs of tiny width are trained several per process, see
    :func:`group_jobs`)."""

    spec: dict[str, Any]
    overrides: tuple[str, ...]
    config_hash: str
    label: str
    width: int | None = None


STACK_WIDTH = 128  # d_model up to which runs that differ only in seed and learning rate train as one stack
STACK_MAX = 8  # models per stack


def _stack_key(job: Job) -> str | None:
    """Jobs with equal keys can train as one stack (arena.batched): everything but seed and lr agrees."""
    import json

    from arena.registry import get_arch

    if job.overrides or job.width is None or job.width > STACK_WIDTH:
        return None
    try:
        arch = get_arch(job.spec["arch"])
    except Exception:  # noqa: BLE001 - an unknown arch fails in its worker with the usual message
        return None
    if arch.kind != "mixer" or arch.trainer != "gradient":
        return None
    key = {k: v for k, v in job.spec.items() if k != "seed"}
    key["train"] = {k: v for k, v in key["train"].items() if k != "lr"}
    return json.dumps(key, sort_keys=True, default=str)


def group_jobs(jobs: list[Job], max_k: int = STACK_MAX) -> list[tuple[Job, ...]]:
    """Units of work for the executors: jobs of one configuration that differ only in seed and learning rate,
    at d_model <= STACK_WIDTH, go together (up to ``max_k``, trained as one stack in one worker, each still its
    own run); every other job is a unit of one. Order is kept as far as grouping allows."""
    units: list[list[Job]] = []
    open_by_key: dict[str, list[Job]] = {}
    for j in jobs:
        key = _stack_key(j) if max_k > 1 else None
        unit = open_by_key.get(key) if key is not None else None
        if unit is not None and len(unit) < max_k:
            unit.append(j)
            continue
        units.append([j])
        if key is not None:
            open_by_key[key] = units[-1]
    return [tuple(u) for u in units]


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep YAML; every problem is an ArenaError naming the file and the key."""
    from arena.validation import load_yaml, read_text_file

    p = Path(path)
    text = read_text_file(p, "sweep spec")
    return parse_spec(load_yaml(text, f"sweep spec {p}"), str(p))


def parse_spec(data: Any, where: str = "sweep spec") -> SweepSpec:
    if not isinstance(data, dict):
        raise ArenaError(f"{where}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        from arena.errors import format_errors

        raise ArenaError(f"{where}: " + format_errors(exc)) from None


def grid_size(spec: SweepSpec) -> int:
    """How many runs the grid expands to (before duplicates are dropped)."""
    sizes = len(spec.sizes or spec.params or spec.d_models or [None])
    return (len(spec.archs) * len(spec.tasks) * sizes * len(spec.n_layers or [None]) * len(spec.seeds)
            * len(spec.lrs or [None]))


def expand(spec: SweepSpec, max_runs: int | None = None) -> list[Job]:
    """The grid as jobs, each resolved once (validating every config) to get its config hash; duplicates dropped.
    A grid larger than ``max_runs`` (default: :func:`arena.validation.max_runs`) is refused before any work."""
    from arena.runner import prepare
    from arena.spec import RunSpec
    from arena.validation import check_grid

    check_grid(grid_size(spec), f"sweep {spec.name!r}", max_runs)

    if spec.sizes:
        size_axis: list[dict[str, Any]] = [{"size": s} for s in spec.sizes]
    elif spec.params:
        size_axis = [{"size": "small", "params": p} for p in spec.params]
    elif spec.d_models:
        size_axis = [{"size": "small", "d_model": d} for d in spec.d_models]
    else:
        size_axis = [{"size": "small"}]
    layers: list[int | None] = list(spec.n_layers) if spec.n_layers else [None]
    lrs: list[float | None] = list(spec.lrs) if spec.lrs else [None]
    jobs: list[Job] = []
    seen: set[str] = set()
    for arch, task, size, nl, seed, lr in itertools.product(spec.archs, spec.tasks, size_axis, layers, spec.seeds,
                                                            lrs):
        train = dict(spec.train)
        if lr is not None:
            train["lr"] = lr
        n_layers = arch.n_layers or nl
        data = dict(arch=arch.name, task=task.name, split=task.split, seed=seed, arch_config=dict(arch.config),
                    task_config=dict(task.config), train=train, latency=dict(spec.latency), device=spec.device,
                    n_layers=n_layers, **size)
        try:
            rs = RunSpec.model_validate(data)
        except ValidationError as exc:
            from arena.errors import format_errors

            raise ArenaError(f"sweep run {arch.name}/{task.name}: " + format_errors(exc)) from None
        res = prepare(rs, list(spec.set))
        if res.config_hash in seen:
            continue
        seen.add(res.config_hash)
        label = f"{arch.name}/{task.name}" + "".join(f" {k}={v}" for k, v in size.items() if k != "size" or
                                                      len(size) == 1) + f" seed={seed}" + (f" lr={lr:g}" if lr else "")
        jobs.append(Job(res.spec.model_dump(mode="json"), (), res.config_hash, label, res.shape.d_model))
    return jobs


# ----------------------------------------------------------------------------------------------- worker


def run_job(job: Job, checkpoint_dir: str | None = None) -> dict[str, Any]:
    """Executed in a worker: prepare + execute, never touching the database. Returns a picklable dict."""
    import torch

    from arena import ownership
    from arena.measure import memory
    from arena.runner import _Silent, checkpoint_path, execute, identity, prepare
    from arena.spec import RunSpec

    torch.set_num_threads(1)
    if checkpoint_dir:
        os.environ["ARENA_CHECKPOINT_DIR"] = checkpoint_dir
    t0 = time.perf_counter()
    try:
        memory.start_run(str(job.spec.get("device") or "cpu"))  # this job's peak, not the worker's earlier jobs'
        res = prepare(RunSpec.model_validate(job.spec), list(job.overrides))
        if res.config_hash != job.config_hash:
            raise ArenaError(f"config hash changed between the parent and the worker ({job.config_hash[:12]} -> "
                             f"{res.config_hash[:12]}): different arena versions or plugins on this worker?")
        ckpt = checkpoint_path(res.config_hash)
        with ownership.claim(ckpt, f"arena sweep ({job.label})"):
            rec = execute(res, ckpt, ckpt.exists(), _Silent(), f"arena sweep ({job.label})")
        return {"ok": True, "config_hash": job.config_hash, "identity": identity(res), "record": rec,
                "seconds": time.perf_counter() - t0}
    except ownership.BusyError as exc:  # another process runs this experiment: record nothing, report it
        return {"ok": False, "busy": True, "config_hash": job.config_hash, "error": str(exc), "summary": str(exc),
                "seconds": time.perf_counter() - t0}
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the writer as a failed run
        if isinstance(exc, KeyboardInterrupt):
            raise
        return {"ok": False, "config_hash": job.config_hash, "error": "".join(traceback.format_exception(exc)),
                "summary": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - t0}


def run_unit(unit: tuple[Job, ...], checkpoint_dir: str | None = None) -> list[dict[str, Any]]:
    """Executed in a worker: one job alone, or several trained as one stack (:func:`run_stack`)."""
    if len(unit) == 1:
        return [run_job(unit[0], checkpoint_dir)]
    return run_stack(unit, checkpoint_dir)


def run_stack(jobs: tuple[Job, ...], checkpoint_dir: str | None = None) -> list[dict[str, Any]]:
    """Train the jobs' models together (:func:`arena.batched.train_many`), then evaluate and measure each as
    :func:`run_job` would; each result is that job's own. If the models cannot be stacked, or stacked training
    fails, every job runs alone instead (resuming from any checkpoint the stack wrote)."""
    import torch

    from arena import ownership
    from arena.batched import stack_problem, train_many
    from arena.runner import build_for, checkpoint_path, prepare
    from arena.spec import RunSpec

    torch.set_num_threads(1)
    if checkpoint_dir:
        os.environ["ARENA_CHECKPOINT_DIR"] = checkpoint_dir
    t0 = time.perf_counter()
    with contextlib.ExitStack() as owned:
        try:
            res = [prepare(RunSpec.model_validate(j.spec), list(j.overrides)) for j in jobs]
            if any(r.config_hash != j.config_hash for r, j in zip(res, jobs, strict=True)):
                raise ArenaError("config hash changed between the parent and the worker")
            ckpts = [checkpoint_path(r.config_hash) for r in res]
            for c, j in zip(ckpts, jobs, strict=True):
                owned.enter_context(ownership.claim(c, f"arena sweep ({j.label})"))
            models = [build_for(r) for r in res]
            if stack_problem(models, [r.spec.train for r in res]) is not None:
                raise ArenaError("not stackable")
            resumed = [c.exists() for c in ckpts]
            states = train_many(models, [r.task for r in res], [r.spec.train for r in res],
                                [r.spec.seed for r in res], checkpoints=ckpts, resume=True,
                                config_hashes=[r.config_hash for r in res], device=res[0].spec.device)
        except Exception:  # noqa: BLE001 - fall back to one run at a time, which reports its own errors
            owned.close()
            return [run_job(j, checkpoint_dir) for j in jobs]
        return _finish_stack(jobs, res, models, states, ckpts, resumed, t0)


def _finish_stack(jobs, res, models, states, ckpts, resumed, t0) -> list[dict[str, Any]]:  # noqa: ANN001
    from arena.runner import _Silent, execute, identity

    stacked = {"k": len(jobs), "wall_seconds": round(time.perf_counter() - t0, 3)}
    out = []
    for j, r, m, st, ck, was in zip(jobs, res, models, states, ckpts, resumed, strict=True):
        t1 = time.perf_counter()
        try:
            rec = execute(r, ck, was, _Silent(), f"arena sweep ({j.label})", trained=(m, st))
            rec.extra["stacked_training"] = stacked
            out.append({"ok": True, "config_hash": j.config_hash, "identity": identity(r), "record": rec,
                        "seconds": st.seconds + time.perf_counter() - t1})
        except Exception as exc:  # noqa: BLE001 - that job alone fails
            out.append({"ok": False, "config_hash": j.config_hash, "error": "".join(traceback.format_exception(exc)),
                        "summary": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - t1})
    return out


# ----------------------------------------------------------------------------------------------- executors


class Executor:
    """Submit jobs, yield results as they finish. ``shares_filesystem``: workers see this machine's checkpoint
    folder (else they use their own ``ARENA_CHECKPOINT_DIR``)."""

    shares_filesystem = True

    def map_unordered(self, units: list[tuple[Job, ...]], checkpoint_dir: str | None,
                      deadline: float | None = None) -> Iterator[dict[str, Any]]:
        """Run each unit (:func:`run_unit`) and yield one result per job as units finish. At ``deadline`` (a
        ``time.monotonic()`` value) stop waiting, end the unfinished work and raise :class:`DeadlineReached`."""
        raise NotImplementedError

    def close(self) -> None:
        pass


STOP_GRACE_S = 120.0  # how long a stopped worker may take to finish its step and write its checkpoint


class DeadlineReached(Exception):
    """The time limit passed while runs were still going (their checkpoints stay for the next invocation)."""


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _worker_init(parent: int) -> None:
    """In each spawned worker: die with the parent. The kernel sends SIGKILL when the parent dies (Linux
    PR_SET_PDEATHSIG), and a watchdog thread notices re-parenting elsewhere; without them a SIGKILLed sweep's
    workers trained on for a minute, then hung forever on the call-queue pipe, owned by init."""
    import signal
    import threading

    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    from arena import stopping

    stopping.install_in_worker()  # SIGTERM from the parent: a training job first finishes its step and checkpoints

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="arena-parent-watch", daemon=True).start()


class LocalExecutor(Executor):
    """A spawn-based process pool on this machine, kept across calls (workers=1 still runs in a child, so a crash
    cannot take the writer down)."""

    def __init__(self, workers: int = 1):
        self.workers = max(1, workers)
        self.pool: Any = None

    def map_unordered(self, units: list[tuple[Job, ...]], checkpoint_dir: str | None,
                      deadline: float | None = None) -> Iterator[dict[str, Any]]:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from concurrent.futures import TimeoutError as FuturesTimeout
        from concurrent.futures.process import BrokenProcessPool

        if self.pool is None:
            from arena.measure.memory import can_reset

            # a worker that cannot reset its peak-memory mark gets replaced after each job (an honest memory figure)
            self.pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                            max_tasks_per_child=None if can_reset() else 1,
                                            initializer=_worker_init, initargs=(os.getpid(),))
        futs = {self.pool.submit(run_unit, u, checkpoint_dir): u for u in units}
        finished = False
        try:
            try:
                for fut in as_completed(futs, timeout=_remaining(deadline)):
                    yield from self._results(fut, futs, BrokenProcessPool)
            except FuturesTimeout:
                raise DeadlineReached from None
            finished = True
        finally:
            if not finished or any(isinstance(f.exception(), BrokenProcessPool) for f in futs if f.done()
                                   and not f.cancelled()):
                self._terminate()

    @staticmethod
    def _results(fut: Any, futs: dict[Any, tuple[Job, ...]], broken: type) -> Iterator[dict[str, Any]]:
        try:
            yield from fut.result()
        except broken as exc:
            for j in futs[fut]:
                yield {"ok": False, "config_hash": j.config_hash, "error": repr(exc),
                       "summary": f"worker process died: {exc}", "seconds": 0.0}

    def _terminate(self) -> None:
        """Stopped early (deadline, Ctrl-C) or broken: end our own workers now. A worker that is training finishes
        its step and writes its checkpoint at it (SIGTERM, :mod:`arena.stopping`); one that has not ended within
        :data:`STOP_GRACE_S` is killed (its last periodic checkpoint stays)."""
        if self.pool is None:
            return
        procs = list((getattr(self.pool, "_processes", None) or {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.terminate()
        end = time.monotonic() + STOP_GRACE_S
        for p in procs:
            p.join(max(0.0, end - time.monotonic()))
            if p.is_alive():
                p.kill()
        self.pool = None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


class DaskExecutor(Executor):
    """dask.distributed: an existing scheduler (``tcp://host:8786``) or a LocalCluster bound to 127.0.0.1."""

    def __init__(self, scheduler: str | None = None, workers: int = 1):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:
            raise ArenaError("the dask executor needs dask.distributed: pip install 'arena[distributed]'") from exc
        self.cluster = None
        self.shares_filesystem = False
        if scheduler:
            try:
                self.client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise ArenaError(f"cannot connect to the Dask scheduler at {scheduler}: {exc}") from None
        else:
            self.shares_filesystem = True
            self.cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                                        host="127.0.0.1", dashboard_address=None)
            self.client = Client(self.cluster)

    @classmethod
    def from_client(cls, client: Any, shares_filesystem: bool = False) -> DaskExecutor:
        """Wrap a Client you built yourself (e.g. on a dask-jobqueue SLURMCluster); closing it stays yours."""
        ex = cls.__new__(cls)
        ex.client, ex.cluster, ex.shares_filesystem, ex._own_client = client, None, shares_filesystem, False
        return ex

    def map_unordered(self, units: list[tuple[Job, ...]], checkpoint_dir: str | None,
                      deadline: float | None = None) -> Iterator[dict[str, Any]]:
        from dask.distributed import as_completed

        futs = [self.client.submit(run_unit, u, checkpoint_dir, pure=False, key=f"arena-{u[0].config_hash[:16]}-"
                                   f"{time.time_ns()}") for u in units]
        by_key = {f.key: u for f, u in zip(futs, units, strict=True)}
        try:
            pending = as_completed(futs)
            while True:
                # polled, so a time limit also ends work that is still running (dask's as_completed cannot time out)
                fut = next(pending, None) if deadline is None else _next_before(pending, deadline)
                if fut is None:
                    break
                try:
                    yield from fut.result()
                except Exception as exc:  # a worker lost mid-task, or an unpicklable result
                    for j in by_key[fut.key]:
                        yield {"ok": False, "config_hash": j.config_hash, "error": repr(exc),
                               "summary": f"dask task failed: {type(exc).__name__}: {exc}", "seconds": 0.0}
        finally:
            for f in futs:
                f.cancel()

    def close(self) -> None:
        if getattr(self, "_own_client", True):
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _next_before(pending: Any, deadline: float) -> Any:
    """The next finished dask future, None when all are done; DeadlineReached when the deadline passes first."""
    while True:
        if pending.is_empty():
            return None
        if pending.has_ready():
            return next(pending)
        if time.monotonic() >= deadline:
            raise DeadlineReached
        time.sleep(0.2)


def make_executor(name: str, scheduler: str | None = None, workers: int = 1) -> Executor:
    if name == "local":
        if scheduler:
            raise ArenaError("--scheduler is only for --executor dask")
        return LocalExecutor(workers)
    if name == "dask":
        return DaskExecutor(scheduler, workers)
    raise ArenaError(f"unknown executor {name!r}; choose local or dask")


# ----------------------------------------------------------------------------------------------- writer


@dataclass
class SweepSummary:
    total: int = 0
    skipped: int = 0
    done: int = 0
    failed: int = 0
    resumed: int = 0
    seconds: float = 0.0
    stopped_by_deadline: bool = False
    run_ids: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "skipped_completed": self.skipped, "done": self.done, "failed": self.failed,
                "resumed_from_checkpoint": self.resumed, "seconds": round(self.seconds, 3),
                "stopped_by_deadline": self.stopped_by_deadline,
                "run_ids": self.run_ids, "errors": self.errors}


class SweepProgress:
    """done/failed/remaining with an ETA; a no-op when disabled."""

    def __init__(self, enabled: bool, name: str, total: int):
        self.bar = None
        if enabled and total:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            from arena.printing import lit, template

            self.bar = Progress(TextColumn(f"[bold]{template(name)}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("done {task.fields[done]}  failed {task.fields[failed]}  "
                                           "remaining {task.fields[remaining]}"), TimeRemainingColumn(),
                                console=Console(stderr=True))
            self.bar.start()
            self.tid = self.bar.add_task(lit(name), total=total, done=0, failed=0, remaining=total)

    def update(self, s: SweepSummary, pending: int) -> None:
        if self.bar:
            self.bar.update(self.tid, completed=s.done + s.failed, done=s.done, failed=s.failed, remaining=pending)

    def stop(self) -> None:
        if self.bar:
            self.bar.stop()


def run_jobs(jobs: list[Job], *, db: str | None = None, executor: str = "local", scheduler: str | None = None,
             workers: int = 1, progress: bool = False, name: str = "sweep", engine: Any = None,
             executor_obj: Executor | None = None, deadline: float | None = None,
             on_result: Callable[[Job, dict[str, Any]], None] | None = None, stack: int = STACK_MAX) -> SweepSummary:
    """Skip completed config hashes, run the rest, and record every result from this (the only writing) process.

    ``deadline`` (a ``time.monotonic()`` value): stop waiting then; unfinished runs keep their checkpoints and are
    resumed by the next invocation. ``stack``: at most this many tiny runs (d_model <= STACK_WIDTH, differing only
    in seed and learning rate) train together in one worker (:func:`group_jobs`); 1 runs every job alone."""
    from arena.runner import checkpoint_dir, checkpoint_path
    from arena.store import repo
    from arena.store.engine import open_store

    t0 = time.perf_counter()
    engine = engine or open_store(db)
    repo.mark_stale_runs(engine)
    summary = SweepSummary(total=len(jobs))
    todo: list[Job] = []
    for j in jobs:
        done = repo.find_completed(engine, j.config_hash)
        if done is not None:
            summary.skipped += 1
            summary.run_ids[j.config_hash] = done.id
        else:
            todo.append(j)
            if checkpoint_path(j.config_hash).exists():
                summary.resumed += 1
    by_hash = {j.config_hash: j for j in todo}
    bar = SweepProgress(progress, name, len(todo))
    own = executor_obj is None and bool(todo)
    ex = executor_obj if executor_obj is not None else (make_executor(executor, scheduler, workers) if todo else None)
    ckdir = str(checkpoint_dir().resolve()) if ex is None or ex.shares_filesystem else None
    try:
        pending = len(todo)
        results = ex.map_unordered(group_jobs(todo, stack), ckdir, deadline=deadline) if ex and todo else iter(())
        try:
            for result in results:
                pending -= 1
                job = by_hash[result["config_hash"]]
                _record(engine, job, result, summary)
                if on_result:
                    on_result(job, result)
                bar.update(summary, pending)
                if deadline is not None and time.monotonic() > deadline and pending:
                    summary.stopped_by_deadline = True
                    break
        except DeadlineReached:  # runs still going at the time limit were ended; their checkpoints stay
            summary.stopped_by_deadline = True
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()  # ends the executor's generator now: its clean-up stops unfinished workers
    finally:
        bar.stop()
        if own and ex is not None:
            ex.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def _record(engine: Any, job: Job, result: dict[str, Any], summary: SweepSummary) -> None:
    from arena.store import repo

    if result.get("busy"):  # another live process runs this experiment and records it itself
        summary.failed += 1
        summary.errors[job.config_hash] = result["summary"]
        return
    if result["ok"]:  # a failed/interrupted row of this experiment is completed, not duplicated
        summary.run_ids[job.config_hash] = repo.import_runs(engine, [(result["identity"], result["record"])])[0]
        summary.done += 1
        return
    prev = repo.find_resumable(engine, job.config_hash)
    summary.failed += 1
    summary.errors[job.config_hash] = result.get("summary", "failed")
    if prev is not None:  # retried and failed again: the same row records the new error
        repo.reopen_run(engine, prev.id)
        repo.end_run(engine, prev.id, "failed", result["error"])
        return
    ident = _identity_for(job)
    if ident is None:
        return
    run_id = repo.create_run(engine, **ident)
    repo.end_run(engine, run_id, "failed", result["error"])
    summary.run_ids[job.config_hash] = run_id


def _identity_for(job: Job) -> dict[str, Any] | None:
    """The row identity of a failed job: with its overrides if they resolve, else without (the overrides may be
    what failed), keeping the job's own config hash."""
    from arena.runner import identity, prepare
    from arena.spec import RunSpec

    for overrides in (list(job.overrides), []):
        try:
            ident = identity(prepare(RunSpec.model_validate(job.spec), overrides))
        except Exception:  # noqa: BLE001 - try the next, simpler resolution
            continue
        ident["config_hash"] = job.config_hash
        return ident
    return None


def run_sweep(spec: SweepSpec, **kwargs: Any) -> SweepSummary:
    jobs = expand(spec)
    return run_jobs(jobs, name=spec.name, **kwargs)


def scores_by_hash(engine: Any, hashes: Iterable[str]) -> dict[str, float | None]:
    from arena.store import repo

    out: dict[str, float | None] = {}
    for h in hashes:
        r = repo.find_completed(engine, h)
        if r is not None:
            out[h] = r.score
    return out
