"""Plugin submission: check new architecture code in a child process, then record a small standard suite.

``arena submit PATH|PACKAGE`` accepts a single ``.py`` file defining a module-level :class:`~arena.api.ArchSpec`
(e.g. through ``@arch_spec``) or an installed distribution exposing the ``arena.architectures`` entry point
(named by its architecture name or its distribution name).

What runs where:

* The **parent** (this process) never imports the plugin. It resolves the target from files and package
  metadata only, hashes the source (SHA-256 of the file, or of every file of the plugin's top-level package),
  and, for a single file, copies the exact bytes it hashed into a private folder so the code that runs is the
  code that was hashed.
* A **child** (``python -m arena.submit --worker ...``) runs under ``RLIMIT_AS`` (the memory limit) in its own
  process group, killed when the wall-clock limit passes. It loads the plugin, runs the conformance suite
  (:func:`arena.testing.check_architecture`), and only if every check passes trains the standard suite,
  writing runs to a *temporary* SQLite database. Results come back as JSON lines over a private pipe (the
  plugin's own stdout/stderr go to a log, so a ``print`` cannot forge a result).
* Only when the child reports success does the parent copy the completed runs into the real database, in one
  transaction, flagged ``source="plugin"`` with the plugin's name, version and SHA-256 (set by the parent, not
  taken from the child). A failure anywhere (a check, the time or memory limit, a crash mid-suite) leaves the
  real database untouched: the temporary one is deleted with everything in it.

This is a resource sandbox, not a security sandbox: plugin code runs with the user's permissions (files,
network). It protects the leaderboard from wrong numbers and the machine from runaway jobs, not from malice.

Exit codes (:class:`SubmitResult.exit_code`): 0 accepted, 1 rejected (a failed check, a limit, a crash), 2 bad
input (missing path, unknown plugin or task, ambiguous choice).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from arena.errors import ArenaError, suggest

DEFAULT_TIME_LIMIT = 300.0  # seconds of wall clock for the whole child (loading, checks and suite)
DEFAULT_MEMORY_LIMIT_MB = 4096  # address space of the child; a tiny suite run peaks near 1 GB of it
DEFAULT_TASKS = ("scan-depth",)
DEFAULT_MAX_STEPS = 60
# the standard suite is small on purpose: it proves the plugin trains and scores end to end, it is not a result
SUITE_TASK_OVERRIDES = {"n_train": 512, "n_val": 32, "n_test": 32, "n_test_per_depth": 16}
SUITE_TRAIN_OVERRIDES = ("train.batch_size=16", "train.max_eval_examples=64", "train.warmup_steps=10",
                         "latency.min_run_time=0.05", "latency.batch=8")
GROUP = "arena.architectures"
LOG_TAIL = 2000

# inner functions of arena.testing.check_architecture -> the check names it reports (to name a check that hangs)
CHECK_FUNCTIONS = {"config_roundtrip": "config", "build": "build", "output_shape": "shape", "finite": "finite",
                   "gradients": "gradients", "causality": "causality", "step_equals_parallel": "step == parallel",
                   "param_count": "param count", "determinism": "determinism", "flops_declared": "flops declared"}
_MEMORY_ERRORS = ("MemoryError", "can't allocate memory", "Cannot allocate memory", "bad_alloc", "out of memory")


class SubmitInputError(ArenaError):
    """Bad input to ``arena submit`` (exit code 2): nothing was run."""


@dataclass
class PluginSource:
    """What the parent knows about a plugin without running any of its code."""

    kind: Literal["file", "package"]
    name: str  # the distribution name, or the file name
    version: str | None  # the distribution version; for a file, filled in by the child from the spec
    sha256: str
    files: int  # how many files were hashed
    path: str  # the file, or the folder of the package's sources
    arch: str | None = None  # known up front for packages; for files, found by the child (or --name)
    entry_point: str | None = None  # "module:attr" for packages

    def label(self) -> str:
        return f"{self.name} {self.version}" if self.version else self.name


@dataclass
class SubmitResult:
    ok: bool
    exit_code: int
    message: str
    plugin: dict[str, Any]
    arch: str | None = None
    loaded_from: str | None = None  # the file the factory was defined in, as the child saw it
    failed_check: str | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)  # recorded in the real database
    sandbox_runs: list[dict[str, Any]] = field(default_factory=list)  # finished in the sandbox (recorded or not)
    db: str | None = None
    seconds: float = 0.0
    log_tail: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# -- resolving the target (parent side: metadata and bytes only, never an import) ----------------------------------
def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sha256_tree(paths: list[Path], root: Path) -> str:
    """Hash of a set of files: SHA-256 over (relative path, file SHA-256) pairs in sorted order."""
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda p: p.relative_to(root).as_posix()):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + sha256_file(p).encode() + b"\n")
    return h.hexdigest()


def _source_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            and p.suffix not in (".pyc", ".pyo")]


def resolve_plugin(target: str, name: str | None = None) -> PluginSource:
    """Turn ``PATH|PACKAGE`` into a :class:`PluginSource`; raises :class:`SubmitInputError` for bad input."""
    p = Path(target)
    if target.endswith(".py") or os.sep in target or p.exists():
        if not p.is_file():
            raise SubmitInputError(f"no such plugin file: {target}")
        if p.suffix != ".py":
            raise SubmitInputError(f"a single-file plugin must be a .py file, got {target}")
        p = p.resolve()
        return PluginSource(kind="file", name=p.name, version=None, sha256=sha256_file(p), files=1, path=str(p),
                            arch=name)
    return _resolve_package(target, name)


def _resolve_package(target: str, name: str | None) -> PluginSource:
    import importlib.util
    from importlib.metadata import entry_points

    eps = list(entry_points(group=GROUP))
    by_name = [ep for ep in eps if ep.name == target]
    by_dist = [ep for ep in eps if getattr(ep, "dist", None) and _norm(ep.dist.name) == _norm(target)]
    matches = by_name or by_dist
    if name:
        matches = [ep for ep in matches if ep.name == name]
    if not matches:
        from arena.registry import BUILTIN_ARCHS

        if target in BUILTIN_ARCHS:
            raise SubmitInputError(f"{target!r} is a built-in architecture, not a plugin; submit a plugin file "
                                   "(arena submit path/to/my_arch.py) or an installed plugin package")
        if (by_name or by_dist) and name:
            raise SubmitInputError(f"{target!r} has no architecture named {name!r}; it exposes "
                                   + ", ".join(sorted(ep.name for ep in by_name or by_dist)))
        known = [ep.name for ep in eps] + [ep.dist.name for ep in eps if getattr(ep, "dist", None)]
        raise SubmitInputError(f"no such plugin file or installed plugin {target!r} (looked for a .py file and for "
                               f"the {GROUP!r} entry points){suggest(target, known)}")
    if len({ep.name for ep in matches}) > 1:
        raise SubmitInputError(f"{target!r} exposes several architectures ("
                               + ", ".join(sorted(ep.name for ep in matches)) + "); choose one with --name")
    ep = matches[0]
    dist = getattr(ep, "dist", None)
    top = ep.value.partition(":")[0].split(".")[0]
    # find_spec on a top-level name locates the package without executing it
    try:
        mspec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        mspec = None
    files: list[Path] = []
    root: Path | None = None
    if mspec is not None and mspec.submodule_search_locations:
        for loc in mspec.submodule_search_locations:
            root = Path(loc)
            files += _source_files(root)
        root = root.parent if root else None
    elif mspec is not None and mspec.origin and Path(mspec.origin).is_file():
        files, root = [Path(mspec.origin)], Path(mspec.origin).parent
    elif dist is not None and dist.files:  # fall back to the installed files the distribution lists
        located = [Path(dist.locate_file(f)) for f in dist.files]
        files = [f for f in located if f.is_file() and f.suffix not in (".pyc", ".pyo")]
        root = Path(os.path.commonpath([str(f) for f in files])) if files else None
    if not files or root is None:
        raise ArenaError(f"cannot find the source files of plugin {ep.name!r} (module {top!r}) to hash them; "
                         "is the package installed correctly?", )
    return PluginSource(kind="package", name=dist.name if dist else top, version=dist.version if dist else None,
                        sha256=sha256_tree(files, root), files=len(files), path=str(root / top), arch=ep.name,
                        entry_point=ep.value)


def check_tasks(tasks: list[str]) -> list[str]:
    from arena.registry import TASKS

    tasks = [t for t in tasks if t] or list(DEFAULT_TASKS)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise SubmitInputError(f"unknown task {unknown[0]!r}{suggest(unknown[0], TASKS.names())}")
    return tasks


# -- running the child and judging what it says -------------------------------------------------------------------
def submit(target: str, *, tasks: list[str] | None = None, db: str | None = None, name: str | None = None,
           time_limit: float = DEFAULT_TIME_LIMIT, memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB,
           max_steps: int = DEFAULT_MAX_STEPS, command: str | None = None,
           on_event: Callable[[dict[str, Any]], None] | None = None) -> SubmitResult:
    """Validate a plugin in a sandboxed child and, if it passes, record the standard suite in ``db``.

    Raises :class:`SubmitInputError` for bad input; every other outcome is a :class:`SubmitResult`.
    """
    from arena.store.engine import resolve_url

    if time_limit <= 0 or memory_limit_mb <= 0 or max_steps < 1:
        raise SubmitInputError("--time-limit, --memory-limit and --max-steps must be positive")
    source = resolve_plugin(target, name)
    tasks = check_tasks(list(tasks or []))
    url = resolve_url(db)
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="arena-submit-"))
    try:
        return _submit_in(tmp, source, tasks, url, time_limit, memory_limit_mb, max_steps, command,
                          on_event or (lambda e: None), t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _submit_in(tmp: Path, source: PluginSource, tasks: list[str], url: str, time_limit: float, memory_mb: int,
               max_steps: int, command: str | None, on_event: Callable[[dict[str, Any]], None],
               t0: float) -> SubmitResult:
    plugin = {"source": "plugin", "name": source.name, "version": source.version, "sha256": source.sha256}
    code_path = source.path
    if source.kind == "file":  # run exactly the bytes that were hashed
        data = Path(source.path).read_bytes()
        if hashlib.sha256(data).hexdigest() != source.sha256:
            raise SubmitInputError(f"{source.path} changed while it was being submitted; try again")
        (tmp / "plugin").mkdir()
        code_path = str(tmp / "plugin" / Path(source.path).name)
        Path(code_path).write_bytes(data)
    suite_db = tmp / "suite.db"
    request = {"kind": source.kind, "file": code_path if source.kind == "file" else None, "arch": source.arch,
               "entry_point": source.entry_point, "dist": source.name if source.kind == "package" else None,
               "plugin": plugin, "tasks": tasks, "max_steps": max_steps, "db": f"sqlite:///{suite_db}",
               "checkpoint_dir": str(tmp / "checkpoints"), "time_limit": time_limit, "command": command}
    (tmp / "request.json").write_text(json.dumps(request))
    shown = source.path if source.kind == "file" else None

    def unsandbox(e: dict[str, Any]) -> dict[str, Any]:  # name the user's file, not the private copy
        if shown:
            for k in ("detail", "file"):
                if isinstance(e.get(k), str):
                    e[k] = e[k].replace(code_path, shown)
        return e

    events, timed_out, returncode, log = _run_child(tmp, time_limit, memory_mb, lambda e: on_event(unsandbox(e)))
    if shown:
        log = log.replace(code_path, shown)
    result = SubmitResult(ok=False, exit_code=1, message="", plugin=plugin, db=_safe_url(url))
    result.log_tail = log[-LOG_TAIL:]
    for e in events:
        if e.get("event") == "loaded":
            result.arch, result.loaded_from = e.get("arch"), e.get("file")
            if source.kind == "file":
                plugin["version"] = str(e.get("plugin_version"))
        elif e.get("event") == "run":
            result.sandbox_runs.append({k: v for k, v in e.items() if k != "event"})
        elif e.get("event") == "check":
            result.checks.append({"name": e["name"], "ok": e["ok"], "detail": _annotate(e["detail"], memory_mb)})
    errors = [e for e in events if e.get("event") == "error"]
    done = next((e for e in events if e.get("event") == "done"), None)
    stages = [e for e in events if e.get("event") == "stage"]
    where = stages[-1]["stage"] if stages else "startup"
    failed = [c for c in result.checks if not c["ok"]]
    if timed_out:
        check = _stuck_check(log) if where == "conformance" else None
        result.failed_check = "time limit"
        place = f"in check {check!r}" if check else f"during {where}"
        result.message = (f"time limit exceeded: the plugin did not finish within {time_limit:g} s "
                          f"(stopped {place})")
    elif errors:
        err = errors[0]
        result.failed_check = err.get("check", "load")
        result.exit_code = int(err.get("exit_code", 1))
        result.message = f"failed check {result.failed_check!r}: {_annotate(err['detail'], memory_mb)}"
    elif failed:
        result.failed_check = failed[0]["name"]
        result.message = f"failed check {failed[0]['name']!r}: {failed[0]['detail']}" + (
            f" (and {len(failed) - 1} more: " + ", ".join(c["name"] for c in failed[1:]) + ")" if len(failed) > 1 else "")
    elif done is None or returncode != 0:
        result.failed_check = "crash"
        how = (f"was killed by signal {signal.Signals(-returncode).name}" if returncode and returncode < 0
               else f"exited with code {returncode}")
        check = _stuck_check(log) if where == "conformance" else None
        hint = f" (over the memory limit of {memory_mb} MB?)" if any(m in log for m in _MEMORY_ERRORS) or \
            returncode == -signal.SIGKILL else ""
        result.message = (f"the sandboxed process {how} {f'in check {check!r}' if check else f'during {where}'}"
                          f"{hint}: {_last_line(log)}")
    if result.failed_check is not None:
        result.message += "; nothing was recorded"
        result.seconds = time.monotonic() - t0
        return result
    try:
        result.runs = copy_runs(f"sqlite:///{tmp / 'suite.db'}", url, [r["run_id"] for r in done["runs"]],
                                plugin=plugin, arch=result.arch or "")
    except ArenaError as exc:
        result.failed_check = "record"
        result.message = f"could not record the suite runs: {exc}; nothing was recorded"
        result.seconds = time.monotonic() - t0
        return result
    result.ok, result.exit_code = True, 0
    result.message = (f"accepted: {result.arch} ({source.label() if source.kind == 'package' else source.name}, "
                      f"sha256 {source.sha256[:12]}) passed {len(result.checks)} checks; "
                      f"{len(result.runs)} run(s) recorded")
    result.seconds = time.monotonic() - t0
    return result


def _safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def _annotate(detail: str, memory_mb: int) -> str:
    if any(m in detail for m in _MEMORY_ERRORS):
        return f"{detail} [over the sandbox memory limit of {memory_mb} MB]"
    return detail


def _last_line(log: str) -> str:
    lines = [ln.strip() for ln in log.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "(no output)"


def _stuck_check(log: str) -> str | None:
    """The conformance check a faulthandler dump shows as running (innermost frame first)."""
    for m in re.finditer(r'File "([^"]+)", line \d+ in (\w+)', log):
        path, func = m.groups()
        if path.replace("\\", "/").endswith("arena/testing.py") and func in CHECK_FUNCTIONS:
            return CHECK_FUNCTIONS[func]
    return None


def _run_child(tmp: Path, time_limit: float, memory_mb: int,
               on_event: Callable[[dict[str, Any]], None]) -> tuple[list[dict[str, Any]], bool, int, str]:
    """Start the worker under the limits; collect its JSON events until it exits or the time limit passes."""
    read_fd, write_fd = os.pipe()
    env = {k: v for k, v in os.environ.items() if k != "ARENA_DB_URL"}
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    limit = int(memory_mb) * 1024 * 1024

    def limits() -> None:  # runs in the child between fork and exec: no imports or locks here, C calls only
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    log_path = tmp / "child.log"
    events: list[dict[str, Any]] = []
    timed_out = False
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "arena.submit", "--worker", str(tmp / "request.json"), "--result-fd",
             str(write_fd)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=tmp, env=env,
            pass_fds=(write_fd,), preexec_fn=limits, start_new_session=True)
        os.close(write_fd)
        deadline = time.monotonic() + time_limit
        buf = b""
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                ready, _, _ = select.select([pipe], [], [], min(left, 1.0))
                if not ready:
                    continue
                chunk = pipe.read(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(event, dict):
                        events.append(event)
                        on_event(event)
        if not timed_out:
            try:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
        if timed_out:
            _stop(proc)
    return events, timed_out, proc.returncode, log_path.read_text(errors="replace")


def _stop(proc: subprocess.Popen) -> None:
    """Ask the child's process group for a traceback (faulthandler on SIGUSR1), then kill that group."""
    try:
        os.killpg(proc.pid, signal.SIGUSR1)
        proc.wait(timeout=2)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


