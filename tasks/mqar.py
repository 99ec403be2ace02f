"""MQAR: multi-query associative recall (Arora et al. 2023, "Zoology", arXiv:2312.04927).

Official generator: HazyResearch/zoology ``zoology/data/multiquery_ar.py`` (SPECS.md §3 describes it; the layout
below was checked against the code at HEAD d88d6f5). One example of length L with D key-value pairs: D distinct
keys from [1, V/2) and D distinct values from [V/2, V); the context ``k1 v1 ... kD vD`` (repeated ``num_passes``
times); then a query region where key k_i is shown again at offset 2·g_i, with D distinct slots g drawn without
replacement with probability proportional to a·(g+1)^(a-1) (a = ``power_a`` = 0.01, a steep preference for short
gaps). The label at the re-shown k_i is v_i. Remaining slots are zero, or uniform random tokens in [0, V) when
``random_non_queries`` (applied to the inputs only, after the queries are placed).

Layouts (``layout``):
* ``zoology`` (default, exactly Zoology's): the slot after a query key holds filler (zero, or a random token); the
  value is only the *label* at the key's position (``Example.targets``), never an input.
* ``answer_next`` (arena's layout before version 2): the slot after a query key holds the value itself and the
  label is the next token. No later query repeats k_i, so this reveals nothing that is asked again.

Defaults are the CPU-sized official example (``experiments/basic_examples/basic.py``): V=256, L=64, D=4,
10,000 train / 1,000 test. ``mqar-fig2`` is the paper's Figure 2 setting (``iclr24_zoology_figure2/configs.py``):
V=8,192, ``random_non_queries=False``, 100,000 train / 3,000 test, (L, D) = (64, 4) by default, (128, 8) and
(256, 16) through ``--set task.seq_len=... task.num_kv_pairs=...`` (and its ``ood`` split tests those two).

Encoding: Zoology's token 0 (the filler) becomes the token ``<fill>`` (id V) because id 0 is the arena's pad;
ids 1..V-1 are unchanged, so the vocabulary has V+1 entries. The sequence has L+1 tokens and the model reads
the first L, exactly Zoology's ``input_seq_len`` (the last one is Zoology's dropped extra slot, always filler).

Scoring: "teacher_forced" at the D query positions. The primary metric ``accuracy`` is Zoology's: the mean over
examples of the per-example accuracy over labelled positions (equal to the pooled ``token_acc`` when D is fixed;
read it per ``num_kv_pairs`` / ``seq_len`` slice in the ``ood`` split, where D varies).
Chance: 2/V (a value guessed without the context).

Splits:
* ``iid`` (default): train/val/test at (``seq_len``, ``num_kv_pairs``); the three sets use different seeds, as
  Zoology's train and test sets do (no explicit de-duplication, also as Zoology).
* ``ood``: the same train/val plus ``test_iid`` and ``test_ood`` over every (L, D) in ``test_configs``.
``train.online=true`` draws fresh training examples every step (``draw_online``); the trainer rejects any equal
to a held-out sequence.
"""

from __future__ import annotations

import random
from functools import cached_property
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from arena.api import Example, Task, TaskConfig, Vocab


def _check_shape(vocab_size: int, seq_len: int, num_kv_pairs: int, num_passes: int) -> None:
    if seq_len % 2:
        raise ValueError(f"seq_len must be even, got {seq_len}")
    if vocab_size <= seq_len:
        raise ValueError(f"vocab_size ({vocab_size}) must exceed seq_len ({seq_len})")
    if 2 * num_kv_pairs * num_passes + 2 * num_kv_pairs > seq_len:
        raise ValueError(f"need 2·D·num_passes + 2·D <= L; got D={num_kv_pairs}, L={seq_len}")
    if num_kv_pairs >= vocab_size // 2 - 1:
        raise ValueError("num_kv_pairs must be smaller than the number of keys (V/2 - 1)")


