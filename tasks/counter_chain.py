"""CC(d): the counter chain, the primary succinctness family (SPECS.md §2, family F1; project-defined).

A scaled-down version of the "super-counter" from the separation argument: a counter of m = 2^d bits is written
out T times, incremented by one between blocks, with its bits listed in a fresh random order in every block.

Sequence: ``<bos>`` then T blocks. Block t is ``#`` followed, for each address j of a random permutation of
0..m-1, by the d address tokens of j (``A0``/``A1``, most significant first) and the value token ``B{bit j of
c_t}``. c_0 is uniform in [0, 2^m) and c_{t+1} = c_t + 1 mod 2^m. Length: 1 + T·(1 + 2^d·(d+1)); with T=4 that
is 53 (d=2), 133 (d=3), 325 (d=4), 773 (d=5).

Scoring ("teacher_forced"): the value token of every bit in blocks t >= 1 is predicted from its last address
token; block 0 (which reveals c_0) and all address tokens carry no loss. ``token_acc`` is the per-bit accuracy
(primary metric; SPECS uses tau = 0.99 for the succinctness protocol) and ``exact_match`` is whole-sequence
exact match. Chance is 0.5 per bit, but copying each bit from the previous block already scores 1 - 2/2^d per
bit (0.75 at d=3, 0.94 at d=5) and 0 exact match. Theory: a fixed-state reader needs >= 2^d bits of state (c_t must be known
in full before block t+1 arrives in random order); a transformer can do it with address matching in width O(d).

Splits:
* ``iid`` (default): train/val/test all at depth ``depth`` (the per-d protocol of the succinctness sweep).
* ``depth``: train/val/test_iid on ``train_depths``, test_ood on ``test_depths`` (address-length extrapolation).
* ``upto``: train on depths 1..``depth`` mixed, val/test at exactly ``depth`` (the cumulative protocol).
Held-out examples that share a depth with training are drawn from a hash-defined eighth of the sequence space
that training never uses, so train and held-out sets are disjoint even at d=1 where only 64 sequences exist.
Slices: ``depth`` and ``length``. ``shuffle=False`` lists the bits in a fixed order (ablation in SPECS).
"""

from __future__ import annotations

import random

from pydantic import Field, model_validator

from arena.api import Example, TaskConfig, Vocab
from arena.tasks._depth_splits import DepthSplitTask, address_bits, check_depth_ranges, held_out_bucket  # noqa: F401 (re-exported for tests)

MAX_DEPTH = 7


class CounterChainConfig(TaskConfig):
    depth: int = Field(3, ge=1, le=MAX_DEPTH, description="d: address bits; the counter has 2^d bits (splits 'iid' and "
                       "'upto'). Default: 3")
    blocks: int = Field(4, ge=2, le=64, description="T: number of blocks (copies of the counter). Default: 4")
    shuffle: bool = Field(True, description="fresh random bit order in every block (False: fixed order). Default: True")
    train_depths: tuple[int, int] = Field((1, 3), description="split 'depth': inclusive train depths. Default: (1, 3)")
    test_depths: tuple[int, int] = Field((4, 5), description="split 'depth': inclusive test_ood depths. Default: (4, 5)")
    n_train: int = Field(4000, ge=1, le=1_000_000, description="training examples. Default: 4000")
    n_val: int = Field(200, ge=1, le=100_000, description="validation examples. Default: 200")
    n_test: int = Field(500, ge=1, le=100_000, description="test examples (per depth in split 'depth'). Default: 500")

    @model_validator(mode="after")
    def _check(self) -> CounterChainConfig:
        check_depth_ranges(self, MAX_DEPTH)
        return self


def generate(depth: int, blocks: int, shuffle: bool, rng: random.Random) -> tuple[list[str], list[int]]:
    """Words of one CC(d) sequence and the positions whose *next* token is a scored value bit."""
    m = 1 << depth
    counter = rng.getrandbits(m)
    words, scored = ["<bos>"], []
    for t in range(blocks):
        words.append("#")
        order = list(range(m))
        if shuffle:
            rng.shuffle(order)
        for j in order:
            words += address_bits(j, depth)
            if t >= 1:
                scored.append(len(words) - 1)
            words.append(f"B{(counter >> j) & 1}")
        counter = (counter + 1) % (1 << m)
    return words, scored


def seq_length(depth: int, blocks: int) -> int:
    return 1 + blocks * (1 + (1 << depth) * (depth + 1))


class CounterChainTask(DepthSplitTask):
    name = "counter-chain"
    version = 1
    family = "compositional-depth"
    description = "CC(d): a 2^d-bit counter incremented between blocks, bits in random order; per-bit accuracy"
    config_cls = CounterChainConfig
    scoring = "teacher_forced"
    metric = "token_acc"
    default_split = "iid"
    split_names = ("iid", "depth", "upto")
    slice_keys = ("depth", "length")

    _VOCAB = Vocab(("<pad>", "<bos>", "#", "A0", "A1", "B0", "B1"))

    @property
    def vocab(self) -> Vocab:
        return self._VOCAB

    @property
    def chance(self) -> float:
        return 0.5

    @classmethod
    def state_bits_bound(cls, depth: int, cfg: dict) -> float:
        """Bits a fixed-state reader must carry: the whole 2^d-bit counter."""
        return float(1 << depth)

    def sample(self, depth: int, rng: random.Random) -> Example:
        cfg: CounterChainConfig = self.cfg  # type: ignore[assignment]
        words, scored = generate(depth, cfg.blocks, cfg.shuffle, rng)
        tokens = self.vocab.ids(words)
        marks = set(scored)
        mask = tuple(i in marks for i in range(len(tokens) - 1))
        return Example(tokens=tokens, mask=mask, slices={"depth": depth, "length": len(tokens)})