# -- recording: temporary database -> real database, one transaction ------------------------------------------------
def copy_runs(src_url: str, dst_url: str, run_ids: list[int], *, plugin: dict[str, Any], arch: str) -> list[dict[str, Any]]:
    """Copy completed runs (with metrics and provenance) into ``dst_url`` in one transaction.

    Provenance fields are set from what the parent knows (name, version, SHA-256, ``source="plugin"``); a row the
    child wrote for another architecture, or that is not ``completed``, is refused and nothing is copied.
    """
    from sqlalchemy import select
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.orm import Session, selectinload

    from arena.errors import StoreError
    from arena.store.engine import open_store
    from arena.store.models import Metric, Provenance, Run

    src = open_store(src_url)
    with Session(src, expire_on_commit=False) as s:
        runs = list(s.scalars(select(Run).where(Run.id.in_(run_ids)).order_by(Run.id)
                              .options(selectinload(Run.metrics), selectinload(Run.provenance))))
    src.dispose()
    if len(runs) != len(run_ids) or not runs:
        raise ArenaError(f"the sandbox reported runs {run_ids} but the temporary database has {len(runs)}")
    for r in runs:
        if r.status != "completed" or r.arch != arch or r.provenance is None:
            raise ArenaError(f"temporary run {r.id} is {r.status} for {r.arch!r}; expected a completed {arch!r} run")
    run_cols = [c.key for c in Run.__table__.columns if c.key != "id"]
    metric_cols = [c.key for c in Metric.__table__.columns if c.key not in ("id", "run_id")]
    prov_cols = [c.key for c in Provenance.__table__.columns if c.key != "run_id"]
    dst = open_store(dst_url)
    out: list[dict[str, Any]] = []
    try:
        with Session(dst, expire_on_commit=False) as d, d.begin():
            for r in runs:
                new = Run(**{c: getattr(r, c) for c in run_cols})
                new.source, new.plugin_name = "plugin", plugin["name"]
                new.plugin_version, new.plugin_sha256 = plugin["version"], plugin["sha256"]
                new.checkpoint_path, new.pid = None, None  # the checkpoint was in the deleted sandbox folder
                new.metrics = [Metric(**{c: getattr(m, c) for c in metric_cols}) for m in r.metrics]
                new.provenance = Provenance(**{c: getattr(r.provenance, c) for c in prov_cols})
                d.add(new)
                d.flush()
                out.append({"run_id": new.id, "task": new.task, "split": new.split, "metric": new.metric,
                            "score": new.score, "normalized_score": new.normalized_score,
                            "params": new.params_total, "config_hash": new.config_hash})
    except DBAPIError as exc:
        raise StoreError(f"could not record the runs: {exc.orig}") from None
    return out


