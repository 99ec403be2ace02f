"""Many tiny models per step: train K same-shape models together, each exactly as :func:`arena.train.train` would.

A tiny model on a CPU spends most of a training step in per-operation overhead (dispatch, autograd, the optimizer's
per-tensor loop), not in arithmetic. K models of one shape (seeds x learning rates of one configuration) are
therefore stacked (``torch.func.stack_module_state``) and run as one vmapped ``functional_call`` per step: every
operation is issued once for all K. Each model keeps everything it would have alone:

* its own data stream (its task's train set and a ``torch.Generator`` seeded with its seed, the same batches as
  :func:`arena.train.train` draws), padded on the right to the longest batch of the step (causal models ignore
  what follows, and padded positions carry no loss);
* its own AdamW moments, step count, learning rate and schedule (:func:`arena.train.lr_lambda`), weight decay and
  gradient clipping (``clip_grad_norm_`` per model), computed on one flat (K, N) tensor of all parameters;
* its own validation, early stop, curve and checkpoints, in the checkpoint format of :mod:`arena.train`, so a
  batched run resumes alone and a lone run resumes batched.

Results equal one-at-a-time training within float tolerance (``tests/unit/test_batched.py`` on rnn, transformer
and mamba). A model that stops (early stop or its own ``max_steps``) leaves the stack; the others go on.

Modules whose ``forward`` cannot run under ``torch.func.vmap`` provide ``forward_stacked(x)``; the trainer uses it
on its private copy of the module only (the LSTM mixer does, because ``aten::lstm`` has no batching rule).
:func:`stack_problem` says why a set of models cannot be stacked (then callers train them one at a time).

Example::

    states = train_many([m0, m1], [task0, task1], [cfg0, cfg1], seeds=[0, 1])   # -> [TrainState, TrainState]
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from arena import stopping
from arena.api import IGNORE, Task
from arena.blocks import aux_loss_modules
from arena.spec import TrainConfig
from arena.train import (
    TrainState,
    checkpoint_due,
    load_checkpoint,
    log_step,
    lr_lambda,
    make_batches,
    param_groups,
    save_checkpoint,
    validate,
)

EPS = 1e-8  # torch.optim.AdamW's default
SHARED_FIELDS = ("batch_size", "betas")  # must agree across the stack; every other TrainConfig field is per model


def stack_problem(models: Sequence[nn.Module], cfgs: Sequence[TrainConfig]) -> str | None:
    """Why these models cannot be trained as one stack (None when they can)."""
    if not models:
        return "no models"
    if len(models) != len(cfgs):
        return "one TrainConfig per model is needed"
    shapes = [[(n, tuple(p.shape)) for n, p in m.named_parameters()] for m in models]
    if any(s != shapes[0] for s in shapes[1:]):
        return "the models' parameters differ in names or shapes"
    if any(type(m) is not type(models[0]) for m in models):
        return "the models are of different classes"
    for f in SHARED_FIELDS:
        if len({getattr(c, f) for c in cfgs}) > 1:
            return f"train.{f} differs between the models"
    if aux_loss_modules(models[0]):
        return "auxiliary losses (MoE) are not stacked"
    return None


class _Stack:
    """The stacked parameters and AdamW state of the models still training (row j <-> model ``rows[j]``).

    All parameters of a row live in one flat (K, N) tensor (each named parameter is a leaf tensor sharing its
    storage), and so do the AdamW moments: the optimizer and the clipping are a handful of whole-stack operations
    per step instead of a loop over parameter tensors."""

    def __init__(self, models: Sequence[nn.Module], rows: list[int]):
        self.rows = rows
        params, buffers = stack_module_state([models[k] for k in rows])
        self.shapes = {n: tuple(p.shape[1:]) for n, p in params.items()}
        self.flat = torch.cat([p.detach().flatten(1) for p in params.values()], dim=1)
        self.exp_avg_flat = torch.zeros_like(self.flat)
        self.exp_avg_sq_flat = torch.zeros_like(self.flat)
        self.buffers = buffers
        self.steps = [0.0] * len(rows)  # AdamW's step count per model
        decay_ids = {id(p) for p in param_groups(models[rows[0]], 1.0)[0]["params"]}
        decay = {n: id(p) in decay_ids for n, p in models[rows[0]].named_parameters()}
        self.decay_cols = torch.cat([torch.full((math.prod(s),), decay[n], dtype=torch.bool)
                                     for n, s in self.shapes.items()])
        self._views()

    def _views(self) -> None:
        """(Re)make the named leaf parameters and moment views on the flat tensors."""
        self.params, self.exp_avg, self.exp_avg_sq = {}, {}, {}
        k, at = self.flat.shape[0], 0
        for n, s in self.shapes.items():
            size = math.prod(s)
            self.params[n] = self.flat[:, at:at + size].view(k, *s).detach().requires_grad_(True)
            self.exp_avg[n] = self.exp_avg_flat[:, at:at + size].view(k, *s)
            self.exp_avg_sq[n] = self.exp_avg_sq_flat[:, at:at + size].view(k, *s)
            at += size

    def flat_grad(self) -> torch.Tensor | None:
        """The (K, N) gradient of the whole stack (zeros where a parameter got none); None if none got one."""
        grads = [p.grad for p in self.params.values()]
        if all(g is None for g in grads):
            return None
        return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten(1)
                          for g, p in zip(grads, self.params.values(), strict=True)], dim=1)

    def keep(self, rows: list[int]) -> None:
        """Drop the rows of models that stopped."""
        idx = torch.tensor([self.rows.index(k) for k in rows])
        self.flat, self.exp_avg_flat, self.exp_avg_sq_flat = (self.flat[idx], self.exp_avg_flat[idx],
                                                              self.exp_avg_sq_flat[idx])
        self.buffers = {n: b[idx] for n, b in self.buffers.items()}
        self.steps = [self.steps[int(i)] for i in idx]
        self.rows = rows
        self._views()

    def write_into(self, model: nn.Module, row: int) -> None:
        """Copy the stacked weights of one row into a real module (evaluation, checkpoints, the final model)."""
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(self.params[n][row])

    def opt_state_into(self, opt: torch.optim.Optimizer, model: nn.Module, row: int) -> None:
        by_id = {id(p): n for n, p in model.named_parameters()}
        for group in opt.param_groups:
            for p in group["params"]:
                n = by_id[id(p)]
                opt.state[p] = {"step": torch.tensor(float(self.steps[row])),
                                "exp_avg": self.exp_avg[n][row].clone(), "exp_avg_sq": self.exp_avg_sq[n][row].clone()}

    def opt_state_from(self, opt: torch.optim.Optimizer, model: nn.Module, row: int) -> None:
        by_id = {id(p): n for n, p in model.named_parameters()}
        for group in opt.param_groups:
            for p in group["params"]:
                st = opt.state.get(p)
                if st:
                    n = by_id[id(p)]
                    self.exp_avg[n][row].copy_(st["exp_avg"])
                    self.exp_avg_sq[n][row].copy_(st["exp_avg_sq"])
                    self.steps[row] = float(st["step"])


class _VmapOnly(torch.autograd.Function):
    """A function that only has a vmap rule: called outside ``torch.func.vmap`` it is an error, and autograd
    records the ops its vmap rule runs, so it needs no backward of its own."""

    @staticmethod
    def forward(fn: Callable[..., torch.Tensor], *args: Any) -> torch.Tensor:  # pragma: no cover - vmap only
        raise RuntimeError("per_model, fold_models and all_models are only for forward_stacked under vmap")

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:  # pragma: no cover - vmap only
        pass

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:  # pragma: no cover - autograd records the vmap rule's ops instead
        raise RuntimeError("per_model, fold_models and all_models are only for forward_stacked under vmap")


class _PerModel(_VmapOnly):
    """Run ``fn`` once per model under vmap (the for-loop that vmap lacks for ops without a batching rule)."""

    @staticmethod
    def vmap(info: Any, in_dims: tuple[int | None, ...], fn: Callable[..., torch.Tensor],
             *args: Any) -> tuple[torch.Tensor, int]:
        args = tuple(a.movedim(d, 0) if d is not None else a for a, d in zip(args, in_dims[1:], strict=True))
        outs = [fn(*(a[k] if d is not None else a for a, d in zip(args, in_dims[1:], strict=True)))
                for k in range(info.batch_size)]
        return torch.stack(outs), 0


def per_model(fn: Callable[..., torch.Tensor], *args: Any) -> torch.Tensor:
    """Inside a module's ``forward_stacked``: ``fn(*args)`` evaluated model by model on the unstacked tensors.

    For operations vmap cannot batch (``aten::lstm``); autograd records each model's call as usual."""
    return _PerModel.apply(fn, *args)