class MQARConfig(TaskConfig):
    vocab_size: int = Field(256, ge=8, le=65_536, description="V, Zoology's vocab (ours has V+1). Default: 256")
    seq_len: int = Field(64, ge=4, le=65_536, description="L = Zoology's input_seq_len (even). Default: 64")
    num_kv_pairs: int = Field(4, ge=1, description="D, key-value pairs per example. Default: 4")
    power_a: float = Field(0.01, gt=0, le=1, description="power-law exponent of the query gaps. Default: 0.01")
    num_passes: int = Field(1, ge=1, le=8, description="times the context is repeated. Default: 1")
    random_non_queries: bool = Field(True, description="fill non-query slots with random tokens. Default: True")
    layout: Literal["zoology", "answer_next"] = Field(
        "zoology", description="zoology: filler after a query key, the value is only its label; answer_next: the "
                               "value follows the key as the next token (arena's layout before version 2). "
                               "Default: zoology")
    n_train: int = Field(10_000, ge=1, le=1_000_000, description="training examples. Default: 10000")
    n_val: int = Field(500, ge=1, le=100_000, description="validation examples. Default: 500")
    n_test: int = Field(1000, ge=1, le=100_000, description="test examples (per (L, D) in test_ood). Default: 1000")
    test_configs: tuple[tuple[int, int], ...] = Field(
        ((64, 8), (64, 16), (128, 8), (128, 16), (128, 32)),
        description="split 'ood': (L, D) pairs of test_ood. Default: ((64,8),(64,16),(128,8),(128,16),(128,32))")

    @model_validator(mode="after")
    def _check(self) -> MQARConfig:
        _check_shape(self.vocab_size, self.seq_len, self.num_kv_pairs, self.num_passes)
        for seq_len, num_kv_pairs in self.test_configs:
            _check_shape(self.vocab_size, seq_len, num_kv_pairs, self.num_passes)
        return self


