"""Split construction shared by the depth-knob families sampled one depth at a time (counter-chain, nested-parity).

Held-out sets that share a depth with training come from a fixed eighth of the sequence space (a stable hash of
the token ids), so they never overlap training even where the space is small; depth-extrapolation sets draw
from depths training never sees.

Splits: ``iid`` (every set at ``depth``), ``upto`` (train on depths 1..``depth`` mixed, val and test at exactly
``depth``: the cumulative protocol, where the shallow trees are the curriculum a parity learner needs to leave
the constant answer) and ``depth`` (train_depths -> test_iid + test_ood).
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from arena.api import Example, Task

HELD_OUT_BUCKETS = 8


def held_out_bucket(tokens: tuple[int, ...]) -> bool:
    """True for the fixed eighth of sequences reserved for held-out sets (a stable hash, not Python's hash)."""
    raw = bytes(tokens) if max(tokens) < 256 else b"".join(t.to_bytes(4, "little") for t in tokens)
    digest = hashlib.blake2b(raw, digest_size=8).digest()
    return int.from_bytes(digest, "little") % HELD_OUT_BUCKETS == 0


def address_bits(j: int, depth: int) -> list[str]:
    """The d address tokens naming item j, most significant first."""
    return [f"A{(j >> (depth - 1 - b)) & 1}" for b in range(depth)]


def check_depth_ranges(cfg, max_depth: int) -> None:
    """Config check shared by the families: train_depths and test_depths are 1 <= lo <= hi <= max_depth."""
    for name in ("train_depths", "test_depths"):
        lo, hi = getattr(cfg, name)
        if not 1 <= lo <= hi <= max_depth:
            raise ValueError(f"{name} must satisfy 1 <= lo <= hi <= {max_depth}, got ({lo}, {hi})")


class DepthSplitTask(Task):
    """A task with ``sample(depth, rng)`` and config fields depth, n_train, n_val, n_test, train_depths,
    test_depths; splits ``iid`` (one depth), ``upto`` (train 1..depth, held out at depth) and ``depth``
    (train_depths -> test_iid + test_ood)."""

    def sample(self, depth: int, rng: random.Random) -> Example:
        raise NotImplementedError

    def rng_prefix(self) -> str:
        return self.name

    @classmethod
    def depth_config(cls, depth: int) -> tuple[dict[str, Any], str]:
        """Split ``iid`` holds every set at the config's ``depth``."""
        return {"depth": depth}, "iid"

    @classmethod
    def cumulative_config(cls, depth: int) -> tuple[dict[str, Any], str]:
        """Split ``upto`` trains on depths 1..``depth`` and holds val and test at exactly ``depth``."""
        return {"depth": depth}, "upto"

    def train_depth_range(self) -> range:
        """The depths training draws from under the current split."""
        cfg = self.cfg
        if self.split == "iid":
            return range(cfg.depth, cfg.depth + 1)
        if self.split == "upto":
            return range(1, cfg.depth + 1)
        return range(cfg.train_depths[0], cfg.train_depths[1] + 1)

    def _draw(self, depth: int, n: int, rng: random.Random, where: str) -> list[Example]:
        """n examples at one depth; ``where`` is "train" / "held" (the two hash buckets) or "any"."""
        out: list[Example] = []
        tries = 0
        while len(out) < n and tries < 100 * n + 1000:
            tries += 1
            ex = self.sample(depth, rng)
            if where == "any" or held_out_bucket(ex.tokens) == (where == "held"):
                out.append(ex)
        return out

    def draw_online(self, rng: random.Random, n: int) -> list[Example]:
        """n fresh training examples (``train.online``): the training depths, and the training eighth of the
        sequence space, so they are disjoint from every held-out set by construction."""
        if self.split == "iid":
            return self._draw(self.cfg.depth, n, rng, "train")
        depths = self.train_depth_range()
        return [ex for _ in range(n) for ex in self._draw(rng.choice(depths), 1, rng, "train")]

    def build_splits(self) -> dict[str, list[Example]]:
        cfg = self.cfg

        def rng(part: str) -> random.Random:
            return random.Random(f"{self.rng_prefix()}:{self.seed}:{self.split}:{part}")

        if self.split == "iid":
            d = cfg.depth
            return {"train": self._draw(d, cfg.n_train, rng("train"), "train"),
                    "val": self._draw(d, cfg.n_val, rng("val"), "held"),
                    "test": self._draw(d, cfg.n_test, rng("test"), "held")}
        if self.split == "upto":
            d, r_train = cfg.depth, rng("train")
            per_train = max(1, cfg.n_train // d)
            train = [ex for k in range(1, d + 1) for ex in self._draw(k, per_train, r_train, "train")]
            r_train.shuffle(train)
            return {"train": train,
                    "val": self._draw(d, cfg.n_val, rng("val"), "held"),
                    "test": self._draw(d, cfg.n_test, rng("test"), "held")}
        train_ds = range(cfg.train_depths[0], cfg.train_depths[1] + 1)
        test_ds = [d for d in range(cfg.test_depths[0], cfg.test_depths[1] + 1) if d not in train_ds]
        r_train, r_val, r_iid, r_ood = rng("train"), rng("val"), rng("test_iid"), rng("test_ood")
        per_train = max(1, cfg.n_train // len(train_ds))
        per_val = max(1, cfg.n_val // len(train_ds))
        train = [ex for d in train_ds for ex in self._draw(d, per_train, r_train, "train")]
        r_train.shuffle(train)
        return {"train": train,
                "val": [ex for d in train_ds for ex in self._draw(d, per_val, r_val, "held")],
                "test_iid": [ex for d in train_ds for ex in self._draw(d, cfg.n_test, r_iid, "held")],
                "test_ood": [ex for d in test_ds for ex in self._draw(d, cfg.n_test, r_ood, "any")]}