def _model_first(k: int, in_dims: tuple[int | None, ...], args: tuple[Any, ...]) -> list[torch.Tensor]:
    """The arguments of a vmap rule with the model dimension first (an unbatched one expanded over the K models)."""
    return [a.movedim(d, 0) if d is not None else a.expand(k, *a.shape) for a, d in zip(args, in_dims[1:], strict=True)]


class _Folded(_VmapOnly):
    """Run ``fn`` once for all models under vmap, the model dimension folded into the batch dimension."""

    @staticmethod
    def vmap(info: Any, in_dims: tuple[int | None, ...], fn: Callable[..., torch.Tensor],
             *args: Any) -> tuple[torch.Tensor, int]:
        k = info.batch_size
        out = fn(*(a.flatten(0, 1) for a in _model_first(k, in_dims, args)))
        return out.view(k, out.shape[0] // k, *out.shape[1:]), 0


def fold_models(fn: Callable[..., torch.Tensor], *args: torch.Tensor) -> torch.Tensor:
    """Inside a module's ``forward_stacked``: ``fn`` applied to all models' batches at once (dimension 0 of every
    argument is the batch, which must hold independent samples: attention, scans). One call instead of vmap's
    per-model loop for operations without a batching rule (``scaled_dot_product_attention`` on CPU)."""
    return _Folded.apply(fn, *args)


class _AllModels(_VmapOnly):
    """Run ``fn`` once on the stacked tensors under vmap (model dimension first in every argument and the result)."""

    @staticmethod
    def vmap(info: Any, in_dims: tuple[int | None, ...], fn: Callable[..., torch.Tensor],
             *args: Any) -> tuple[torch.Tensor, int]:
        return fn(*_model_first(info.batch_size, in_dims, args)), 0


def all_models(fn: Callable[..., torch.Tensor], *args: torch.Tensor) -> torch.Tensor:
    """Inside a module's ``forward_stacked``: ``fn`` called once with every argument stacked over the K models
    (dimension 0 is the model), returning the stacked result. For a kernel written for the whole stack (the
    block-diagonal LSTM of :mod:`architectures.rnn`)."""
    return _AllModels.apply(fn, *args)


def _col(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    """A (K, 1) column: one value per model, broadcasting over the flat (K, N) stack."""
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(-1, 1)


@torch.no_grad()
def _clip(grad: torch.Tensor, max_norms: Sequence[float]) -> torch.Tensor:
    """``clip_grad_norm_`` per model on the flat (K, N) gradient; returns each model's total norm before clipping."""
    total = torch.linalg.vector_norm(grad, dim=1)  # (K,)
    coef = (torch.tensor(max_norms, dtype=total.dtype) / (total + 1e-6)).clamp(max=1.0)
    grad.mul_(coef.view(-1, 1))
    return total


@torch.no_grad()
def _adamw(stack: _Stack, grad: torch.Tensor, lrs: Sequence[float], wds: Sequence[float],
           betas: tuple[float, float]) -> None:
    """One decoupled-weight-decay Adam step per model on the flat stack, in torch.optim.AdamW's order of
    operations (no weight decay on the columns of biases, norms and 1-d parameters)."""
    beta1, beta2 = betas
    p, m, v = stack.flat, stack.exp_avg_flat, stack.exp_avg_sq_flat
    skipped = [n for n, q in stack.params.items() if q.grad is None]
    kept = {n: (stack.params[n].detach().clone(), stack.exp_avg[n].clone(), stack.exp_avg_sq[n].clone())
            for n in skipped}  # as torch.optim: a parameter without a gradient is left alone
    stack.steps = [s + 1 for s in stack.steps]
    bc1 = [1 - beta1**s for s in stack.steps]
    bc2_sqrt = [(1 - beta2**s) ** 0.5 for s in stack.steps]
    if any(wd != 0 for wd in wds):
        decay = _col([1 - lr * wd for lr, wd in zip(lrs, wds, strict=True)], p)
        p.mul_(torch.where(stack.decay_cols, decay, 1.0))
    m.lerp_(grad, 1 - beta1)
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = v.sqrt().div_(_col(bc2_sqrt, p)).add_(EPS)
    p.add_(m.div(denom).mul_(_col([-(lr / b) for lr, b in zip(lrs, bc1, strict=True)], p)))
    for n, (q, mq, vq) in kept.items():
        stack.params[n].detach().copy_(q)
        stack.exp_avg[n].copy_(mq)
        stack.exp_avg_sq[n].copy_(vq)


def _losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each model's mean cross-entropy over its non-ignored targets, (K, B, T, V) logits -> (K,): one
    ``cross_entropy`` call for the whole stack outside vmap (equal results; 0-0.8 ms per step less than the
    vmapped call for 6 rnn models)."""
    k = logits.shape[0]
    per_token = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE,
                                reduction="none").view(k, -1)
    return per_token.sum(1) / (y != IGNORE).view(k, -1).sum(1)


def _pad_stack(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, B, T) inputs (pad 0) and targets (IGNORE) from K batches of possibly different lengths."""
    t = max(x.shape[1] for x, _ in batches)
    xs = [F.pad(x, (0, t - x.shape[1]), value=0) for x, _ in batches]
    ys = [F.pad(y, (0, t - y.shape[1]), value=IGNORE) for _, y in batches]
    return torch.stack(xs), torch.stack(ys)


def _stacked_module(model: nn.Module) -> nn.Module:
    """A parameter-free copy of ``model`` whose submodules use ``forward_stacked`` where they define one."""
    base = copy.deepcopy(model).to("meta")
    for m in base.modules():
        if hasattr(m, "forward_stacked"):
            m.forward = m.forward_stacked
    return base


class _Member:
    """One model of the stack: its data, schedule, state, evaluation and checkpoints."""

    def __init__(self, model: nn.Module, task: Task, cfg: TrainConfig, seed: int, checkpoint: Path | None,
                 resume: bool, config_hash: str, device: str):
        self.model, self.task, self.cfg, self.checkpoint, self.config_hash = model, task, cfg, checkpoint, config_hash
        self.val = list(task.splits.get("val") or [])
        if cfg.max_eval_examples:
            self.val = self.val[: cfg.max_eval_examples]
        self.opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(cfg))
        self.batches = make_batches(task, cfg, seed, device)
        self.gen = self.batches.gen
        self.state = TrainState()
        self.resumed = bool(resume and checkpoint is not None and checkpoint.exists())
        if self.resumed:
            self.state = load_checkpoint(checkpoint, model, self.opt, self.sched, self.gen, config_hash)
            self.batches.after_load()
        self.lam = lr_lambda(cfg)
        self.saved_at = -1  # the step of the last checkpoint this process wrote

    @property
    def done(self) -> bool:
        return self.state.step >= self.cfg.max_steps or self.state.stopped_early

    def lr_now(self) -> float:
        return self.cfg.lr * self.lam(self.state.step)


def train_many(models: Sequence[nn.Module], tasks: Sequence[Task], cfgs: Sequence[TrainConfig], seeds: Sequence[int],
               *, checkpoints: Sequence[Path | None] | None = None, resume: bool = False,
               config_hashes: Sequence[str] | None = None, device: str = "cpu",
               on_step: Callable[[int, TrainState, dict[str, float]], None] | None = None) -> list[TrainState]:
    """Train ``models[k]`` on ``tasks[k]`` with ``cfgs[k]`` and ``seeds[k]``, all K in one stack.

    Equivalent, model by model, to ``arena.train.train(models[k], tasks[k], cfgs[k], seeds[k], checkpoint=...,
    resume=..., config_hash=...)``; returns the K final :class:`TrainState` objects (``seconds`` is each model's
    share of the wall time: a step's time divided by the models in it). The modules end up holding the trained
    weights, in eval mode. ``on_step(k, state, info)`` is called for every model after each of its steps.
    """
    K = len(models)
    why = stack_problem(models, cfgs)
    if why is not None:
        raise ValueError(f"cannot train these models as one stack: {why}")
    checkpoints = list(checkpoints) if checkpoints is not None else [None] * K
    hashes = list(config_hashes) if config_hashes is not None else [""] * K
    members = [_Member(models[k], tasks[k], cfgs[k], seeds[k], checkpoints[k], resume, hashes[k], device)
               for k in range(K)]
    for m in models:
        m.train()
    base = _stacked_module(models[0])
    rows = [k for k in range(K) if not members[k].done]
    stack = _Stack(models, rows) if rows else None
    if stack is not None:
        for j, k in enumerate(rows):
            if members[k].resumed:
                stack.opt_state_from(members[k].opt, models[k], j)

    def logits_one(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(base, (p, b), (x,))

    batched_logits = vmap(logits_one, randomness="error")
    betas = cfgs[0].betas
    with stopping.training():  # a signal now ends the stack after a whole step, every checkpoint saved
        _steps(stack, members, models, batched_logits, betas, device, on_step)
    for m in models:
        m.eval()
    return [m.state for m in members]


def _steps(stack: _Stack | None, members: list[_Member], models: Sequence[nn.Module], batched_logits: Callable,
           betas: tuple[float, float], device: str,
           on_step: Callable[[int, TrainState, dict[str, float]], None] | None) -> None:
    """Optimizer steps of the whole stack until every model is done (or a stop is requested)."""
    while stack is not None:
        t0 = time.perf_counter()
        act = [members[k] for k in stack.rows]
        lrs = [m.lr_now() for m in act]
        raw = [m.batches.next() for m in act]
        x, y = _pad_stack(raw)
        losses = _losses(batched_logits(stack.params, stack.buffers, x.to(device)), y.to(device))
        for p in stack.params.values():
            p.grad = None
        losses.sum().backward()
        grad = stack.flat_grad()
        if grad is None:  # nothing to clip or step (torch.optim skips parameters without gradients)
            gnorm = torch.zeros(len(act))
        else:
            gnorm = _clip(grad, [m.cfg.grad_clip for m in act])
            _adamw(stack, grad, lrs, [m.cfg.weight_decay for m in act], betas)
        share = (time.perf_counter() - t0) / len(act)
        retire = _after_step(stack, act, raw, losses.tolist(), gnorm.tolist(), share, device, on_step)
        stopping.check(act[0].state.step, lambda stack=stack: _save_all(stack, members))
        if retire:
            stack = _retire(stack, members, models)


def _retire(stack: _Stack, members: list[_Member], models: Sequence[nn.Module]) -> _Stack | None:
    """Write the finished models' weights back into their modules and keep training the rest (None: all done)."""
    left = [k for k in stack.rows if not members[k].done]
    for j, k in enumerate(stack.rows):
        if members[k].done:
            stack.write_into(models[k], j)
    if not left:
        return None
    stack.keep(left)
    return stack


def _after_step(stack: _Stack, act: list[_Member], raw: list[tuple[torch.Tensor, torch.Tensor]],
                losses: list[float], gnorms: list[float], share: float, device: str,
                on_step: Callable[[int, TrainState, dict[str, float]], None] | None) -> bool:
    """The per-model bookkeeping of :func:`arena.train.train` after an optimizer step; True if a model stopped."""
    stopped = False
    for j, m in enumerate(act):
        st, cfg = m.state, m.cfg
        st.step += 1
        st.tokens_seen += int((raw[j][0] != 0).sum())
        info = {"loss": losses[j], "lr": m.lr_now(), "grad_norm": gnorms[j]}
        if m.val and (st.step % cfg.eval_every == 0 or st.step == cfg.max_steps):
            stack.write_into(m.model, j)
            validate(m.model, m.task, m.val, cfg, st, info, device)
        log_step(st, info)
        st.seconds += share
        if on_step:
            on_step(stack.rows[j], st, info)
        if checkpoint_due(st, cfg):
            _save(stack, m, j)
        stopped = stopped or m.done
    return stopped


def _save(stack: _Stack, m: _Member, j: int) -> bool:
    """Write row ``j``'s checkpoint in :mod:`arena.train`'s format, once per step however often it is asked for
    (the periodic one and a requested stop's, as :func:`arena.train.train`); False when the model has no
    checkpoint file."""
    if m.checkpoint is None:
        return False
    if m.saved_at == m.state.step:
        return True
    m.saved_at = m.state.step
    stack.write_into(m.model, j)
    stack.opt_state_into(m.opt, m.model, j)
    m.sched.last_epoch = m.state.step
    m.opt.param_groups[0]["lr"] = m.opt.param_groups[1]["lr"] = m.lr_now()
    m.sched._last_lr = [m.lr_now(), m.lr_now()]
    save_checkpoint(m.checkpoint, m.model, m.opt, m.sched, m.gen, m.state, m.config_hash)
    return True


def _save_all(stack: _Stack, members: list[_Member]) -> bool:
    """On a requested stop: every model still in the stack checkpointed at its current step."""
    saved = [_save(stack, members[k], j) for j, k in enumerate(stack.rows)]
    return bool(saved) and all(saved)


def rows_stackable(n: int, d_model: int, limit: int = 128) -> bool:
    """The automatic policy of sweeps: stack when there are >= 2 runs and the width is tiny (<= ``limit``)."""
    return n >= 2 and d_model <= limit


__all__ = ["train_many", "stack_problem", "rows_stackable", "per_model", "fold_models", "all_models"]