# -- the child ----------------------------------------------------------------------------------------------------
def _worker(request_path: str, result_fd: int) -> int:
    """Runs in the sandboxed child: load the plugin, check it, run the suite; report JSON lines on ``result_fd``."""
    import faulthandler

    out = os.fdopen(result_fd, "w", buffering=1)

    def emit(**event: Any) -> None:
        out.write(json.dumps(event, default=str) + "\n")
        out.flush()

    req = json.loads(Path(request_path).read_text())
    faulthandler.enable(all_threads=True)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    faulthandler.dump_traceback_later(float(req["time_limit"]) + 30, exit=True)  # in case the parent is gone
    # only the submitted plugin is loaded: other installed plugins cannot interfere with (or break) the checks
    os.environ["ARENA_NO_PLUGINS"] = "1"
    os.environ["ARENA_CHECKPOINT_DIR"] = req["checkpoint_dir"]
    emit(event="stage", stage="loading")
    try:
        spec, version = _load_plugin(req)
    except _Rejected as exc:
        emit(event="error", check=exc.check, detail=exc.detail, exit_code=exc.exit_code)
        return 1
    emit(event="loaded", arch=spec.name, version=spec.version, plugin_version=version, kind=spec.kind,
         family=spec.family, file=_source_of(spec.factory))
    plugin = dict(req["plugin"], version=req["plugin"]["version"] or version)
    policy = _policy(spec)
    if policy:
        emit(event="error", check=policy[0], detail=policy[1])
        return 1
    emit(event="stage", stage="conformance")
    import torch

    torch.set_num_threads(1)
    from arena.testing import check_architecture

    results = check_architecture(spec)
    for r in results:
        emit(event="check", name=r.name, ok=r.ok, detail=r.detail)
    if not all(r.ok for r in results):
        return 1
    from arena.errors import ArenaError as Err
    from arena.runner import run
    from arena.spec import RunSpec

    recorded = []
    for task in req["tasks"]:
        emit(event="stage", stage=f"suite run on {task}")
        try:
            overrides = _suite_overrides(task, int(req["max_steps"]))
            res = run(RunSpec(arch=spec.name, task=task, size="tiny", seed=0, threads=1), overrides=overrides,
                      db=req["db"], plugin=plugin, command=req.get("command"))
        except Err as exc:
            emit(event="error", check=f"suite:{task}", detail=str(exc))
            return 1
        except Exception as exc:
            emit(event="error", check=f"suite:{task}", detail=f"{type(exc).__name__}: {exc}")
            return 1
        rec = res.record
        recorded.append({"run_id": res.run_id, "task": task, "score": rec["score"]})
        emit(event="run", run_id=res.run_id, task=task, metric=rec["metric"], score=rec["score"],
             normalized_score=rec["normalized_score"], steps=rec["steps"])
    emit(event="done", runs=recorded)
    return 0


