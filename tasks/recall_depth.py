"""Recall at depth d: associative recall with D = 2^d key-value pairs, the depth family where the succinctness
bound binds (SPECS.md, "A depth family where the succinctness bound binds"; project-defined on Zoology's MQAR).

One example is Zoology's MQAR (``tasks/mqar.py``, layout ``zoology``) with D = 2^d pairs and input length
L = 4D + 8: the D pairs ``k1 v1 ... kD vD`` (distinct single-token keys from [1, V/2), values from [V/2, V)),
then a query region of 2D + 8 slots where every key is shown again once, in an order drawn with Zoology's power
law over slots (a = 0.01); the value is the label at the re-shown key and the slot after it holds filler, so the
answer is never an input. Non-query slots are filler (``random_non_queries`` False, as in Zoology's Figure 2).
Length: 17 (d=1), 25, 41, 73, 137, 265 (d=6) tokens.

Why it binds: a left-to-right reader has seen all D pairs before the first query and any of them can be asked,
so it must carry about D·log2(V/2) bits (7·2^d with the default V = 256) in its state; attention retrieves a
value with one key match per query (Zoology: attention solves MQAR at every width tested, while gated
convolutions and recurrences need a state that grows with D). Counter-chain and nested parity stay the second
family and the control.

Scoring: teacher-forced at the D query positions; ``accuracy`` (Zoology's per-example mean). Chance 2/V.
Splits as the other depth families (``_depth_splits``): ``iid`` (default; every set at ``depth``), ``upto``
(train on depths 1..``depth``, val and test at ``depth``) and ``depth`` (train_depths -> test_iid + test_ood); held-out examples come from a hash-defined eighth of the sequence space
that training never uses, so they are disjoint from training (and from ``train.online`` draws) by construction.
"""

from __future__ import annotations

import random
from functools import cached_property

import numpy as np
from pydantic import Field, model_validator

from arena.api import Example, TaskConfig, Vocab
from arena.tasks._depth_splits import DepthSplitTask, check_depth_ranges
from arena.tasks.mqar import generate

MAX_DEPTH = 7


def seq_len(depth: int) -> int:
    """Zoology's input_seq_len at depth d: L = 4D + 8 with D = 2^d."""
    return 4 * (1 << depth) + 8


class RecallDepthConfig(TaskConfig):
    depth: int = Field(3, ge=1, le=MAX_DEPTH, description="d: D = 2^d key-value pairs (splits iid and upto). Default: 3")
    vocab_size: int = Field(256, ge=8, le=65_536, description="V: keys [1, V/2), values [V/2, V). Default: 256")
    power_a: float = Field(0.01, gt=0, le=1, description="power-law exponent of the query slots. Default: 0.01")
    train_depths: tuple[int, int] = Field((1, 3), description="split 'depth': inclusive train depths. Default: (1, 3)")
    test_depths: tuple[int, int] = Field((4, 5), description="split 'depth': inclusive test_ood depths. Default: (4, 5)")
    n_train: int = Field(4000, ge=1, le=1_000_000, description="training examples. Default: 4000")
    n_val: int = Field(200, ge=1, le=100_000, description="validation examples. Default: 200")
    n_test: int = Field(500, ge=1, le=100_000, description="test examples (per depth in split 'depth'). Default: 500")

    @model_validator(mode="after")
    def _check(self) -> RecallDepthConfig:
        check_depth_ranges(self, MAX_DEPTH)
        _check_keys(self.depth, self.vocab_size)
        return self


def _check_keys(depth: int, vocab_size: int, field: str | None = None, value: tuple[int, int] | None = None) -> None:
    """Refuse a depth whose 2^d keys do not fit in [1, V/2); ``field``/``value`` name the config range it came from."""
    have = vocab_size // 2 - 1
    if (1 << depth) <= have:
        return
    if field is None:
        raise ValueError(f"depth {depth} needs 2^{depth} = {1 << depth} distinct keys but vocab_size {vocab_size} "
                         f"has {have}; raise vocab_size")
    raise ValueError(f"task.{field} {value} reaches depth {depth}, which needs 2^{depth} = {1 << depth} distinct "
                     f"keys, but vocab_size {vocab_size} has {have}: raise task.vocab_size or lower task.{field}")


class RecallDepthTask(DepthSplitTask):
    name = "recall-depth"
    version = 1
    family = "recall"
    description = "associative recall with D = 2^d pairs (Zoology MQAR layout, L = 4D + 8); value accuracy"
    config_cls = RecallDepthConfig
    scoring = "teacher_forced"
    metric = "accuracy"
    default_split = "iid"
    split_names = ("iid", "depth", "upto")
    slice_keys = ("depth",)

    def __init__(self, cfg: RecallDepthConfig, seed: int = 0, split: str | None = None) -> None:
        super().__init__(cfg, seed, split)
        # the config checks `depth` alone; split 'depth' uses train_depths and test_depths instead: refuse a depth
        # the vocabulary cannot hold here, naming the field, rather than mid-way through building the splits
        if self.split == "depth":
            for name in ("train_depths", "test_depths"):
                lo_hi = tuple(getattr(cfg, name))
                _check_keys(lo_hi[1], cfg.vocab_size, name, lo_hi)

    @cached_property
    def vocab(self) -> Vocab:
        v = self.cfg.vocab_size
        return Vocab(("<pad>", *(f"k{i}" for i in range(1, v // 2)), *(f"v{i}" for i in range(v // 2, v)), "<fill>"))

    @property
    def chance(self) -> float:
        return 2.0 / self.cfg.vocab_size

    @classmethod
    def state_bits_bound(cls, depth: int, cfg: dict) -> float:
        """Bits a left-to-right reader must carry: D values of log2(V/2) bits each (D = 2^d)."""
        import math

        return float((1 << depth) * math.log2(int(cfg.get("vocab_size", 256)) // 2))

    def sample(self, depth: int, rng: random.Random) -> Example:
        cfg: RecallDepthConfig = self.cfg  # type: ignore[assignment]
        _check_keys(depth, cfg.vocab_size)
        n_pairs, length = 1 << depth, seq_len(depth)
        seq, queries, values = generate(cfg.vocab_size, length, n_pairs, cfg.power_a, 1, False,
                                        np.random.default_rng(rng.getrandbits(64)), "zoology")
        seq[seq == 0] = cfg.vocab_size
        labels = seq[1:].copy()
        labels[queries] = values
        mask = np.zeros(len(seq) - 1, dtype=bool)
        mask[queries] = True
        return Example(tokens=tuple(seq.tolist()), mask=tuple(mask.tolist()), targets=tuple(labels.tolist()),
                       slices={"depth": depth, "num_kv_pairs": n_pairs})
