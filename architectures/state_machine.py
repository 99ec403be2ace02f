"""LexSM-164: a learnable 164-parameter state machine for SCAN (SPECS.md §5; project design, no paper).

A fixed interpreter skeleton (``state_machine_skeletons.py``) plus a learned lexicon: role logits (13 words x 5
roles PRIM/DIR/AMUL/LOOP/CONJ), argument logits (13 x 7: an output symbol, a multiplier, or keep/swap) and clause-
template logits (8) = 164 ``nn.Parameter`` values. Every word's meaning and the template are learned from the
training pairs by gradient ascent on expected exact-match reward with the local-expectation estimator (Titsias &
Lázaro-Gredilla 2015): for each word of a sentence all 35 (role, arg) options are enumerated exactly with the other
words sampled. Input words are assigned to lexicon rows alphabetically (or by a seeded permutation), never in the
grammar's order; the output alphabet is the training targets' tokens (sorted) plus epsilon.

A second skeleton (bracketed-expression stack evaluator, roles LIT/OPEN/CLOSE/OP/NEG/IGNORE x 4 arguments over
8 tokens = 80 parameters) serves ``nested-parity`` (variant ``flat``).

This is a task-specific model: the skeleton is prior knowledge (its size is reported by ``skeleton_size()`` and
recorded on the run as its prior columns through ``hand_written_prior()``, :class:`arena.api.HandWrittenPrior`), FLOPs
are "n/a (symbolic)", and ``fit()`` refuses tasks without a skeleton. The runner calls ``fit(task, ...)`` instead of
gradient training (``trainer="custom"``); afterwards ``forward`` emits large logits for the argmax lexicon's output,
so the standard greedy-generation / teacher-forced evaluation scores it unchanged.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from arena.api import ArchConfig, ModelShape, SizePreset, arch_spec
from arena.architectures import state_machine_skeletons as sk
from arena.errors import ArenaError

# scan-shift (SCAN's words, rules the skeleton cannot express) is listed so that the SCAN skeleton's failure on a
# grammar it was not written for is measured, not refused; nothing in the skeleton refers to it
SUPPORTED_TASKS = ("scan", "scan-depth", "scan-shift", "nested-parity")
# skeleton -> (rows, roles, args, templates, role names)
SKELETONS: dict[str, tuple[int, int, int, int, tuple[str, ...]]] = {
    "scan": (13, 5, 7, 8, ("PRIM", "DIR", "AMUL", "LOOP", "CONJ")),
    "parity": (8, 6, 4, 0, ("LIT", "OPEN", "CLOSE", "OP", "NEG", "IGNORE")),
}
GROUP_TOKENS = ("(", ")")  # the scan skeleton's grouping symbols (scan-depth brackets): part of the skeleton
EPSILON = "<eps>"
TEMPLATES = ("d^a p", "p d^a", "(d p)^a", "(p d)^a", "d p", "p d", "d^a", "p")  # names of sk.scan_unit's templates
LOGIT = 30.0  # logit of the machine's chosen token in forward()


def skeleton_params(name: str) -> int:
    rows, roles, args, templates, _ = SKELETONS[name]
    return rows * (roles + args) + templates


class StateMachineConfig(ArchConfig):
    skeleton: Literal["auto", "scan", "parity"] = Field(
        "auto", description="interpreter skeleton; auto = chosen from the task name at fit time (scan: 164 params, "
                            "parity: 80). Default: auto")
    word_order: Literal["sorted", "shuffled"] = Field(
        "sorted", description="how input words are assigned to lexicon rows: alphabetical or a seeded random "
                              "permutation. Default: sorted")
    lr: float = Field(0.03, gt=0, description="Adam learning rate. Default: 0.03")
    batch_size: int = Field(16, ge=1, description="sentences per step. Default: 16")
    samples: int = Field(4, ge=1, description="lexicons sampled per sentence (S). Default: 4")
    entropy_start: float = Field(0.5, ge=0, description="entropy bonus at step 0, annealed linearly to 0. Default: 0.5")
    anneal_frac: float = Field(0.6, gt=0, le=1, description="fraction of max_steps over which the entropy bonus "
                                                            "anneals to 0. Default: 0.6")
    partial_credit: float = Field(0.3, ge=0, le=1, description="reward weight of the bag-of-actions F1 for a wrong "
                                                              "output. Default: 0.3")
    max_steps: int = Field(600, ge=1, description="step budget; fit() uses min(its max_steps, this). Default: 600")
    check_every: int = Field(10, ge=1, description="steps between train exact-match checks. Default: 10")
    max_train_tokens: int | None = Field(
        None, ge=1, description="learn only from training inputs of at most this many tokens (a compute saving for "
                                "long inputs such as deep scan-depth trees; train exact match is still reported on "
                                "the whole training set). Default: None (all)")
    shuffle_targets: bool = Field(False, description="control: shuffle training targets across commands. "
                                                     "Default: False")


class StateMachine(nn.Module):
    """Lexicon logits + a fixed skeleton. ``fit`` learns the lexicon; ``forward`` runs its argmax."""

    def __init__(self, shape: ModelShape, cfg: StateMachineConfig):
        super().__init__()
        self.shape = shape
        self.cfg = cfg
        self.supported_tasks = SUPPORTED_TASKS
        self._init_skeleton("parity" if cfg.skeleton == "parity" else "scan", seed=0)
        self._bound: dict[str, Any] | None = None  # set by fit(): vocabulary binding and the decoded lexicon

    # -- parameters ---------------------------------------------------------------------------------------------
    def _init_skeleton(self, name: str, seed: int) -> None:
        rows, roles, args, templates, _ = SKELETONS[name]
        g = torch.Generator().manual_seed(seed)
        self.skeleton = name
        self.role_logits = nn.Parameter(0.01 * torch.randn(rows, roles, generator=g))
        self.arg_logits = nn.Parameter(0.01 * torch.randn(rows, args, generator=g))
        if templates:
            self.template_logits = nn.Parameter(0.01 * torch.randn(templates, generator=g))
        else:
            self.template_logits = None  # type: ignore[assignment]
        n = sum(p.numel() for p in self.parameters())
        assert n == skeleton_params(name), (n, name)

    # -- binding a task's vocabulary ----------------------------------------------------------------------------
    def _examples(self, task: Any, split: str, skeleton: str) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        """(input words, target words): for scan the words between BOS and SEP and the actions before EOS; for
        parity the whole prefix up to the single supervised position and the label there."""
        words = task.vocab.tokens
        out = []
        for ex in task.splits[split]:
            toks = [words[i] for i in ex.tokens]
            if skeleton == "scan":
                if ex.prompt_len is None:
                    raise ArenaError(f"state-machine: task {task.name!r} is not generative (no prompt_len)")
                out.append((tuple(toks[1: ex.prompt_len - 1]), tuple(toks[ex.prompt_len: -1])))
            else:
                marked = [i for i, m in enumerate(ex.mask) if m]
                if len(marked) != 1:
                    raise ArenaError(f"state-machine: task {task.name!r} examples must supervise exactly one "
                                     f"position for the parity skeleton; got {len(marked)}")
                out.append((tuple(toks[: marked[0] + 1]), (toks[marked[0] + 1],)))
        return out

    def bind(self, task: Any, seed: int = 0) -> None:
        """Bind a task's vocabulary (choose the skeleton, map words to rows) without training."""
        self._bind(task, seed)

    def _bind(self, task: Any, seed: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        name = getattr(task, "name", "")
        if name not in SUPPORTED_TASKS:
            raise ArenaError(f"state-machine is a task-specific model with interpreter skeletons only for "
                             f"{', '.join(SUPPORTED_TASKS)} (nested-parity: variant=flat); it cannot run task "
                             f"{name!r}")
        skeleton = "parity" if name == "nested-parity" else "scan"
        if name == "nested-parity" and getattr(task.cfg, "variant", "flat") != "flat":
            raise ArenaError("state-machine: nested-parity is supported only with variant=flat (variant=mem would "
                             "need a key-value store in the skeleton, i.e. a hand-built attention lookup)")
        if self.cfg.skeleton not in ("auto", skeleton):
            raise ArenaError(f"state-machine: skeleton={self.cfg.skeleton!r} does not fit task {name!r} "
                             f"(needs {skeleton!r})")
        if skeleton != self.skeleton:
            self._init_skeleton(skeleton, seed)
        pairs = self._examples(task, "train", skeleton)
        grouping = GROUP_TOKENS if skeleton == "scan" else ()
        in_words = sorted({w for p, _ in pairs for w in p if w not in grouping})
        rows = SKELETONS[skeleton][0]
        if len(in_words) > rows:
            raise ArenaError(f"state-machine: {len(in_words)} input words but the {skeleton} lexicon has {rows} rows")
        if self.cfg.word_order == "shuffled":
            random.Random(f"state-machine-words:{seed}").shuffle(in_words)
        out_words = sorted({w for _, t in pairs for w in t})
        n_sym = SKELETONS[skeleton][2] - (1 if skeleton == "scan" else 0)
        if len(out_words) > n_sym:
            raise ArenaError(f"state-machine: {len(out_words)} output symbols but the {skeleton} skeleton has {n_sym}")
        vocab = task.vocab
        ex0 = task.splits["train"][0]
        row_of = {w: i for i, w in enumerate(in_words)}
        id_row = {vocab.id(w): r for w, r in row_of.items()}
        if skeleton == "scan":
            id_row.update({vocab.id(g): r for g, r in zip(GROUP_TOKENS, (sk.OPEN_ROW, sk.CLOSE_ROW), strict=True)
                           if g in vocab.tokens})
        self._bound = {
            "task": name, "generative": skeleton == "scan", "in_words": in_words, "out_words": out_words,
            "id_row": id_row, "out_ids": [vocab.id(w) for w in out_words],
            "bos": ex0.tokens[0], "sep": ex0.tokens[ex0.prompt_len - 1] if skeleton == "scan" else None,
            "eos": ex0.tokens[-1] if skeleton == "scan" else None, "vocab_size": vocab.size,
        }
        # emit[arg]: the output symbols an argument stands for (scan); out-of-range arguments are invalid
        self._emit = [(i,) for i in range(len(out_words))] + [()]
        self._emit += [None] * (SKELETONS["scan"][2] - len(self._emit))
        sym = {w: i for i, w in enumerate(out_words)}
        data = [(tuple(id_row.get(vocab.id(w), -3) for w in p), tuple(sym[w] for w in t)) for p, t in pairs]
        return data

    # -- the skeleton -------------------------------------------------------------------------------------------
    def _execute(self, rows: tuple[int, ...], lex: list[tuple[int, int]], t: int) -> tuple[int, ...] | None:
        if self.skeleton == "scan":
            return sk.scan_execute(rows, lex, t, self._emit)
        return sk.parity_execute(rows, lex)

    def _argmax(self) -> tuple[list[tuple[int, int]], int]:
        roles = self.role_logits.detach().argmax(-1).tolist()
        args = self.arg_logits.detach().argmax(-1).tolist()
        t = int(self.template_logits.detach().argmax()) if self.template_logits is not None else 0
        return list(zip(roles, args, strict=True)), t

    # -- training -----------------------------------------------------------------------------------------------
    def fit(self, task: Any, *, max_steps: int | None = None, seed: int = 0,
            progress: Callable[[int, dict], None] | None = None) -> dict[str, Any]:
        """Learn the lexicon from ``task.splits["train"]``; returns a JSON-able summary."""
        t0 = time.perf_counter()
        data = self._bind(task, seed)
        cfg = self.cfg
        # the runner's generic step budget is sized for gradient training; ours is at most cfg.max_steps
        max_steps = min(int(max_steps or cfg.max_steps), cfg.max_steps)
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        with torch.no_grad():  # fresh small random logits per seed
            g = torch.Generator().manual_seed(seed)
            for p in self.parameters():
                p.copy_(0.01 * torch.randn(p.shape, generator=g))
        if cfg.shuffle_targets:
            targets = [t for _, t in data]
            random.Random(f"state-machine-control:{seed}").shuffle(targets)
            data = [(p, t) for (p, _), t in zip(data, targets, strict=True)]
        if cfg.max_train_tokens is not None:  # compute saving: learn from the shorter training sentences only
            fit_data = [(p, t) for p, t in data if len(p) <= cfg.max_train_tokens]
            if not fit_data:
                raise ArenaError(f"state-machine: no training input has <= {cfg.max_train_tokens} tokens")
        else:
            fit_data = data
        unique = sorted(set(fit_data))
        by_len: dict[int, list[tuple[tuple[int, ...], tuple[int, ...]]]] = {}
        for p, t in unique:
            by_len.setdefault(len(p), []).append((p, t))
        lengths = sorted(by_len)
        opt = torch.optim.Adam(self.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
        n_rows, n_roles, n_args, n_tmpl, _ = SKELETONS[self.skeleton]
        used = sorted({w for p, _ in unique for w in p if w >= 0})
        em_cache: dict[tuple, float] = {}
        cache: dict[tuple, float] = {}  # (sentence, its words' entries, template) -> reward
        train_em, step, history = 0.0, 0, []
        for step in range(1, max_steps + 1):
            beta = cfg.entropy_start * max(0.0, 1.0 - (step - 1) / (cfg.anneal_frac * max_steps))
            pr, pa = _softmax(self.role_logits), _softmax(self.arg_logits)
            pt = _softmax(self.template_logits) if n_tmpl else np.ones(1)
            cr, ca, ct = pr.cumsum(-1), pa.cumsum(-1), pt.cumsum(-1)
            g_r, g_a, g_t = np.zeros((n_rows, n_roles)), np.zeros((n_rows, n_args)), np.zeros(max(n_tmpl, 1))
            mean_reward = 0.0
            if len(cache) > 2_000_000:
                cache.clear()
            for _ in range(cfg.batch_size):
                bucket = by_len[lengths[rng.integers(len(lengths))]]
                sid = int(rng.integers(len(bucket)))
                rows, target = bucket[sid]
                types = sorted({w for w in rows if w >= 0})

                def reward(lex: list[tuple[int, int]], t: int, rows: tuple[int, ...] = rows,
                           types: list[int] = types, target: tuple[int, ...] = target) -> float:
                    key = (rows, t, *[lex[w] for w in types])
                    r = cache.get(key)
                    if r is None:
                        r = cache[key] = self._reward(rows, lex, t, target)
                    return r

                for _s in range(cfg.samples):
                    lex = [(0, 0)] * n_rows
                    u = rng.random(2 * len(types) + 1)
                    for k, w in enumerate(types):
                        lex[w] = (_draw(cr[w], u[2 * k]), _draw(ca[w], u[2 * k + 1]))
                    t = _draw(ct, u[-1])
                    mean_reward += reward(lex, t)
                    for w in types:  # local expectation: every (role, arg) of w, the other words as sampled
                        keep = lex[w]
                        q = np.empty((n_roles, n_args))
                        for r in range(n_roles):
                            for a in range(n_args):
                                lex[w] = (r, a)
                                q[r, a] = reward(lex, t)
                        lex[w] = keep
                        q_r, q_a = q @ pa[w], pr[w] @ q
                        q_bar = float(pr[w] @ q_r)
                        g_r[w] += pr[w] * (q_r - q_bar)
                        g_a[w] += pa[w] * (q_a - q_bar)
                    if n_tmpl:  # and every template
                        q_t = np.array([reward(lex, k) for k in range(n_tmpl)])
                        g_t += pt * (q_t - float(pt @ q_t))
            scale = 1.0 / (cfg.batch_size * cfg.samples)
            opt.zero_grad(set_to_none=True)
            surrogate = (self.role_logits * torch.from_numpy(g_r * scale).float()).sum()
            surrogate = surrogate + (self.arg_logits * torch.from_numpy(g_a * scale).float()).sum()
            entropy = _entropy(self.role_logits[used]).sum() + _entropy(self.arg_logits[used]).sum()
            if n_tmpl:
                surrogate = surrogate + (self.template_logits * torch.from_numpy(g_t * scale).float()).sum()
                entropy = entropy + _entropy(self.template_logits)
            (-(surrogate + beta * entropy)).backward()
            opt.step()
            if step % cfg.check_every == 0 or step == max_steps:
                lex, t = self._argmax()
                key = (tuple(lex[w] for w in used), t)
                if key not in em_cache:
                    em_cache[key] = float(np.mean([self._execute(p, lex, t) == tt for p, tt in fit_data]))
                train_em = em_cache[key]
                info = {"train_exact_match": train_em, "mean_reward": mean_reward * scale, "beta": beta}
                history.append({"step": step, **info})
                if progress is not None:
                    progress(step, info)
                if train_em >= 1.0:
                    break
        if fit_data is not data:
            lex, t = self._argmax()
            train_em = float(np.mean([self._execute(p, lex, t) == tt for p, tt in data]))
        return {"steps": step, "train_exact_match": train_em, "skeleton": self.skeleton,
                "n_train_used": len(fit_data), "n_train": len(data),
                "params": sum(p.numel() for p in self.parameters()), "lexicon": self.learned_lexicon(),
                "skeleton_size": self.skeleton_size(), "n_learned_bits": self.n_learned_bits(),
                "task_specific": True, "seconds": time.perf_counter() - t0, "curve": history}

    def _reward(self, rows: tuple[int, ...], lex: list[tuple[int, int]], t: int, target: tuple[int, ...]) -> float:
        out = self._execute(rows, lex, t)
        if out is None:
            return 0.0
        if out == target:
            return 1.0
        if not out:
            return 0.0
        have, want = Counter(out), Counter(target)
        overlap = sum(min(n, have[s]) for s, n in want.items())
        return self.cfg.partial_credit * 2.0 * overlap / (len(out) + len(target))

    # -- inference ----------------------------------------------------------------------------------------------
    def predict(self, words: list[str] | tuple[str, ...]) -> list[str] | None:
        """The argmax lexicon's output for an input (words between BOS and SEP, or the whole prefix for parity)."""
        if self._bound is None:
            return None
        lex, t = self._argmax()
        row_of = {w: r for r, w in enumerate(self._bound["in_words"])}
        if self.skeleton == "scan":
            row_of.update(dict(zip(GROUP_TOKENS, (sk.OPEN_ROW, sk.CLOSE_ROW), strict=True)))
        out = self._execute(tuple(row_of.get(w, -3) for w in words), lex, t)
        return None if out is None else [self._bound["out_words"][s] for s in out]

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        b, n = input_ids.shape
        v = self._bound["vocab_size"] if self._bound else self.shape.vocab_size
        logits = torch.zeros(b, n, v)
        if self._bound is None:
            return logits
        bd = self._bound
        lex, t = self._argmax()
        ids = input_ids.tolist()
        for i, row in enumerate(ids):
            if bd["generative"]:
                # the prompt is everything before SEP (a row without SEP is executed whole and emits nothing, so
                # latency measured on arbitrary tokens still times the interpreter)
                s = row.index(bd["sep"]) if bd["sep"] in row else n
                prompt = tuple(x for x in row[:s] if x != bd["bos"] and x != self.shape.pad_id)
                out = self._execute(tuple(bd["id_row"].get(x, -3) for x in prompt), lex, t)
                if out is None or s == n:
                    continue
                out = tuple(bd["out_ids"][k] for k in out) + (bd["eos"],)
                for j in range(s, min(n, s + len(out))):
                    logits[i, j, out[j - s]] = LOGIT
                if s + len(out) < n:
                    logits[i, s + len(out):, self.shape.pad_id] = LOGIT
            else:  # parity: the running value of the expression read so far, at every position
                state = ((), None, None, 0)
                for j, x in enumerate(row):
                    state = sk.parity_step(state, bd["id_row"].get(x, -3), lex) if state is not None else None
                    value = sk.parity_result(state)
                    if value is not None:
                        logits[i, j, bd["out_ids"][value]] = LOGIT
        return logits

    # -- reporting ----------------------------------------------------------------------------------------------
    def learned_lexicon(self) -> dict[str, Any]:
        """The argmax lexicon as ``{"words": {word: "ROLE(arg)"}, "template": ...}`` (JSON-able)."""
        lex, t = self._argmax()
        role_names = SKELETONS[self.skeleton][4]
        words = self._bound["in_words"] if self._bound else [f"row{i}" for i in range(len(lex))]
        out_words = (self._bound["out_words"] if self._bound else []) + [EPSILON]
        entries = {}
        for i, w in enumerate(words):
            role, arg = lex[i]
            name = role_names[role]
            if self.skeleton == "scan":
                if name in ("PRIM", "DIR"):
                    a = out_words[arg] if arg < len(out_words) - 1 else (EPSILON if arg == len(out_words) - 1
                                                                          else f"invalid{arg}")
                elif name in ("AMUL", "LOOP"):
                    a = f"x{arg + 1}"
                else:
                    a = ("keep", "swap")[arg] if arg < 2 else f"invalid{arg}"
            else:
                a = (str(arg) if arg < 2 else f"invalid{arg}") if name == "LIT" else \
                    ("XOR", "AND", "OR", "XNOR")[arg] if name == "OP" else ""
            entries[w] = f"{name}({a})" if a else name
        out: dict[str, Any] = {"words": entries}
        if self.skeleton == "scan":
            out["template"] = TEMPLATES[t]
        return out

    def load_lexicon(self, lexicon: dict[str, Any]) -> None:
        """Set the logits so the argmax is a given lexicon (the format of :meth:`learned_lexicon`); needs ``bind``."""
        assert self._bound is not None, "bind(task) first"
        role_names = SKELETONS[self.skeleton][4]
        syms = self._bound["out_words"] + [EPSILON]
        ops = ("XOR", "AND", "OR", "XNOR")
        with torch.no_grad():
            for p in self.parameters():
                p.zero_()
            for w, entry in lexicon["words"].items():
                name, _, arg = entry.rstrip(")").partition("(")
                row = self._bound["in_words"].index(w)
                if name in ("PRIM", "DIR"):
                    a = syms.index(arg)
                elif name in ("AMUL", "LOOP"):
                    a = int(arg[1:]) - 1
                elif name == "CONJ":
                    a = ("keep", "swap").index(arg)
                elif name == "LIT":
                    a = int(arg)
                elif name == "OP":
                    a = ops.index(arg)
                else:
                    a = 0
                self.role_logits[row, role_names.index(name)] = 10.0
                self.arg_logits[row, a] = 10.0
            if self.template_logits is not None:
                self.template_logits[list(TEMPLATES).index(lexicon["template"])] = 10.0

    def skeleton_size(self) -> dict[str, int]:
        return sk.skeleton_size(self.skeleton)

    def n_learned_bits(self) -> float:
        rows, roles, args, templates, _ = SKELETONS[self.skeleton]
        return round(rows * math.log2(roles * args) + (math.log2(templates) if templates else 0.0), 1)

    def hand_written_prior(self) -> dict[str, float]:
        """:class:`arena.api.HandWrittenPrior`: the skeleton in use (chosen for the task by ``fit``)."""
        size = self.skeleton_size()
        return {"gzip_bytes": size["gzip_bytes"], "lines": size["lines"], "learned_bits": self.n_learned_bits()}


def _softmax(logits: torch.Tensor) -> np.ndarray:
    x = logits.detach().double().numpy()
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _draw(cdf: np.ndarray, u: float) -> int:
    return min(int(np.searchsorted(cdf, u * cdf[-1], side="right")), len(cdf) - 1)


def _entropy(logits: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits, -1)
    return -(logp.exp() * logp).sum(-1)


def _params(shape: ModelShape, cfg: StateMachineConfig) -> int:
    return skeleton_params("parity" if cfg.skeleton == "parity" else "scan")


def build(shape: ModelShape, cfg: StateMachineConfig) -> StateMachine:
    return StateMachine(shape, cfg)


SPEC = arch_spec(
    "state-machine", kind="model", config=StateMachineConfig, params=_params,
    flops=lambda shape, cfg, seq_len: None, state_size=lambda shape, cfg, seq_len: 0,
    family="symbolic", version=1, task_specific=True, supported_tasks=SUPPORTED_TASKS, trainer="custom",
    description="LexSM-164: learned lexicon (164 params) + fixed SCAN interpreter skeleton; task-specific "
                "(scan, scan-depth, nested-parity flat; scan-shift as a control it cannot express)",
    reference="SPECS.md §5 (project design); estimator: Titsias & Lazaro-Gredilla 2015",
    presets={"tiny": SizePreset(1, 1), "small": SizePreset(1, 1), "base": SizePreset(1, 1)})(build)
