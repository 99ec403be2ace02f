"""Any registered architecture as an EleutherAI lm-evaluation-harness model (``lm_eval.api.model.LM``).

lm-eval talks in strings; arena models in token ids. The task's tokenizer is the bridge (the ``lm`` task's
:class:`arena.tasks.lm.data.CharTokenizer`: the character vocabulary of the training corpus (``<pad>`` = 0, ``<bos>``, ``<unk>``, then the corpus characters), with every
character the corpus never contained mapped to ``<unk>``. Character-level tokenization is what makes the
harness's requests exact: ``encode(context + continuation) == encode(context) + encode(continuation)``, so a
leading-space continuation (``" word"``) needs no special casing and an empty context is just the BOS token.

Windows. The ``lm`` task trains on ``<bos>`` followed by a window of ``W`` (= ``block_size``) characters, so
every input given to the model here has the same form: ``<bos>`` then at most ``W - 1`` preceding characters.
A scored span longer than ``W`` is cut into chunks of ``stride`` (default ``W``) predictions, each conditioned
on as much preceding text as fits — for ``loglikelihood_rolling`` with the default stride this is lm-eval's
"disjoint windows, the last one with full context" scheme.

Batching: the pieces of all requests are sorted by length (longest first), padded on the right with the pad id
and run through the model together. The models are causal, so right padding cannot change the scored
positions; a test checks that batch 1 and batch 8 give the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from arena.errors import ArenaError

try:
    from lm_eval.api.model import LM as _LMBase
except ImportError:  # pragma: no cover - lm-eval is an optional extra
    _LMBase = object  # type: ignore[assignment,misc]

@dataclass(frozen=True)
class _Piece:
    """One model input: ``inp`` (starts with BOS), its targets ``tgt`` (same length), the last ``n`` scored."""

    inp: tuple[int, ...]
    tgt: tuple[int, ...]
    n: int


def windows(seq: Sequence[int], n_pred: int, bos: int, max_len: int, stride: int | None = None) -> list[_Piece]:
    """Pieces that score ``seq[-n_pred:]`` exactly once, each input ``[bos] + up to max_len - 1 tokens``."""
    stride = max_len if stride is None else stride
    if not 1 <= stride <= max_len:
        raise ValueError(f"stride must be in [1, {max_len}], got {stride}")
    end, a = len(seq), len(seq) - n_pred
    out = []
    while a < end:
        b = min(a + stride, end)
        start = max(0, b - max_len)
        out.append(_Piece((bos, *seq[start : b - 1]), tuple(seq[start:b]), b - a))
        a = b
    return out


class ArenaLM(_LMBase):  # type: ignore[misc,valid-type]
    """lm-eval model over an arena module (token ids (B, T) -> logits (B, T, V)) and a tokenizer (``encode``,
    ``decode``, ``bos_id``, ``pad_id``, ``size``; the ``lm`` task's ``CharTokenizer``).

    Args:
        model: the built module (``arena.blocks.build_model``), trained or not.
        tokenizer: the task's tokenizer (the ``lm`` task: the training corpus' characters).
        max_len: longest input given to the model (BOS included); the ``lm`` task's ``block_size``.
        batch_size: pieces per forward pass.
        device: where the model lives.
        max_gen_toks: default generation budget when a request does not give one.
        rolling_stride: predictions per window in ``loglikelihood_rolling`` (default ``max_len``: disjoint).
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, max_len: int, batch_size: int = 32,
                 device: str = "cpu", max_gen_toks: int = 256, rolling_stride: int | None = None):
        if _LMBase is object:
            raise ArenaError("lm-eval is not installed; pip install 'arena[lm-eval]'")
        super().__init__()
        if max_len < 2:
            raise ValueError("max_len must be at least 2 (BOS plus one character)")
        self.model = model
        self.tok = tokenizer
        self.max_len = int(max_len)
        self.batch_size = int(batch_size)
        self._device = torch.device(device)
        self.max_gen_toks = int(max_gen_toks)
        self.rolling_stride = rolling_stride

    # -- constructors ---------------------------------------------------------------------------------------------
    @classmethod
    def from_run(cls, run_id: int, db: str | None = None, device: str = "cpu", batch_size: int = 32,
                 data_dir: str | None = None) -> ArenaLM:
        """Rebuild the model of a stored run of a :class:`arena.api.HarnessTask` from its config and checkpoint."""
        model, task = load_run_model(run_id, db, device, data_dir)
        return cls(model, task.tokenizer, task.block_size, batch_size=batch_size, device=device)

    @classmethod
    def from_task(cls, model: torch.nn.Module, task: Any, device: str = "cpu", batch_size: int = 32) -> ArenaLM:
        """Wrap an in-memory model trained on a task with a ``tokenizer`` and a ``block_size`` (the ``lm`` task)."""
        return cls(model, task.tokenizer, task.block_size, batch_size=batch_size, device=device)

    # -- lm-eval properties ---------------------------------------------------------------------------------------
    @property
    def tokenizer_name(self) -> str:
        return f"arena-char-{self.tok.size}"

    @property
    def eot_token_id(self) -> int:
        return self.tok.bos_id

    @property
    def max_length(self) -> int:
        return self.max_len

    # -- core -------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _score(self, pieces: list[_Piece]) -> list[tuple[float, bool]]:
        """(sum of log-probs of the scored targets, all of them greedy) per piece, batched by length."""
        self.model.eval()
        order = sorted(range(len(pieces)), key=lambda i: -len(pieces[i].inp))
        out: list[tuple[float, bool]] = [(0.0, True)] * len(pieces)
        for s in range(0, len(order), self.batch_size):
            idx = order[s : s + self.batch_size]
            T = len(pieces[idx[0]].inp)
            x = torch.full((len(idx), T), self.tok.pad_id, dtype=torch.long)
            for j, i in enumerate(idx):
                x[j, : len(pieces[i].inp)] = torch.tensor(pieces[i].inp, dtype=torch.long)
            logp = F.log_softmax(self.model(x.to(self._device)).double(), dim=-1).cpu()  # (B, T, V)
            for j, i in enumerate(idx):
                p = pieces[i]
                L = len(p.inp)
                tgt = torch.tensor(p.tgt[L - p.n :], dtype=torch.long)
                rows = logp[j, L - p.n : L]  # (n, V)
                lp = rows.gather(-1, tgt[:, None]).squeeze(-1)
                out[i] = (float(lp.sum()), bool((rows.argmax(-1) == tgt).all()))
        return out

    def _loglikelihood_tokens(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        pieces: list[_Piece] = []
        owner: list[int] = []
        for k, (ctx, cont) in enumerate(pairs):
            if not cont:
                continue
            for p in windows(ctx + cont, len(cont), self.tok.bos_id, self.max_len):
                pieces.append(p)
                owner.append(k)
        scored = self._score(pieces)
        res = [(0.0, True)] * len(pairs)
        for k, (lp, greedy) in zip(owner, scored, strict=True):
            res[k] = (res[k][0] + lp, res[k][1] and greedy)
        return res

    # -- the LM interface -----------------------------------------------------------------------------------
    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """log P(continuation | context) and whether greedy decoding would produce the continuation."""
        pairs = [(self.tok.encode(r.args[0]), self.tok.encode(r.args[1])) for r in requests]
        out = self._loglikelihood_tokens(pairs)
        for r, o in zip(requests, out, strict=True):
            self.cache_hook.add_partial("loglikelihood", r.args, o)
        return out

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        """log P(text | BOS), every character predicted once (windows of ``max_len``)."""
        pieces: list[_Piece] = []
        owner: list[int] = []
        for k, r in enumerate(requests):
            ids = self.tok.encode(r.args[0])
            for p in windows(ids, len(ids), self.tok.bos_id, self.max_len, self.rolling_stride):
                pieces.append(p)
                owner.append(k)
        totals = [0.0] * len(requests)
        for k, (lp, _) in zip(owner, self._score(pieces), strict=True):
            totals[k] += lp
        for r, t in zip(requests, totals, strict=True):
            self.cache_hook.add_partial("loglikelihood_rolling", r.args, t)
        return totals

    def rolling_logprob(self, text: str, stride: int | None = None) -> tuple[float, int]:
        """(log P(text | BOS), number of characters) — the held-out bits-per-character computation."""
        ids = self.tok.encode(text)
        pieces = windows(ids, len(ids), self.tok.bos_id, self.max_len, stride or self.rolling_stride)
        return sum(lp for lp, _ in self._score(pieces)), len(ids)

    @torch.no_grad()
    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Greedy continuation until a stop string or ``max_gen_toks`` characters (batched, right padded)."""
        self.model.eval()
        jobs = []
        for r in requests:
            ctx, kwargs = r.args[0], dict(r.args[1] if len(r.args) > 1 and r.args[1] else {})
            until = kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            jobs.append((self.tok.encode(ctx), until, int(kwargs.get("max_gen_toks", self.max_gen_toks))))
        results = [""] * len(jobs)
        order = sorted(range(len(jobs)), key=lambda i: -len(jobs[i][0]))
        for s in range(0, len(order), self.batch_size):
            idx = order[s : s + self.batch_size]
            seqs = [list(jobs[i][0]) for i in idx]
            gens: list[list[int]] = [[] for _ in idx]
            done = [jobs[i][2] <= 0 for i in idx]
            while not all(done):
                live = [j for j, d in enumerate(done) if not d]
                inps = [[self.tok.bos_id, *seqs[j][len(seqs[j]) - (self.max_len - 1) :]]
                        if len(seqs[j]) > self.max_len - 1 else [self.tok.bos_id, *seqs[j]] for j in live]
                T = max(len(t) for t in inps)
                x = torch.full((len(live), T), self.tok.pad_id, dtype=torch.long)
                for r_, t in enumerate(inps):
                    x[r_, : len(t)] = torch.tensor(t, dtype=torch.long)
                logits = self.model(x.to(self._device))
                last = torch.tensor([len(t) - 1 for t in inps], device=logits.device)
                nxt = logits[torch.arange(len(live), device=logits.device), last].argmax(-1).tolist()
                for r_, j in enumerate(live):
                    seqs[j].append(nxt[r_])
                    gens[j].append(nxt[r_])
                    text = self.tok.decode(gens[j])
                    _, _, limit = jobs[idx[j]]
                    if any(u and u in text for u in jobs[idx[j]][1]) or len(gens[j]) >= limit:
                        done[j] = True
            for j, i in enumerate(idx):
                text = self.tok.decode(gens[j])
                for u in jobs[i][1]:
                    if u:
                        text = text.split(u)[0]
                results[i] = text
        for r, t in zip(requests, results, strict=True):
            self.cache_hook.add_partial("generate_until", r.args, t)
        return results


# -- loading a stored run -------------------------------------------------------------------------------------------
def load_run_model(run_id: int, db: str | None = None, device: str = "cpu",
                   data_dir: str | None = None) -> tuple[torch.nn.Module, Any]:
    """(model with the run's final weights, the rebuilt task) for a stored run of a task that lm-eval can score
    (:class:`arena.api.HarnessTask`)."""
    from arena.api import HarnessTask, ModelShape
    from arena.blocks import build_model
    from arena.registry import get_task
    from arena.runner import prepare
    from arena.spec import RunSpec
    from arena.store import get_run, open_store

    engine = open_store(db, readonly=True)
    run = get_run(engine, run_id)
    if run is None:
        raise ArenaError(f"no run {run_id} in {engine.url.render_as_string(hide_password=True)}")
    if not issubclass(get_task(run.task).cls, HarnessTask):
        raise ArenaError(f"run {run_id} trained on task {run.task!r}, which lm-eval cannot score (it declares no "
                         "arena.api.HarnessTask interface: a language model over a tokenizer, such as task 'lm')")
    from arena.train import load_state, read_checkpoint

    # the checkpoint first: a missing or corrupted one is said before the corpus is loaded
    path = Path(run.checkpoint_path or "")
    if not run.checkpoint_path or not path.is_file():
        raise ArenaError(f"run {run_id} has no readable checkpoint ({run.checkpoint_path!r}); checkpoint paths are "
                         "relative to the directory the run was started from (or $ARENA_CHECKPOINT_DIR)")
    advice = "it cannot be evaluated; retrain the run (arena show RUN_ID prints the command that reproduces it)"
    payload = read_checkpoint(path, advice=advice)
    config = run.config or {}
    spec = RunSpec.model_validate(config["spec"])
    overrides = [("task.data_dir", str(data_dir))] if data_dir else None
    res = prepare(spec, overrides)
    shape = ModelShape(**config["shape"])
    arch_cfg = res.arch.config.model_validate(config.get("arch_config", {}))
    model = build_model(res.arch, shape, arch_cfg)
    load_state(model, payload, path, f"run {run_id}'s recorded architecture")
    if res.task.vocab.size != shape.vocab_size:
        raise ArenaError(f"run {run_id}: the corpus vocabulary now has {res.task.vocab.size} characters but the "
                         f"checkpoint has {shape.vocab_size}; the corpus file changed")
    return model.to(device).eval(), res.task


__all__ = ["ArenaLM", "windows", "load_run_model"]