def _source_of(obj: Any) -> str | None:
    import inspect

    try:
        return inspect.getsourcefile(obj)
    except (TypeError, OSError):
        return None


class _Rejected(Exception):
    def __init__(self, check: str, detail: str, exit_code: int = 1):
        super().__init__(detail)
        self.check, self.detail, self.exit_code = check, detail, exit_code


def _describe_exc(exc: BaseException, path: str | None = None) -> str:
    import traceback

    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno}{f' of {Path(path).name}' if path else ''})"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if path is None or f.filename == path]
    where = f" (line {frames[-1].lineno})" if frames and path else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _load_plugin(req: dict[str, Any]) -> tuple[Any, str]:
    """Import the plugin and return its registered spec (``source="plugin"``) and version string."""
    from dataclasses import replace

    from arena.api import ArchSpec
    from arena.errors import ArenaError as Err
    from arena.registry import ARCHS, register_arch

    if req["kind"] == "file":
        import importlib.util

        path = req["file"]
        modname = "arena_submitted_" + re.sub(r"\W", "_", Path(path).stem)
        mspec = importlib.util.spec_from_file_location(modname, path)
        module = importlib.util.module_from_spec(mspec)
        sys.modules[modname] = module
        try:
            mspec.loader.exec_module(module)
        except BaseException as exc:  # SystemExit from a plugin is a failure too
            raise _Rejected("import", _describe_exc(exc, path)) from None
        found = {id(v): v for v in vars(module).values() if isinstance(v, ArchSpec)}
        specs = list(found.values())
        if req["arch"]:
            chosen = [s for s in specs if s.name == req["arch"]]
            if not chosen:
                raise _Rejected("spec", f"{Path(path).name} defines no ArchSpec named {req['arch']!r} (it defines: "
                                + (", ".join(sorted(s.name for s in specs)) or "none") + ")", exit_code=2)
            specs = chosen
        if not specs:
            raise _Rejected("spec", f"{Path(path).name} defines no module-level ArchSpec (decorate the factory with "
                            "@arena.arch_spec(...) and keep the result at module level)")
        if len(specs) > 1:
            raise _Rejected("spec", f"{Path(path).name} defines several ArchSpecs ("
                            + ", ".join(sorted(s.name for s in specs)) + "); choose one with --name", exit_code=2)
        spec = replace(specs[0], source="plugin")
        try:
            register_arch(spec)
        except Err as exc:
            raise _Rejected("register", f"{exc}; rename the architecture") from None
        version = getattr(module, "__version__", None)
        return spec, str(version) if isinstance(version, str) else str(spec.version)
    name = req["arch"]
    try:
        ARCHS.register(name, lazy=req["entry_point"], source="plugin", dist=req["dist"],
                       dist_version=req["plugin"]["version"])
    except Err as exc:
        raise _Rejected("register", f"{exc}; rename the architecture") from None
    try:
        spec = ARCHS.get(name)
    except Err as exc:
        cause = exc.__cause__
        raise _Rejected("import", _describe_exc(cause) if cause else str(exc)) from None
    except BaseException as exc:
        raise _Rejected("import", _describe_exc(exc)) from None
    return spec, req["plugin"]["version"] or str(spec.version)