def generate(vocab_size: int, seq_len: int, num_kv_pairs: int, power_a: float, num_passes: int,
             random_non_queries: bool, rng: np.random.Generator,
             layout: str = "zoology") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One example in Zoology ids (0 = filler): the L+1 tokens, the query positions (in input coordinates, sorted)
    and the value asked at each of them."""
    keys = rng.choice(np.arange(1, vocab_size // 2), num_kv_pairs, replace=False)
    values = rng.choice(np.arange(vocab_size // 2, vocab_size), num_kv_pairs, replace=False)
    context = np.tile(np.stack([keys, values], 1).reshape(-1), num_passes)  # (2·D·passes,)
    queries = np.zeros(seq_len - len(context) + 1, dtype=np.int64)
    space = (seq_len - len(context)) // 2
    p = power_a * np.arange(1, space + 1, dtype=np.float64) ** (power_a - 1)
    gaps = rng.choice(space, num_kv_pairs, replace=False, p=p / p.sum())
    queries[2 * gaps] = keys
    if layout == "answer_next":
        queries[2 * gaps + 1] = values
    seq = np.concatenate([context, queries])
    if random_non_queries:  # Zoology fills the inputs (the first L tokens) only
        fill = seq[:seq_len] == 0
        seq[:seq_len][fill] = rng.integers(0, vocab_size, int(fill.sum()))
    order = np.argsort(gaps)
    return seq, len(context) + 2 * gaps[order], values[order]


class MQARTask(Task):
    name = "mqar"
    version = 2  # 2: Zoology's layout by default (filler after a query key; the value is a label only)
    family = "recall"
    description = "Zoology multi-query associative recall (CPU example config V=256, L=64, D=4)"
    config_cls = MQARConfig
    scoring = "teacher_forced"
    metric = "accuracy"
    default_split = "iid"
    split_names = ("iid", "ood")
    slice_keys = ()

    @cached_property
    def vocab(self) -> Vocab:
        cfg: MQARConfig = self.cfg  # type: ignore[assignment]
        v = cfg.vocab_size
        keys = tuple(f"k{i}" for i in range(1, v // 2))
        values = tuple(f"v{i}" for i in range(v // 2, v))
        return Vocab(("<pad>", *keys, *values, "<fill>"))

    @property
    def chance(self) -> float:
        cfg: MQARConfig = self.cfg  # type: ignore[assignment]
        return 2.0 / cfg.vocab_size

    def _draw(self, seq_len: int, num_kv_pairs: int, n: int, part: str) -> list[Example]:
        # the seed string is hashed into the generator's entropy, so every set has its own stream
        entropy = list(f"{self.name}:{self.seed}:{self.split}:{part}:{seq_len}:{num_kv_pairs}".encode())
        return self._examples(seq_len, num_kv_pairs, n, np.random.default_rng(entropy))

    def _examples(self, seq_len: int, num_kv_pairs: int, n: int, rng: np.random.Generator) -> list[Example]:
        cfg: MQARConfig = self.cfg  # type: ignore[assignment]
        out = []
        for _ in range(n):
            seq, queries, values = generate(cfg.vocab_size, seq_len, num_kv_pairs, cfg.power_a, cfg.num_passes,
                                            cfg.random_non_queries, rng, cfg.layout)
            seq[seq == 0] = cfg.vocab_size
            mask = np.zeros(len(seq) - 1, dtype=bool)
            mask[queries] = True
            targets = None
            if cfg.layout == "zoology":
                labels = seq[1:].copy()
                labels[queries] = values
                targets = tuple(labels.tolist())
            out.append(Example(tokens=tuple(seq.tolist()), mask=tuple(mask.tolist()), targets=targets,
                               slices={"num_kv_pairs": num_kv_pairs, "seq_len": seq_len}))
        return out

    def draw_online(self, rng: random.Random, n: int) -> list[Example]:
        """n fresh training examples at the training shape (``train.online``)."""
        cfg: MQARConfig = self.cfg  # type: ignore[assignment]
        return self._examples(cfg.seq_len, cfg.num_kv_pairs, n, np.random.default_rng(rng.getrandbits(64)))

    def build_splits(self) -> dict[str, list[Example]]:
        cfg: MQARConfig = self.cfg  # type: ignore[assignment]
        L, D = cfg.seq_len, cfg.num_kv_pairs
        out = {"train": self._draw(L, D, cfg.n_train, "train"), "val": self._draw(L, D, cfg.n_val, "val")}
        if self.split == "iid":
            out["test"] = self._draw(L, D, cfg.n_test, "test")
        else:
            out["test_iid"] = self._draw(L, D, cfg.n_test, "test")
            out["test_ood"] = [ex for seq_len, kv in cfg.test_configs for ex in self._draw(seq_len, kv, cfg.n_test, "ood")]
        return out


class MQARFig2Config(MQARConfig):
    vocab_size: int = Field(8192, ge=8, le=65_536, description="V, Zoology's vocab (ours has V+1). Default: 8192")
    random_non_queries: bool = Field(False, description="fill non-query slots with random tokens. Default: False")
    n_train: int = Field(100_000, ge=1, le=1_000_000, description="training examples. Default: 100000")
    n_test: int = Field(3000, ge=1, le=100_000, description="test examples (per (L, D) in test_ood). Default: 3000")
    test_configs: tuple[tuple[int, int], ...] = Field(
        ((128, 8), (256, 16)), description="split 'ood': (L, D) pairs of test_ood. Default: ((128,8),(256,16))")


class MQARFig2Task(MQARTask):
    """Zoology's Figure 2 data setting (the models there: 2 layers, d_model 64-512, lr in logspace(-4, -2, 4))."""

    name = "mqar-fig2"
    description = "Zoology Figure 2 MQAR: V=8192, no random fill, 100k train / 3k test; (L, D) = (64, 4) default"
    config_cls = MQARFig2Config
