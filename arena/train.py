"""The training loop: AdamW, linear warmup + cosine decay, gradient clipping, early stop, resumable checkpoints.

Kept deliberately plain (nanoGPT-shaped) so its overhead over a hand-written loop is measurable (bench/).
Batches come from a seeded ``torch.Generator`` whose state is checkpointed, so a resumed run sees exactly the
batches an uninterrupted one would have seen and reaches the same final weights.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from arena import stopping
from arena.api import IGNORE, Example, Task
from arena.blocks import aux_loss_modules, collect_aux_loss
from arena.evaluate import evaluate_examples
from arena.metrics import validation_metric
from arena.spec import TrainConfig


@dataclass
class TrainState:
    step: int = 0
    tokens_seen: int = 0
    best_val: float | None = None
    curve: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0
    evals_since_best: int = 0  # validation checks since the best so far (the plateau stop's counter)
    stop_reason: str | None = None  # "target" (early_stop reached) or "plateau" (patience ran out)
    attention_curve: list[dict[str, Any]] = field(default_factory=list)  # train.log_attention: one point per eval


def _pad(examples: list[Example], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = [torch.tensor(e.tokens[:-1], dtype=torch.long) for e in examples]
    targets = [_targets(e) for e in examples]
    x = torch.nn.utils.rnn.pad_sequence(inputs, batch_first=True, padding_value=0)
    y = torch.nn.utils.rnn.pad_sequence(targets, batch_first=True, padding_value=IGNORE)
    return x.to(device), y.to(device)


def _targets(e: Example) -> torch.Tensor:
    return torch.where(torch.tensor(e.mask, dtype=torch.bool), torch.tensor(e.labels), torch.tensor(IGNORE))


class _Batcher:
    """Batches of the fixed train set: indices from a seeded generator into one padded table of the whole set,
    built once and cut to the longest example of each batch (the loop's data cost must stay near a hand-written
    loop's)."""

    def __init__(self, examples: list[Example], batch_size: int, gen: torch.Generator, device: str):
        import numpy as np

        self.n, self.batch_size, self.gen, self.device = len(examples), batch_size, gen, device
        width = max(len(e.tokens) - 1 for e in examples)
        x = np.zeros((self.n, width), dtype=np.int64)
        y = np.full((self.n, width), IGNORE, dtype=np.int64)
        lens = np.empty(self.n, dtype=np.int64)
        for i, e in enumerate(examples):
            n = lens[i] = len(e.tokens) - 1
            x[i, :n] = e.tokens[:-1]
            y[i, :n] = np.where(np.asarray(e.mask, dtype=bool), e.labels, IGNORE)
        self.x, self.y, self.lens = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(lens)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.randint(self.n, (self.batch_size,), generator=self.gen)
        t = int(self.lens[ids].max())
        return self.x[ids, :t].to(self.device), self.y[ids, :t].to(self.device)

    def after_load(self) -> None:
        """Nothing to restore beyond the generator (checkpointed by the trainer)."""


class _OnlineBatches:
    """Fresh training examples every step (``train.online``): ``task.draw_online(rng, n)`` with a
    ``random.Random`` seeded from the checkpointed generator, so the stream is a function of the seed and resumes
    exactly. Any draw equal to a validation or test sequence is rejected (a hash set of the held-out token
    sequences), so held-out sets stay disjoint from everything the model trains on."""

    def __init__(self, task: Task, batch_size: int, gen: torch.Generator, device: str):
        self.task, self.batch_size, self.gen, self.device = task, batch_size, gen, device
        self.held_out = {e.tokens for s in task.eval_splits for e in task.splits[s]}
        self.rejected = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        import random

        rng = random.Random(int(torch.randint(2**62, (1,), generator=self.gen)))
        out: list[Example] = []
        for _ in range(100):
            fresh = [e for e in self.task.draw_online(rng, self.batch_size - len(out)) if e.tokens not in self.held_out]
            self.rejected += self.batch_size - len(out) - len(fresh)
            out += fresh
            if len(out) >= self.batch_size:
                return _pad(out[: self.batch_size], self.device)
        raise RuntimeError(f"task {self.task.name!r}: online draws keep colliding with held-out examples")

    def after_load(self) -> None:
        """The stream is a function of the generator, which the trainer restores."""


def make_batches(task: Task, cfg: TrainConfig, seed: int, device: str = "cpu") -> _Batcher | _OnlineBatches:
    """The training batch stream of a run: ``next() -> (inputs, targets)``; its generator is ``.gen``."""
    gen = torch.Generator().manual_seed(seed)
    if cfg.online:
        if not task.can_draw_online:
            from arena.errors import ArenaError

            raise ArenaError(f"train.online: task {task.name!r} cannot draw fresh examples (it has no draw_online)")
        return _OnlineBatches(task, cfg.batch_size, gen, device)
    return _Batcher(task.splits["train"], cfg.batch_size, gen, device)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases, norms, embeddings' 1-d params, or params flagged ``_no_weight_decay``."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.dim() < 2 or getattr(p, "_no_weight_decay", False) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    def f(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        span = max(1, cfg.max_steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return f


def save_checkpoint(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any,
                    gen: torch.Generator, state: TrainState, config_hash: str) -> None:
    """Atomic: write to a temporary file of this writer's own (pid and a random part: two writers of one
    configuration never rename each other's file), fsync, rename over the old checkpoint."""
    import uuid

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    payload = {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
               "gen": gen.get_state(), "torch_rng": torch.get_rng_state(), "state": state.__dict__,
               "config_hash": config_hash}
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk or Ctrl-C mid-write leaves no stray temp file
        raise


def read_checkpoint(path: Path, *, advice: str = "delete it to start over") -> dict[str, Any]:
    """The payload of a checkpoint file; a missing, truncated or corrupted one is an :class:`ArenaError` naming
    the file (``arena run --resume``, ``arena eval``, analyze/prune and succinctness all read through here)."""
    from arena.errors import ArenaError

    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(payload, dict) or not isinstance(payload.get("model"), dict):
            raise ValueError("not an arena checkpoint (no model weights)")
    except Exception as exc:
        raise ArenaError(f"checkpoint {path} is unreadable or corrupted ({type(exc).__name__}: {exc}); "
                         f"{advice}") from None
    return payload


def load_state(model: torch.nn.Module, payload: dict[str, Any], path: Path, what: str) -> None:
    """Load a checkpoint's weights into ``model``; weights of another shape are an ArenaError, not a traceback."""
    from arena.errors import ArenaError

    try:
        model.load_state_dict(payload["model"])
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArenaError(f"checkpoint {path} does not fit {what} ({first})") from None


def load_checkpoint(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any,
                    gen: torch.Generator, config_hash: str) -> TrainState:
    from arena.errors import ArenaError

    try:
        payload = read_checkpoint(path)
        if payload.get("config_hash") != config_hash:
            raise ArenaError(f"checkpoint {path} belongs to another configuration; refusing to resume from it")
        model.load_state_dict(payload["model"])
        opt.load_state_dict(payload["opt"])
        sched.load_state_dict(payload["sched"])
        gen.set_state(payload["gen"])
        torch.set_rng_state(payload["torch_rng"])
    except ArenaError:
        raise
    except Exception as exc:
        raise ArenaError(f"checkpoint {path} is unreadable or corrupted ({type(exc).__name__}: {exc}); "
                         "delete it to start over") from None
    return TrainState(**payload["state"])


def validate(model: torch.nn.Module, task: Task, val_set: list[Example], cfg: TrainConfig, state: TrainState,
             info: dict[str, float], device: str = "cpu") -> None:
    """A validation check during training: ``info["val"]``, the best so far, and the early stops (target reached,
    or ``patience`` checks without improvement). Shared by :func:`train` and :mod:`arena.batched`."""
    # teacher-forced exact match equals greedy exact match for a deterministic decoder, at 1/T the cost
    res = evaluate_examples(model, task, val_set, cfg.eval_batch_size, device, generate=False)["metrics"]
    val = res[validation_metric(task.metric)]
    info["val"] = val
    improved = state.best_val is None or val > state.best_val
    state.best_val = val if state.best_val is None else max(state.best_val, val)
    state.evals_since_best = 0 if improved else state.evals_since_best + 1
    if cfg.early_stop is not None and val >= cfg.early_stop:
        state.stopped_early, state.stop_reason = True, "target"
    elif cfg.patience is not None and task.higher_is_better and state.evals_since_best >= cfg.patience:
        state.stopped_early, state.stop_reason = True, "plateau"


def log_step(state: TrainState, info: dict[str, float]) -> None:
    """The training curve keeps validation steps, every 50th step and the first."""
    if "val" in info or state.step % 50 == 0 or state.step == 1:
        state.curve.append({"step": state.step, **{k: round(v, 6) for k, v in info.items()}})


def train(model: torch.nn.Module, task: Task, cfg: TrainConfig, seed: int, *, checkpoint: Path | None = None,
          resume: bool = False, config_hash: str = "", device: str = "cpu",
          on_step: Callable[[TrainState, dict[str, float]], None] | None = None,
          on_checkpoint: Callable[[TrainState], None] | None = None) -> TrainState:
    """Train ``model`` on ``task.splits["train"]``; returns the final :class:`TrainState`."""
    val_set: list[Example] = task.splits.get("val") or []
    if cfg.max_eval_examples:
        val_set = val_set[: cfg.max_eval_examples]
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
    batches = make_batches(task, cfg, seed, device)
    gen = batches.gen
    state = TrainState()
    if resume and checkpoint is not None and checkpoint.exists():
        state = load_checkpoint(checkpoint, model, opt, sched, gen, config_hash)
        batches.after_load()
    start = time.perf_counter() - state.seconds
    aux_modules = aux_loss_modules(model)
    probe = _attention_probe(task, cfg)
    if probe and not state.attention_curve:
        state.attention_curve.append(_attention_point(model, probe, 0, cfg, device))
    save = _saver(checkpoint, model, opt, sched, gen, state, config_hash, on_checkpoint)
    model.train()
    with stopping.training():  # a signal now ends the run after a whole step, checkpoint saved
        while state.step < cfg.max_steps and not state.stopped_early:
            x, y = batches.next()
            logits = model(x)  # (B, T, V)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE)
            total = loss + collect_aux_loss(model, aux_modules) if aux_modules else loss
            opt.zero_grad(set_to_none=True)
            total.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            state.step += 1
            state.tokens_seen += int((x != 0).sum())
            info = {"loss": loss.item(), "lr": sched.get_last_lr()[0], "grad_norm": gnorm.item()}
            if val_set and (state.step % cfg.eval_every == 0 or state.step == cfg.max_steps):
                validate(model, task, val_set, cfg, state, info, device)
                model.train()
            if probe and (state.step % cfg.eval_every == 0 or state.step == cfg.max_steps or state.stopped_early):
                state.attention_curve.append(_attention_point(model, probe, state.step, cfg, device))
            log_step(state, info)
            state.seconds = time.perf_counter() - start
            if on_step:
                on_step(state, info)
            if checkpoint_due(state, cfg):
                save()
            stopping.check(state.step, save)
    model.eval()
    return state


def checkpoint_due(state: TrainState, cfg: TrainConfig) -> bool:
    """Whether the periodic checkpoint is due after this step: every ``checkpoint_every`` steps, at an early stop
    and at the last step (one rule for :func:`train` and :func:`arena.batched.train_many`)."""
    return state.step % cfg.checkpoint_every == 0 or state.stopped_early or state.step == cfg.max_steps


def _saver(checkpoint: Path | None, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any,
           gen: torch.Generator, state: TrainState, config_hash: str,
           on_checkpoint: Callable[[TrainState], None] | None) -> Callable[[], bool]:
    """``save()``: the checkpoint at the current step, written once per step however often it is asked for (the
    periodic one and a requested stop's); False when the run has no checkpoint file."""
    saved_at = [-1]

    def save() -> bool:
        if checkpoint is None:
            return False
        if saved_at[0] != state.step:
            save_checkpoint(checkpoint, model, opt, sched, gen, state, config_hash)
            saved_at[0] = state.step
            if on_checkpoint:
                on_checkpoint(state)
        return True

    return save


def fit_custom(arch: Any, model: torch.nn.Module, task: Task, max_steps: int, seed: int,
               progress: Callable[[int, dict], None] | None = None) -> tuple[TrainState, dict[str, Any], dict[str, int]]:
    """Train a model that trains itself (``ArchSpec.trainer="custom"``, :class:`arena.api.CustomFit`): its state,
    the summary's extra keys for the run's ``extra``, and the parameters it actually fitted (a custom trainer may
    choose its skeleton for the task: the state machine has 164 SCAN logits, 80 parity logits)."""
    from arena.api import CustomFit
    from arena.errors import ArenaError

    if not isinstance(model, CustomFit):
        raise ArenaError(f"architecture {arch.name!r} declares a custom trainer but its module has no fit()")
    summary = model.fit(task, max_steps=max_steps, seed=seed, progress=progress)
    state = TrainState(step=int(summary.get("steps", 0)), curve=list(summary.get("curve", [])),
                       seconds=float(summary.get("seconds", 0.0)))
    fitted = sum(p.numel() for p in model.parameters())
    if "params" in summary and int(summary["params"]) != fitted:
        raise ArenaError(f"{arch.name!r} reports {summary['params']} fitted parameters but has {fitted}")
    params = {"total": fitted, "embedding": 0, "non_embedding": fitted, "active": fitted}
    return state, {k: v for k, v in summary.items() if k != "curve"}, params


def hand_written_prior(model: torch.nn.Module, summary: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A task-specific model's hand-written prior, ``{"gzip_bytes", "lines", "learned_bits"}``: what the module
    reports as :class:`arena.api.HandWrittenPrior`, else the ``skeleton_size`` / ``n_learned_bits`` keys of a
    custom trainer's ``fit`` summary; None for a model without one (every general model)."""
    from arena.api import HandWrittenPrior

    if isinstance(model, HandWrittenPrior):
        return dict(model.hand_written_prior())
    size = (summary or {}).get("skeleton_size")
    if not isinstance(size, dict):
        return None
    return {"gzip_bytes": size.get("gzip_bytes"), "lines": size.get("lines"),
            "learned_bits": (summary or {}).get("n_learned_bits")}


ATTENTION_PROBE_EXAMPLES = 64


def _attention_probe(task: Task, cfg: TrainConfig) -> list[Example]:
    """The fixed held-out examples whose attention ``train.log_attention`` records (empty when it is off)."""
    if not cfg.log_attention:
        return []
    split = "val" if "val" in task.splits else task.eval_splits[0]
    return task.analysis_examples(split, ATTENTION_PROBE_EXAMPLES)


def _attention_point(model: torch.nn.Module, probe: list[Example], step: int, cfg: TrainConfig,
                     device: str) -> dict[str, Any]:
    """Attention statistics at this step (no_grad, eval mode, no random numbers drawn: training is unchanged)."""
    from arena.analyze import analyze_examples, compact

    report = analyze_examples(model, probe, cfg.eval_batch_size, device)
    model.train()
    return {"step": step, **compact(report)}