def _policy(spec: Any) -> tuple[str, str] | None:
    """Declarations the generic suite cannot check, refused up front (a check name and why)."""
    if not spec.causal:
        return ("causality", "the spec declares causal=False, which would skip the causality check; arena's tasks "
                "need causal models")
    if spec.task_specific:
        return ("task-specific", "task-specific models cannot be checked by the generic conformance suite; "
                "submit them as built-ins with their own tests")
    if "cuda" in spec.requires:
        import torch

        if not torch.cuda.is_available():
            return ("requires", "the architecture requires CUDA and this machine has none")
    return None


def _suite_overrides(task: str, max_steps: int) -> list[str]:
    from arena.registry import get_task

    fields = get_task(task).config.model_fields
    out = [f"train.max_steps={max_steps}", f"train.eval_every={max_steps}", f"train.checkpoint_every={max_steps}",
           *SUITE_TRAIN_OVERRIDES]
    out += [f"task.{k}={v}" for k, v in SUITE_TASK_OVERRIDES.items() if k in fields]
    return out


def _main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m arena.submit", description="arena submit's sandboxed worker")
    ap.add_argument("--worker", required=True, help="request JSON written by the parent")
    ap.add_argument("--result-fd", type=int, required=True, help="pipe for JSON-lines events")
    args = ap.parse_args(argv)
    return _worker(args.worker, args.result_fd)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
