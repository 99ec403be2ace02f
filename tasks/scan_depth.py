"""SD(d): bracketed SCAN conjunction trees with a depth knob (SPECS.md §2, family F3; project-defined).

Leaf: a SCAN S-phrase without ``around`` (72 phrases, at most 9 actions). Tree: E_0 = leaf,
E_k = ``(`` E_{k-1} conj E_{k-1} ``)`` with conj uniform over {and, after}; ``and`` concatenates left then
right, ``after`` right then left. Sequence: ``BOS input SEP actions EOS``; the model must generate the actions
and EOS exactly (greedy). Slices: ``depth`` and ``out_len`` (action count bucketed by 8).

Splits:
* ``depth`` (default): train/val/test_iid on depths ``train_depths``; ``test_ood`` on ``test_depths``
  (depth extrapolation). Depth 0 has only 72 distinct inputs, all kept for training, so held-out iid sets start
  at depth 1.
* ``iid``: train/val/test drawn from the same depth range ``iid_depths``.
Held-out sets never share an input with training.
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import Field, model_validator

from arena.api import Example, Task, TaskConfig, Vocab
from arena.tasks.scan_grammar import ACTIONS, INPUT_WORDS, interpret_s, s_phrases

SPECIALS = ("<pad>", "<bos>", "<sep>", "<eos>", "(", ")")
MAX_DEPTH = 6


class ScanDepthConfig(TaskConfig):
    train_depths: tuple[int, int] = Field((0, 3), description="inclusive depth range for training. Default: (0, 3)")
    test_depths: tuple[int, int] = Field((4, 5), description="inclusive depth range of test_ood. Default: (4, 5)")
    iid_depths: tuple[int, int] = Field((0, 5), description="depth range of the iid split. Default: (0, 5)")
    n_train: int = Field(6000, ge=1, le=1_000_000, description="training examples. Default: 6000")
    n_val: int = Field(200, ge=1, le=100_000, description="validation examples. Default: 200")
    n_test_per_depth: int = Field(100, ge=1, le=100_000, description="test examples per depth. Default: 100")

    @model_validator(mode="after")
    def _check(self) -> ScanDepthConfig:
        for name in ("train_depths", "test_depths", "iid_depths"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi <= MAX_DEPTH:
                raise ValueError(f"{name} must satisfy 0 <= lo <= hi <= {MAX_DEPTH}, got ({lo}, {hi})")
        for name in ("train_depths", "iid_depths"):  # depth 0 alone has only 72 inputs, all used for training
            if getattr(self, name)[1] < 1:
                raise ValueError(f"{name} must reach depth >= 1 (held-out sets are drawn from depths >= 1)")
        return self


def sample_tree(depth: int, rng: random.Random, leaves: list[str]) -> list[str]:
    """Words of a complete depth-``depth`` tree."""
    if depth == 0:
        return rng.choice(leaves).split()
    conj = rng.choice(("and", "after"))
    return ["(", *sample_tree(depth - 1, rng, leaves), conj, *sample_tree(depth - 1, rng, leaves), ")"]


def interpret_tree(words: list[str]) -> list[str]:
    """Independent reading of a bracketed tree: a stack machine over clauses and conjunctions."""
    stack: list[list] = [[]]
    for w in words:
        if w == "(":
            stack.append([])
        elif w == ")":
            frame = stack.pop()
            stack[-1].append(_reduce(frame))
        else:
            stack[-1].append(w)
    return _reduce(stack[0])


def _reduce(frame: list) -> list[str]:
    # a frame is [left, conj, right] of already-reduced subtrees, or the words of one leaf
    for conj in ("and", "after"):
        if conj in frame:
            i = frame.index(conj)
            left, right = _reduce(frame[:i]), _reduce(frame[i + 1 :])
            return left + right if conj == "and" else right + left
    if len(frame) == 1 and isinstance(frame[0], list):
        return frame[0]
    return interpret_s([w for w in frame if isinstance(w, str)])


class ScanDepthTask(Task):
    name = "scan-depth"
    version = 1
    family = "compositional-depth"
    description = "SD(d): bracketed SCAN conjunction trees; per-depth exact match of generated actions"
    config_cls = ScanDepthConfig
    scoring = "generate"
    metric = "exact_match"
    default_split = "depth"
    split_names = ("depth", "iid")
    slice_keys = ("depth",)
    in_default_suite = True

    @classmethod
    def depth_config(cls, depth: int) -> tuple[dict[str, Any], str]:
        """Split ``iid`` draws every set from ``iid_depths``; one depth is the range (d, d)."""
        return {"iid_depths": [depth, depth]}, "iid"

    _VOCAB = Vocab(SPECIALS + tuple(w for w in INPUT_WORDS if w != "around") + ACTIONS)

    @property
    def vocab(self) -> Vocab:
        return self._VOCAB

    @property
    def chance(self) -> float:
        return 0.0

    def encode(self, words: list[str]) -> Example:
        actions = interpret_tree(words)
        v = self.vocab
        prompt = ("<bos>", *words, "<sep>")
        tokens = v.ids(prompt + tuple(actions) + ("<eos>",))
        n = len(tokens) - 1
        mask = tuple(i >= len(prompt) - 1 for i in range(n))
        return Example(tokens=tokens, mask=mask, prompt_len=len(prompt),
                       slices={"depth": _depth_of(words), "out_len": 8 * (len(actions) // 8)})

    def build_splits(self) -> dict[str, list[Example]]:
        cfg: ScanDepthConfig = self.cfg  # type: ignore[assignment]
        rng = random.Random(f"scan-depth:{self.seed}")
        leaves = s_phrases(around=False)
        train_lo, train_hi = cfg.train_depths if self.split == "depth" else cfg.iid_depths
        seen: set[str] = set()

        def draw(depth: int, n: int) -> list[list[str]]:
            out, tries = [], 0
            while len(out) < n and tries < 50 * n + 1000:
                tries += 1
                words = sample_tree(depth, rng, leaves)
                key = " ".join(words)
                if key not in seen:
                    seen.add(key)
                    out.append(words)
            return out

        held_depths = [d for d in range(max(1, train_lo), train_hi + 1)]
        splits: dict[str, list[list[str]]] = {"val": [], "test_iid" if self.split == "depth" else "test": []}
        for d in held_depths:  # held-out iid sets first so they never leak into train
            splits["val"] += draw(d, max(1, cfg.n_val // len(held_depths)))
        test_key = "test_iid" if self.split == "depth" else "test"
        for d in held_depths:
            splits[test_key] += draw(d, cfg.n_test_per_depth)
        if self.split == "depth":
            splits["test_ood"] = [w for d in range(cfg.test_depths[0], cfg.test_depths[1] + 1)
                                  for w in draw(d, cfg.n_test_per_depth)]
        train: list[list[str]] = []
        depths = list(range(train_lo, train_hi + 1))
        if train_lo == 0:  # every leaf once, then the rest spread evenly over depths >= 1
            train += [leaf.split() for leaf in leaves]
            depths = depths[1:] or [0]
        per = max(1, (cfg.n_train - len(train)) // len(depths))
        for d in depths:
            train += draw(d, per)
        rng.shuffle(train)
        out = {"train": [self.encode(w) for w in train]}
        out.update({k: [self.encode(w) for w in v] for k, v in splits.items()})
        return out


def _depth_of(words: list[str]) -> int:
    depth = best = 0
    for w in words:
        if w == "(":
            depth += 1
            best = max(best, depth)
        elif w == ")":
            depth -= 1
    return best
