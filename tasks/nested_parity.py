"""NP(d): nested parity, in the separation variant and its reverse control (SPECS.md §2, family F2; project-defined).

Tree grammar shared by both variants: E_0 = [``~``] leaf, E_k = [``~``] ``(`` E_{k-1} ``^`` E_{k-1} ``)``, a
complete binary tree of depth d where every node carries an independent negation with probability 1/2. The
value is the XOR of the leaves, flipped once per negation; depth only sets the number of leaves (2^d).

* ``variant="mem"`` (NP-mem, the separation task): first a memory of V = 2^d one-bit variables, each named by
  d address bits, as records ``A.. = B. ;`` in random order; then ``Q`` and the tree, whose leaves are ``$``
  followed by a d-bit name drawn uniformly with replacement. A left-to-right reader must hold all 2^d memory
  bits; a transformer can look each leaf up by address. Length ~ 2^d·(2d+8): 113 at d=3, ~257 at d=4.
* ``variant="flat"`` (NP-flat, the reverse control): the leaves are the literal bits ``B0``/``B1``. A 2-state
  automaton solves it at every depth. Length ~ 5·2^d.

Both end with ``?`` followed by the label ``Y0``/``Y1``: a classification scored teacher-forced at the single
position of ``?`` (``exact_match`` == accuracy; SPECS uses tau = 0.95). Chance 0.5 (labels are balanced).

``leaf_values=True`` (NP-mem only, off by default, *not* the SPECS task): every leaf is followed by its looked-up
value ``B.``, which is scored too. The single label bit is a parity of 2^d look-ups, a notoriously weak gradient
signal: an LSTM that learns NP-flat and d=1 stays at chance on NP-mem d=2. The leaf targets give dense
supervision while keeping the memory bound (predicting the leaves still needs all 2^d stored bits).

Splits:
* ``depth`` (default): train/val/test_iid on ``train_depths`` (default 1-3), test_ood on ``test_depths``
  (default 4-5; raise it to 8 for NP-flat on a bigger machine), every example sliced by ``depth``.
* ``iid``: train/val/test at the single depth ``depth`` (the per-d protocol of the succinctness sweep).
* ``upto``: train on depths 1..``depth`` mixed, val/test at exactly ``depth`` (the cumulative protocol).
Held-out examples that share a depth with training come from a hash-defined eighth of the sequence space that
training never uses, so they are disjoint from training by construction.
"""

from __future__ import annotations

import random
from typing import Literal

from pydantic import Field, model_validator

from arena.api import Example, TaskConfig, Vocab
from arena.tasks._depth_splits import DepthSplitTask, address_bits, check_depth_ranges, held_out_bucket  # noqa: F401 (re-exported for tests)

MAX_DEPTH = 10


class NestedParityConfig(TaskConfig):
    variant: Literal["mem", "flat"] = Field("mem", description="mem (NP-mem) or flat (NP-flat). Default: mem")
    leaf_values: bool = Field(False, description="mem only: write each leaf's looked-up value after its name and "
                              "score it (dense supervision; not the SPECS task). Default: False")
    depth: int = Field(3, ge=1, le=MAX_DEPTH, description="tree depth d of splits 'iid' and 'upto'. Default: 3")
    train_depths: tuple[int, int] = Field((1, 3), description="split 'depth': inclusive train depths. Default: (1, 3)")
    test_depths: tuple[int, int] = Field((4, 5), description="split 'depth': inclusive test_ood depths. Default: (4, 5)")
    n_train: int = Field(6000, ge=1, le=1_000_000, description="training examples. Default: 6000")
    n_val: int = Field(300, ge=1, le=100_000, description="validation examples. Default: 300")
    n_test: int = Field(300, ge=1, le=100_000, description="test examples (per depth in split 'depth'). Default: 300")

    @model_validator(mode="after")
    def _check(self) -> NestedParityConfig:
        check_depth_ranges(self, MAX_DEPTH)
        return self


def generate(variant: str, depth: int, rng: random.Random, leaf_values: bool = False) -> tuple[list[str], int]:
    """Words up to and including ``?``, and the label bit."""
    memory: list[str] = []
    if variant == "mem":
        values = [rng.getrandbits(1) for _ in range(1 << depth)]
        order = list(range(1 << depth))
        rng.shuffle(order)
        for j in order:
            memory += [*address_bits(j, depth), "=", f"B{values[j]}", ";"]

    def leaf() -> tuple[list[str], int]:
        if variant == "mem":
            j = rng.randrange(1 << depth)
            shown = [f"B{values[j]}"] if leaf_values else []
            return ["$", *address_bits(j, depth), *shown], values[j]
        bit = rng.getrandbits(1)
        return [f"B{bit}"], bit

    def tree(k: int) -> tuple[list[str], int]:
        negate = rng.random() < 0.5
        if k == 0:
            words, value = leaf()
        else:
            left, lv = tree(k - 1)
            right, rv = tree(k - 1)
            words, value = ["(", *left, "^", *right, ")"], lv ^ rv
        return (["~", *words], value ^ 1) if negate else (words, value)

    words, label = tree(depth)
    head = ["<bos>", *memory, "Q"] if variant == "mem" else ["<bos>"]
    return [*head, *words, "?"], label


class NestedParityTask(DepthSplitTask):
    name = "nested-parity"
    version = 1
    family = "compositional-depth"
    description = "NP(d): XOR tree of depth d over memory look-ups (mem) or literal bits (flat); label at '?'"
    config_cls = NestedParityConfig
    scoring = "teacher_forced"
    metric = "exact_match"
    default_split = "depth"
    split_names = ("depth", "iid", "upto")
    slice_keys = ("depth", "length")
    tie_embeddings = False  # the label tokens Y0/Y1 are never input: a tied head collapses the input embeddings

    _VOCAB = Vocab(("<pad>", "<bos>", "A0", "A1", "B0", "B1", "=", ";", "Q", "$", "(", ")", "^", "~", "?",
                    "Y0", "Y1"))

    @property
    def vocab(self) -> Vocab:
        return self._VOCAB

    @property
    def chance(self) -> float:
        return 0.5

    @classmethod
    def state_bits_bound(cls, depth: int, cfg: dict) -> float:
        """NP-mem: the 2^d memory bits; NP-flat: 1 bit (a 2-state automaton solves it)."""
        return float(1 << depth) if cfg.get("variant", "mem") == "mem" else 1.0

    def sample(self, depth: int, rng: random.Random) -> Example:
        cfg: NestedParityConfig = self.cfg  # type: ignore[assignment]
        leaf_values = cfg.leaf_values and cfg.variant == "mem"
        words, label = generate(cfg.variant, depth, rng, leaf_values)
        tokens = self.vocab.ids([*words, f"Y{label}"])
        n = len(tokens) - 1
        # the label is read at '?'; with leaf_values also each leaf's value, from the leaf's last name token
        marks = {n - 1} | ({i + depth for i, w in enumerate(words) if w == "$"} if leaf_values else set())
        mask = tuple(i in marks for i in range(n))
        return Example(tokens=tokens, mask=mask, prompt_len=None if leaf_values else n,
                       slices={"depth": depth, "length": len(tokens), "label": label})

    def rng_prefix(self) -> str:
        return f"nested-parity:{self.cfg.variant}"
