"""One submission from start to finish: load and check the plugin, run the suite, judge, record (or not)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from arena.submit import SubmitResult, record
from arena.submit.protocol import ProtocolError
from arena.submit.resolve import PluginSource, check_name, names_taken
from arena.submit.sandbox import PhaseTimeout, Sandbox, WorkerError, printable
from arena.submit.suite import SuiteRunner, suite_spec
from arena.submit.verify import Rejected

_MEMORY_ERRORS = ("MemoryError", "can't allocate memory", "Cannot allocate memory", "bad_alloc", "out of memory")
LOG_TAIL = 2000


class Submission:
    def __init__(self, source: PluginSource, tasks: list[str], url: str, sandbox: Sandbox, req: dict[str, Any],
                 code_path: str, *, max_steps: int, command: str | None, seed: int, data_seed: int,
                 on_event: Callable[..., None], exporter: Sandbox | None = None, verify_flops: bool = False):
        self.source, self.tasks, self.url, self.sb, self.req = source, tasks, url, sandbox, req
        self.exporter, self.verify_flops = exporter, verify_flops
        self.code_path, self.max_steps, self.command = code_path, max_steps, command
        self.seed, self.data_seed, self.on_event = seed, data_seed, on_event
        self.time_limit, self.memory_mb = sandbox.time_limit, sandbox.memory_mb
        self.plugin = {"source": "plugin", "name": source.name, "version": source.version, "sha256": source.sha256}

    def emit(self, **event: Any) -> None:
        self.on_event(self._unsandbox(event))

    def _unsandbox(self, value: Any) -> Any:
        """Name the user's file, not the private copy that ran."""
        if self.source.kind != "file":
            return value
        if isinstance(value, str):
            return value.replace(self.code_path, self.source.path)
        if isinstance(value, dict):
            return {k: self._unsandbox(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._unsandbox(v) for v in value]
        return value

    # -- running --------------------------------------------------------------------------------------------------
    def run(self) -> SubmitResult:
        t0 = time.monotonic()
        result = SubmitResult(ok=False, exit_code=1, message="", plugin=self.plugin, db=_safe_url(self.url))
        req, sb = self.req, self.sb
        items: list[tuple[dict, dict, dict]] = []
        try:
            result.isolation = sb.mode
            self.emit(event="isolation", mode=sb.mode)
            runner = SuiteRunner(sb, req, {}, self.emit, exporter=self.exporter, verify_flops=self.verify_flops)
            self.taken = names_taken(self.url)  # while the fork server is still importing torch
            runner.meta = self._load(sb, req, result)
            for task in self.tasks:
                spec = suite_spec(runner.meta["name"], task, self.seed, self.data_seed, self.max_steps)
                try:
                    ident, payload, report = runner.run(spec, self.plugin, self.command)
                except WorkerError as exc:  # the plugin's code raised while training or answering
                    raise Rejected(f"suite:{task}", exc.detail) from None
                items.append((ident, payload, report))
                result.sandbox_runs.append(report)
                self.emit(event="run", **report)
            result.checks += runner.checks
        except (Rejected, WorkerError) as exc:
            result.failed_check, result.exit_code = exc.check, exc.exit_code
            result.message = f"failed check {exc.check!r}: {_annotate(exc.detail, self.memory_mb)}"
        except PhaseTimeout as exc:
            result.failed_check = "time limit"
            result.message = (f"time limit exceeded: the plugin did not finish within {self.time_limit:g} s "
                              f"(stopped during {exc})")
        except ProtocolError as exc:
            log = sb.workers[-1].log.text() if sb.workers else ""
            phase = sb.workers[-1].phase if sb.workers else "startup"
            result.failed_check = "crash" if "closed the connection" in str(exc) else "protocol"
            hint = f" (over the memory limit of {self.memory_mb} MB?)" if any(m in log for m in _MEMORY_ERRORS) else ""
            result.message = (f"the sandboxed process stopped answering during {phase}{hint}: "
                              f"{_last_line(log) if result.failed_check == 'crash' else exc}")
        finally:
            if sb.workers:
                result.log_tail = sb.workers[-1].log.text()[-LOG_TAIL:]
        result = self._unsandbox_result(result)
        if result.failed_check is None:
            self._record(result, items)
        elif not result.message.endswith("nothing was recorded"):
            result.message += "; nothing was recorded"
        result.seconds = time.monotonic() - t0
        return result

    def _unsandbox_result(self, result: SubmitResult) -> SubmitResult:
        for k in ("message", "log_tail", "loaded_from"):
            setattr(result, k, self._unsandbox(getattr(result, k)))
        result.checks = self._unsandbox(result.checks)
        return result

    def _load(self, sb: Sandbox, req: dict[str, Any], result: SubmitResult) -> dict[str, Any]:
        """The loading worker: import the plugin, report its spec, run its own conformance checks (advisory: they
        can only fail the plugin; passing them proves nothing the parent relies on)."""
        w = sb.spawn("loading")
        meta, _ = w.call({"op": "load", "plugin": req}, max_reply=0)
        meta = {k: (printable(v[:200]) if isinstance(v, str) else v) for k, v in meta.items()}
        result.arch, result.loaded_from = meta.get("name"), meta.get("file")
        if self.source.kind == "file":
            self.plugin["version"] = str(meta.get("plugin_version"))[:64]
        self.emit(event="loaded", arch=meta.get("name"), version=meta.get("version"), kind=meta.get("kind"),
                  family=meta.get("family"), plugin_version=self.plugin["version"])
        why = check_name(meta.get("name"), self.source.name, self.taken)
        if why:
            raise Rejected("name", why)
        policy = _policy(meta)
        if policy:
            raise Rejected(*policy)
        self.emit(event="stage", stage="conformance (the plugin's own checks, in the worker)")
        reply, _ = w.call({"op": "conform"}, max_reply=0)
        w.kill()
        checks = [{"name": printable(str(c.get("name"))[:80]), "ok": bool(c.get("ok")),
                   "detail": printable(str(c.get("detail"))[:500]), "by": "worker"}
                  for c in (reply.get("checks") if isinstance(reply.get("checks"), list) else []) if isinstance(c, dict)]
        for c in checks:
            self.emit(event="check", **c)
        result.checks = checks
        failed = [c for c in checks if not c["ok"]]
        if failed:
            more = (f" (and {len(failed) - 1} more: " + ", ".join(c["name"] for c in failed[1:]) + ")"
                    if len(failed) > 1 else "")
            raise Rejected(failed[0]["name"], failed[0]["detail"] + more)
        return meta

    def _record(self, result: SubmitResult, items: list[tuple[dict, Any, dict]]) -> None:
        from arena.errors import ArenaError

        try:
            done = record.already_recorded(self.url, [i["config_hash"] for i, _, _ in items])
            new = [(i, p) for i, p, _ in items if i["config_hash"] not in done]
            ids = record.write(self.url, new) if new else []
        except ArenaError as exc:
            result.failed_check, result.message = "record", f"could not record the suite runs: {exc}"
            return
        fresh = iter(ids)
        for ident, payload, report in items:
            row = dict(report, seed=ident["seed"], data_seed=payload.extra["submission"]["data_seed"])
            if ident["config_hash"] in done:
                result.duplicates.append(dict(row, run_id=done[ident["config_hash"]]))
            else:
                result.runs.append(dict(row, run_id=next(fresh)))
        result.ok, result.exit_code = True, 0
        label = f"{self.source.name} {self.source.version}" if self.source.kind == "package" else self.source.name
        same = (f"; {len(result.duplicates)} already recorded from the same plugin bytes and seed (the same run, "
                "not a new replicate)" if result.duplicates else "")
        result.message = (f"accepted: {result.arch} ({label}, sha256 {self.source.sha256[:12]}) passed "
                          f"{len(result.checks)} checks; {len(result.runs)} run(s) recorded{same}")


def _policy(meta: dict[str, Any]) -> tuple[str, str] | None:
    """Declarations the parent cannot check, refused up front (a check name and why)."""
    if meta.get("kind") not in ("mixer", "model"):
        return ("spec", f"unknown architecture kind {meta.get('kind')!r}")
    if meta.get("causal") is not True:
        return ("causality", "the spec declares causal=False; arena's tasks need causal models")
    if meta.get("task_specific"):
        return ("task-specific", "task-specific models cannot be checked generically; submit them as built-ins "
                "with their own tests")
    if meta.get("trainer") != "gradient":
        return ("trainer", "custom trainers (fit()) would need the whole task; submissions use arena's trainer")
    if "cuda" in (meta.get("requires") or []):
        return ("requires", "the architecture requires CUDA; submissions run on CPU workers")
    return None


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


__all__ = ["Submission"]
