"""Derived runs: a stored run's model with heads removed (:mod:`arena.prune`), optionally fine-tuned, scored and
measured exactly like a trained run, and recorded with ``parent_run_id``, ``derived_method``, ``heads_kept`` and
``finetune_steps``.

Fine-tuning continues with the parent's training settings at the learning rate the parent ended with
(``lr x min_lr_ratio``, constant, no warm-up) unless ``finetune_lr`` is given, for exactly ``finetune_steps`` steps
(no early stop). A derived run's ``flops_train_total`` is the fine-tune's cost only (0 without one); its config is
the parent's plus ``"derived"``, and its config hash is that of (parent hash, derivation), so repeating a prune
command skips what is already recorded.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from arena.errors import ArenaError
from arena.prune import derivation_hash, head_counts, kept_after, parse_keep, pruned_copy, removal_order
from arena.record import RunRecord, provenance


def _finetune(model: torch.nn.Module, res: Any, steps: int, lr: float | None, device: str) -> Any:
    from arena.train import TrainState, train

    if steps <= 0:
        return TrainState()
    parent = res.spec.train
    cfg = parent.model_copy(update={"max_steps": steps, "warmup_steps": 0, "min_lr_ratio": 1.0, "early_stop": None,
                                    "patience": None, "eval_every": steps, "log_attention": False,
                                    "lr": lr if lr is not None else parent.lr * parent.min_lr_ratio})
    state = train(model, res.task, cfg, res.spec.seed, device=device)
    model.eval()
    return state


def pruned_costs(res: Any, shape: Any, cfg: Any, model: torch.nn.Module, kept: list[list[int]],
                 seq_len: int) -> tuple[dict[str, int], dict[str, float], int]:
    """Analytic params (checked against the counted ones), FLOPs breakdown and state size of a pruned model."""
    from arena.blocks import analytic_flops, analytic_params, analytic_state_size
    from arena.measure.params import count_params

    arch, d = res.arch, shape.d_model
    counts = [int(cfg.n_heads)] * shape.n_layers
    removed = sum(n - len(k) for n, k in zip(counts, kept, strict=True))
    per_head = int(arch.heads.params(d, cfg))
    params = {k: v - (removed * per_head if k != "embedding" else 0)
              for k, v in analytic_params(arch, shape, cfg).items()}
    counted = count_params(model)
    if counted != params["total"]:
        raise ArenaError(f"pruned model has {counted:,} parameters but its analytic count is {params['total']:,}: "
                         f"{arch.name!r} HeadCost.params is wrong")
    flops = dict(analytic_flops(arch, shape, cfg, seq_len) or {})
    for key, v in arch.heads.flops(d, cfg, seq_len).items():
        flops[key] = flops.get(key, 0.0) - removed * float(v)
    share = sum(len(k) / n for n, k in zip(counts, kept, strict=True)) / len(counts)
    state = int(round(analytic_state_size(arch, shape, cfg, seq_len) * share))
    return params, flops, state


def score_and_measure(res: Any, run: Any, model: torch.nn.Module, kept: list[list[int]],
                      tokens_seen: int) -> RunRecord:
    """Evaluate every split and measure the pruned model as the runner measures a trained one."""
    from arena.api import ModelShape
    from arena.evaluate import evaluate_task
    from arena.measure import memory as run_memory
    from arena.measure.flops import flops_record
    from arena.measure.hardware import hardware
    from arena.measure.latency import measure_latency, typical_input
    from arena.runner import headline_split

    spec, task, device = res.spec, res.task, res.spec.device
    shape = ModelShape(**run.config["shape"])
    cfg = res.arch.config.model_validate(run.config.get("arch_config", {}))
    results = evaluate_task(model, task, spec.train.eval_batch_size, device, spec.train.max_eval_examples)
    rec = RunRecord()
    rec.set_scores(results, task, headline_split(task))
    seq_len, sample = typical_input(task, rec.headline_split)
    params, breakdown, rec.state_size = pruned_costs(res, shape, cfg, model, kept, seq_len)
    rec.set_params(params)
    rec.set_flops(flops_record(breakdown, model, seq_len, tokens_seen))
    rec.set_latency(measure_latency(model, seq_len, spec.latency.batch, spec.latency.min_run_time, device, sample)
                    if spec.latency.enabled else {})
    rec.threads, rec.memory_mb, rec.hardware = torch.get_num_threads(), run_memory.peak_memory_mb(device), \
        hardware(device)
    rec.extra.update({"latency_seq_len": seq_len, "eval_seq_len": seq_len, "memory_scope": run_memory.scope()})
    return rec


def prune_run(engine: Any, run_id: int, method: str, keep: str, *, finetune_steps: int = 0,
              finetune_lr: float | None = None, seed: int = 0, split: str = "val", n_examples: int = 256,
              progress: Any = None, command: str | None = None, threads: int | None = None) -> list[dict[str, Any]]:
    """Rank the heads of run ``run_id``, then for every count in ``keep`` record one derived run. Returns one
    ``{"run_id", "keep", "skipped"}`` per count."""
    from arena.store.repo import mark_stale_runs
    from arena.stored import load_run

    mark_stale_runs(engine)
    stored = load_run(engine, run_id)
    run, res = stored.run, stored.res
    if threads or res.spec.threads:  # as the runner: the parent's thread count unless told otherwise
        torch.set_num_threads(threads or res.spec.threads)
    if res.arch.heads is None:
        raise ArenaError(f"architecture {res.arch.name!r} has no attention heads to prune; arena prune works on "
                         "architectures that declare heads (transformer, moe, compressive)")
    if run.parent_run_id is not None:
        raise ArenaError(f"run {run_id} is itself derived (from run {run.parent_run_id}); prune the trained run")
    counts = head_counts(stored.model)
    keeps = parse_keep(keep, sum(counts))
    examples: list[Any] = []
    if method == "importance":
        try:
            examples = res.task.analysis_examples(split, n_examples)
        except ValueError as exc:
            raise ArenaError(str(exc)) from None
    if progress:
        progress.phase(f"ranking heads ({method})")
    order, scores = removal_order(stored.model, method, examples, seed, res.spec.train.eval_batch_size)
    out = []
    if progress:
        progress.phase(f"pruned models (of {sum(counts)} heads)", total=len(keeps))
    for i, k in enumerate(keeps):
        derivation = {"method": method, "keep": k, "finetune_steps": finetune_steps, "finetune_lr": finetune_lr,
                      "seed": seed if method == "random" else None,
                      "importance": {"split": split, "examples": len(examples)} if method == "importance" else None}
        out.append(_record_one(engine, stored, derivation, order, counts, scores, command))
        if progress:
            progress.advance(i + 1)
    return out


def _record_one(engine: Any, stored: Any, derivation: dict[str, Any], order: list[tuple[int, int]],
                counts: list[int], scores: dict[str, Any], command: str | None) -> dict[str, Any]:
    """Prune, fine-tune, score, measure and record one derived run (skipped if its hash is already recorded)."""
    from arena.runner import checkpoint_dir
    from arena.store import repo

    run, res = stored.run, stored.res
    h = derivation_hash(run.config_hash, derivation)
    done = repo.find_completed(engine, h)
    if done is not None:
        return {"run_id": done.id, "keep": derivation["keep"], "skipped": True}
    kept = kept_after(order, counts, derivation["keep"])
    ident = {c: getattr(run, c) for c in ("arch", "arch_version", "arch_kind", "arch_family", "task", "task_version",
                                          "split", "size", "seed", "source", "plugin_name", "plugin_version",
                                          "plugin_sha256", "task_specific")}
    ident |= {"config": dict(run.config) | {"derived": derivation | {"parent_run_id": run.id}}, "config_hash": h,
              "parent_run_id": run.id, "derived_method": derivation["method"], "heads_kept": derivation["keep"],
              "finetune_steps": derivation["finetune_steps"]}
    new_id = repo.create_run(engine, **ident)
    try:
        from arena.measure import memory as run_memory

        run_memory.start_run(res.spec.device)
        t0, cpu0 = time.perf_counter(), time.process_time()
        model = pruned_copy(stored.model, kept)
        state = _finetune(model, res, derivation["finetune_steps"], derivation["finetune_lr"], res.spec.device)
        rec = score_and_measure(res, run, model, kept, state.tokens_seen)
        path = checkpoint_dir() / "derived" / f"{h[:24]}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict(), "config_hash": h}, path)
        removed = [list(x) for x in order[: sum(counts) - derivation["keep"]]]
        rec.extra |= {"pruning": {"kept": kept, "removed": removed, "order": [list(x) for x in order], **scores,
                                  "heads_before": counts, "parent_run_id": run.id},
                      "curve": state.curve, "wall_seconds": time.perf_counter() - t0,
                      "cpu_seconds": time.process_time() - cpu0}
        rec.step, rec.train_seconds, rec.provenance = state.step, state.seconds, provenance(command)
        repo.heartbeat(engine, new_id, checkpoint_path=str(path))
        repo.complete_run(engine, new_id, rec)
    except KeyboardInterrupt:
        repo.end_run(engine, new_id, "interrupted", "interrupted while pruning")
        raise
    except Exception as exc:
        repo.end_run(engine, new_id, "failed", f"{type(exc).__name__}: {exc}")
        raise
    return {"run_id": new_id, "keep": derivation["keep"], "skipped": False}


__all__ = ["prune_run", "score_and_measure", "pruned_costs"]
