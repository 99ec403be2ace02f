"""One suite run of a submitted architecture on one task, driven by the trusted parent.

Data: the parent builds the task itself from a secret data seed (the worker only learns the model seed), sends
the training examples to a training worker, and keeps every evaluation target to itself.

Workers (each a fresh, isolated process that loads the plugin): two builds (determinism of the initial
weights, parameter count), one training run (returns weights), one check worker (causality probes at the task's
lengths, latency timed by the parent), then for every evaluation split one teacher-forced worker and, for
generative tasks, one generation worker. Each scoring worker first answers a secret probe batch, which must
match the check worker's logits exactly: the same weights must compute the same function in every process.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import torch

from arena.spec import LatencyConfig, RunSpec, TrainConfig, run_config
from arena.submit import sandbox, score, verify
from arena.submit.sandbox import Sandbox, Worker

SUITE_TASK_OVERRIDES = {"n_train": 512, "n_val": 32, "n_test": 32, "n_test_per_depth": 16}
FLOPS_LENGTH = 16  # the sequence length the exported graph is counted at (export time grows with the graph)
WEIGHTS_LIMIT = 1 << 28  # the largest weights file the parent will read (256 MB; the suite's models are ~100 KB)


def suite_spec(arch: str, task: str, seed: int, data_seed: int, max_steps: int) -> RunSpec:
    from arena.registry import get_task

    fields = get_task(task).config.model_fields
    train = TrainConfig(max_steps=max_steps, eval_every=max_steps, checkpoint_every=max_steps, batch_size=16,
                        max_eval_examples=64, warmup_steps=10)
    return RunSpec(arch=arch, task=task, size="tiny", seed=seed, data_seed=data_seed, threads=1, train=train,
                   task_config={k: v for k, v in SUITE_TASK_OVERRIDES.items() if k in fields},
                   latency=LatencyConfig(min_run_time=0.05, batch=8))


def tokens_seen(train_set: list[Any], batch_size: int, steps: int, seed: int) -> int:
    """The tokens ``arena.train.train`` feeds in ``steps`` steps: its batch sampler, replayed by the parent."""
    gen = torch.Generator().manual_seed(seed)
    nonpad = torch.tensor([sum(1 for t in e.tokens[:-1] if t != 0) for e in train_set])
    total = 0
    for _ in range(steps):
        total += int(nonpad[torch.randint(len(train_set), (batch_size,), generator=gen)].sum())
    return total


class SuiteRunner:
    """Drives the workers for every task of one submission (the sandbox and the loaded plugin are shared)."""

    def __init__(self, sandbox: Sandbox, plugin: dict[str, Any], meta: dict[str, Any],
                 emit: Callable[..., None], exporter: Sandbox | None = None, verify_flops: bool = False):
        self.sb, self.plugin, self.meta, self.emit = sandbox, plugin, meta, emit
        self.exporter = exporter  # a second fork server for the FLOPs count (namespaces only), or None
        self.verify = verify_flops
        self.checks: list[dict[str, Any]] = []
        self.workers = 0
        self.ref: torch.Tensor | None = None

    def check(self, name: str, detail: str) -> None:
        self.checks.append({"name": name, "ok": True, "detail": detail, "by": "parent"})
        self.emit(event="check", name=name, ok=True, detail=detail)

    def worker(self, phase: str, sb: Sandbox | None = None) -> Worker:
        self.emit(event="stage", stage=phase)
        w = (sb or self.sb).spawn(phase)
        self.workers += 1
        w.call({"op": "load", "plugin": self.plugin}, max_reply=0)
        return w

    # -- the steps -------------------------------------------------------------------------------------------
    def build(self, req: dict[str, Any]) -> tuple[verify.Weights, int]:
        firsts = []
        for phase in ("build", "build again (determinism)"):
            w = self.worker(phase)
            head, blob = w.call({"op": "build", **req}, max_reply=WEIGHTS_LIMIT)
            w.kill()
            firsts.append(verify.read_weights(head, blob))
        declared = _int(req["declared_params"], "declared parameters")
        built = verify.check_build(declared, *firsts)
        self.check("determinism", f"initial weights identical in two processes (sha256 {firsts[0].sha256[:12]})")
        self.check("param count", f"{built:,} parameters counted from the weights = declared")
        return firsts[0], built

    def train(self, req: dict[str, Any], examples: list[Any], init: verify.Weights,
              built: int) -> tuple[verify.Weights, int, dict[str, Any]]:
        payload = json.dumps({"tokens": [list(e.tokens) for e in examples],
                              "mask": [[int(m) for m in e.mask] for e in examples]}).encode()
        w = self.worker("training")
        t0 = time.perf_counter()
        head, blob = w.call({"op": "train", **req}, payload, max_reply=len(init.blob) + (1 << 16))
        seconds = time.perf_counter() - t0
        memory = w.peak_rss_mb()
        w.kill()
        trained = verify.read_weights(head, blob)
        counted = verify.check_trained(init, trained, built)
        self.check("param count after training", f"{counted:,} parameters, same layout as built")
        summary = head.get("summary") if isinstance(head.get("summary"), dict) else {}
        curve = [c for c in summary.get("curve", []) if isinstance(c, dict)][:200]
        return trained, counted, {"train_seconds": seconds, "memory_mb": memory, "curve_reported_by_worker": curve}

    def loaded(self, phase: str, req: dict[str, Any], trained: verify.Weights, vocab: int,
               probe: torch.Tensor, ref: torch.Tensor | None, sb: Sandbox | None = None) -> Worker:
        """A fresh worker with the trained weights, whose answer to the probe batch must equal ``ref``."""
        w = self.worker(phase, sb)
        w.call({"op": "load_weights", "shape": req["shape"], "arch_config": req["arch_config"],
                "aliases": trained.aliases}, trained.blob, max_reply=0)
        got = score.Remote(lambda: w, vocab, phase).ask(probe)
        if ref is None:  # the check worker: the first answer is the reference; a second must not differ
            self.ref = got
            again = score.Remote(lambda: w, vocab, phase).ask(probe)
            if not torch.equal(again, got):
                raise verify.Rejected("determinism", "asked the same probe batch twice, one process gives different "
                                      f"logits (max difference {float((again - got).abs().max()):.3g}): the model "
                                      "keeps state between calls")
        elif not torch.equal(got, ref):
            diff = float((got - ref).abs().max())
            raise verify.Rejected("determinism", f"the same weights give different logits in two processes "
                                  f"(max difference {diff:.3g} on a probe batch, {phase})")
        return w

    def verify_flops(self, req: dict[str, Any], trained: verify.Weights, vocab: int, seq_len: int,
                     per_token: float | None, probe: torch.Tensor) -> dict[str, Any]:
        """Arena's own FLOP count of the model's exported graph at ``seq_len`` tokens, replayed by a clean worker (no
        plugin code) whose output must equal the plugin's logits; ``verified`` only within 5 % of the declaration
        (``per_token`` at that length): the declared formula is checked, then used at the run's own length."""
        from arena.submit import flops as fl

        if not per_token:
            return {"status": "declared", "note": "no FLOPs declared", "counted": None}
        x = torch.randint(1, vocab, (1, seq_len), generator=torch.Generator().manual_seed(secrets.randbits(62)))
        w = self.loaded("exporting the graph", req, trained, vocab, probe, self.ref, self.exporter)
        try:
            head, blob = w.call({"op": "export", "shape": [1, seq_len]}, x.numpy().tobytes(), max_reply=1 << 26)
            parts = [int(n) for n in head.get("parts", [])][:2]
            graph, constants = bytes(blob[: parts[0]]), bytes(blob[parts[0]: parts[0] + parts[1]])
            theirs = score.Remote(lambda: w, vocab, "exporting the graph").ask(x)
        except sandbox.WorkerError as exc:
            return {"status": "declared", "counted": None,
                    "note": f"declared by the plugin; its graph could not be exported ({exc.detail[:200]})"}
        finally:
            w.kill()
        c = (self.exporter or self.sb).spawn("counting FLOPs (a clean worker that never loads plugin code)")
        self.workers += 1
        body = [graph, constants, trained.blob, x.numpy().tobytes()]
        try:
            got, out = c.call({"op": "count", "parts": [len(p) for p in body], "shape": [1, seq_len],
                               "aliases": trained.aliases}, b"".join(body), max_reply=4 * seq_len * vocab)
        except sandbox.WorkerError as exc:
            return {"status": "declared", "counted": None,
                    "note": f"declared by the plugin; arena could not replay its graph ({exc.detail[:200]})"}
        finally:
            c.kill()
        counts = {k: float(v) for k, v in (got.get("counts") or {}).items()}
        if len(out) != 4 * seq_len * vocab or not torch.allclose(
                torch.frombuffer(out, dtype=torch.float32).view(1, -1, vocab), theirs, atol=1e-4, rtol=1e-4):
            return {"status": "declared", "counted": None,
                    "note": "declared by the plugin; its exported graph does not compute its logits"}
        status, why = fl.judge(counts["total"], per_token * seq_len)
        self.check("flops", f"{status} at {seq_len} tokens: {why}")
        return {"status": status, "counted": counts["total"], "counts": counts, "declared": per_token * seq_len,
                "length": seq_len, "note": f"{status} at {seq_len} tokens: {why}"}

    def flops_in_background(self, *args: Any) -> Callable[[], dict[str, Any]]:
        """Run :meth:`verify_flops` beside the scoring (its workers are separate namespaces, so they cannot talk
        to the scoring workers); returns a function that waits for the result. Sequential without namespaces."""
        if not self.verify:
            skipped = {"status": "declared", "counted": None,
                       "note": "declared by the plugin; not verified (arena submit --verify-flops counts it)"}
            return lambda: skipped
        if self.exporter is None:
            result = self.verify_flops(*args)
            return lambda: result
        box: dict[str, Any] = {}

        def go() -> None:
            try:
                box["result"] = self.verify_flops(*args)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=go, daemon=True)
        thread.start()

        def wait() -> dict[str, Any]:
            thread.join()
            if "error" in box:
                raise box["error"]
            return box["result"]

        return wait

    def run(self, spec: RunSpec, source: dict[str, Any], command: str | None) -> tuple[dict, dict, dict]:
        """Train, check and score one task; returns (identity, payload, report) for :mod:`arena.submit.record`."""
        from arena.registry import get_task

        r = SimpleNamespace(spec=spec, wall0=time.perf_counter(), task_spec=get_task(spec.task))
        r.task_cfg = r.task_spec.config.model_validate(spec.task_config)
        r.task = r.task_spec.cls(r.task_cfg, seed=spec.data_seed, split=spec.split)  # the parent's secret data
        self.emit(event="stage", stage=f"suite run on {spec.task}")
        self._resolve(r)
        init, built = self.build(r.req)
        r.trained, r.counted, r.trainfo = self.train(
            dict(r.req, train=spec.train.model_dump(mode="json"), metric=r.task.metric), r.task.splits["train"],
            init, built)
        self._checks(r)
        # after the latency timing (which must not share the machine with our own workers), beside the scoring
        flops_wait = self.flops_in_background(r.req, r.trained, r.vocab, r.flops_len,
                                              _declared_total(r.res.get("flops_at", {}).get(str(r.flops_len))),
                                              r.probe)
        self._score(r)
        r.flops_check = flops_wait()
        self.check("causality while scoring", f"{r.audit['audited_examples']} scored examples re-asked with their "
                   f"future replaced; max change {r.audit['max_change']:.1e}")
        return self._assemble(r, source, command)

    def _resolve(self, r: SimpleNamespace) -> None:
        """The task's sizes, then the plugin's preset, config and declared costs for them (a short worker)."""
        task = r.task
        r.vocab, r.max_len = task.vocab.size, task.max_seq_len
        eval_lens = [len(e.tokens) - 1 for s in task.eval_splits for e in task.splits[s]]
        r.seq_len = max(1, round(sum(eval_lens) / len(eval_lens))) if eval_lens else r.max_len
        r.flops_len = max(2, min(r.seq_len, FLOPS_LENGTH))
        w = self.worker("resolve")
        tie = task.tie_embeddings  # the task's head choice, as arena.spec.resolve gives a built-in run
        res, _ = w.call({"op": "resolve", "size": r.spec.size, "vocab_size": r.vocab, "max_seq_len": r.max_len,
                         "tie_embeddings": tie, "seq_len": r.seq_len, "flops_lengths": [r.flops_len]}, max_reply=0)
        w.kill()
        d_model, n_layers = _int(res.get("d_model"), "d_model", 4096), _int(res.get("n_layers"), "n_layers", 64)
        r.arch_cfg = res.get("arch_config") if isinstance(res.get("arch_config"), dict) else {}
        r.shape = {"vocab_size": r.vocab, "d_model": d_model, "n_layers": n_layers, "max_seq_len": r.max_len,
                   "tie_embeddings": tie}
        r.res = {k: (v if isinstance(v, dict) or k not in ("params", "flops_at") else {}) for k, v in res.items()}
        r.req = {"shape": r.shape, "arch_config": r.arch_cfg, "seed": r.spec.seed,
                 "declared_params": r.res.get("params", {}).get("total")}

    def _checks(self, r: SimpleNamespace) -> None:
        """The check worker: the secret probe batch (twice), causality probes, latency timed by the parent."""
        from arena.runner import headline_split

        r.probe = torch.randint(1, r.vocab, (4, max(2, min(r.max_len - 1, 32))),
                                generator=torch.Generator().manual_seed(secrets.randbits(62)))
        w = self.loaded("checks", r.req, r.trained, r.vocab, r.probe, None)
        checker = score.Remote(lambda: w, r.vocab, "check")
        real = [torch.tensor(e.tokens[:-1]) for s in r.task.splits for e in r.task.splits[s][:2]]
        r.probes = verify.causality_probes(checker.ask, r.vocab, r.max_len - 1, real, secrets.randbits(62))
        self.check("causality", f"{r.probes['probes']} probes at lengths {r.probes['lengths']}, max change "
                   f"{r.probes['max_change']:.1e}")
        r.head = headline_split(r.task)
        pool = r.task.splits.get(r.head) or [e for s in r.task.eval_splits for e in r.task.splits[s]]
        r.sample = min(pool, key=lambda e: abs(len(e.tokens) - 1 - r.seq_len)).tokens[:-1]
        lat = r.spec.latency
        r.lat = score.parent_latency(checker, r.sample, lat.batch, lat.min_run_time)
        r.inside, _ = w.call({"op": "time", "tokens": list(r.sample), "batch": lat.batch,
                              "min_run_time": lat.min_run_time}, max_reply=0)
        w.kill()

    def _score(self, r: SimpleNamespace) -> None:
        """Every evaluation split with arena's scorer: an audited teacher-forced worker, then a generation worker."""
        from arena.evaluate import evaluate_examples

        r.results, r.audit = {}, {"audited_examples": 0, "max_change": 0.0}
        for split in r.task.eval_splits:
            exs = r.task.splits[split][: r.spec.train.max_eval_examples]
            tf = score.AuditedRemote(lambda s=split: self.loaded(f"scoring {s} (teacher-forced)", r.req, r.trained,
                                                                  r.vocab, r.probe, self.ref),
                                     r.vocab, f"scoring {split}", secrets.randbits(62))
            gn = score.Generator(lambda s=split, tf=tf: (tf.close(), self.loaded(
                f"scoring {s} (generation)", r.req, r.trained, r.vocab, r.probe, self.ref))[1], r.vocab,
                f"generating {split}", recurrent=bool(self.meta.get("supports_step")),
                batch_size=r.spec.train.eval_batch_size)
            try:
                if r.task.scoring == "custom":
                    r.results[split] = r.task.evaluate(tf, split, "cpu")
                else:
                    r.results[split] = evaluate_examples(tf, r.task, exs, r.spec.train.eval_batch_size, generator=gn)
            finally:
                tf.close()
                gn.close()
            r.audit["audited_examples"] += tf.audited
            r.audit["max_change"] = max(r.audit["max_change"], tf.max_change)

    def _assemble(self, r: SimpleNamespace, source: dict[str, Any], command: str | None) -> tuple[dict, Any, dict]:
        """The run row, from what the parent measured (the worker's claims only where labelled as declared)."""
        from arena.record import RunRecord, normalized
        from arena.submit import record

        spec, task, res = r.spec, r.task, r.res
        score_v = r.results.get(r.head, {}).get("metrics", {}).get(task.metric)
        flops = res.get("flops") if isinstance(res.get("flops"), dict) else None
        per_token = _declared_total(flops)
        seen = tokens_seen(task.splits["train"], spec.train.batch_size, spec.train.max_steps, spec.seed)
        config, config_hash = run_config(spec, r.arch_cfg, r.task_cfg.model_dump(mode="json"), _shape(r.shape),
                                         task.split, _int(self.meta["version"], "version"), r.task_spec.version,
                                         source["sha256"])
        declared, emb = res.get("params", {}), _int(res.get("params", {}).get("embedding", 0), "embedding params")
        fields = {
            "step": spec.train.max_steps, "params_total": r.counted, "params_embedding": emb,
            "params_non_embedding": r.counted - emb, "params_active": _int(declared.get("active", r.counted),
                                                                          "active params"),
            "state_size": _int(res.get("state_size", 0), "state size"), "flops_forward_per_token": per_token,
            "flops_forward_per_example": per_token * r.seq_len if per_token else None,
            "flops_train_total": 3.0 * per_token * seen if per_token else None, "flops_counted_per_example": None,
            "flops_note": r.flops_check["note"], "flops_status": r.flops_check["status"], "isolation": self.sb.mode,
            "threads": 1, "memory_mb": r.trainfo["memory_mb"],
            "train_seconds": r.trainfo["train_seconds"], "metric": task.metric, "headline_split": r.head,
            "score": score_v, "normalized_score": normalized(score_v, task.chance, task.higher_is_better),
            "chance": task.chance, "higher_is_better": task.higher_is_better, "hardware": record.hardware_info(),
        }
        submission = {"isolation": self.sb.mode, "data_seed": spec.data_seed, "seed": spec.seed,
                      "params_status": "verified", "flops_status": r.flops_check["status"], "flops": r.flops_check,
                      "state_size_status": "declared", "latency_in_worker": _floats(r.inside.get("latency")),
                      "latency_timed_by": r.lat["timed_by"], "workers": self.workers,
                      "causality": {"probes": r.probes, "scoring_audit": r.audit},
                      "memory_measured_by": "parent (/proc VmHWM of the training worker)"}
        fields["extra"] = {"curve": r.trainfo["curve_reported_by_worker"], "tokens_seen": seen,
                           "flops_breakdown": {k: float(v) * r.seq_len for k, v in flops.items()} if flops else None,
                           "latency_seq_len": len(r.sample), "eval_seq_len": r.seq_len,
                           "wall_seconds": time.perf_counter() - r.wall0, "submission": submission}
        ident = {"arch": self.meta["name"], "arch_version": _int(self.meta["version"], "version"),
                 "arch_kind": str(self.meta["kind"]), "arch_family": str(self.meta.get("family") or "other")[:64],
                 "task": r.task_spec.name, "task_version": r.task_spec.version, "split": task.split,
                 "size": spec.size, "seed": spec.seed, "config": config, "config_hash": config_hash,
                 "source": "plugin", "plugin_name": source["name"], "plugin_version": source["version"],
                 "plugin_sha256": source["sha256"], "task_specific": False}
        run = RunRecord(**fields, metrics=record.flatten_metrics(r.results), provenance=record.provenance(command))
        run.set_latency(r.lat)  # the parent's timing, mapped onto columns as the runner's is
        return ident, run, {"task": r.task_spec.name, "split": task.split, "metric": task.metric,
                                "score": score_v, "params": r.counted, "config_hash": config_hash}


def _declared_total(flops: Any) -> float | None:
    if not isinstance(flops, dict):
        return None
    try:
        return float(sum(float(v) for v in flops.values()))
    except (TypeError, ValueError):
        return None


def _int(v: Any, what: str, hi: int = 1 << 62) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
        raise verify.Rejected("config", f"the worker reported an invalid {what}: {v!r}")
    return v


def _floats(d: Any) -> dict[str, float]:
    if not isinstance(d, dict):
        return {}
    return {str(k)[:40]: float(v) for k, v in list(d.items())[:20] if isinstance(v, (int, float))}


def _shape(shape: dict[str, int]) -> Any:
    from arena.api import ModelShape

    return ModelShape(**shape)
