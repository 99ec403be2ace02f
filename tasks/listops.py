"""ListOps as in the Long Range Arena (Tay et al. 2021, arXiv:2011.04006; Nangia & Bowman 2018).

Official generator: google-research/long-range-arena ``lra_benchmarks/data/listops.py`` (SPECS.md §3).
A tree is built top-down from depth 1: below ``max_depth`` a node is an operator with probability ``value_p`` =
0.25 (LRA's ``VALUE_P``: a draw r > 0.25 gives a leaf digit 0-9, uniform), the operator being one of ``[MIN``,
``[MAX``, ``[MED``, ``[SM`` (sum mod 10), uniform, with 2..``max_args`` children (uniform); at ``max_depth`` it is
always a leaf. Length counts operators, ``]`` and digits. Trees are sampled until ``n_train + n_val + n_test``
*unique* trees with ``min_length < length < max_length`` exist, then split. MED is ``int(median)`` (the mean of the
two middle values, truncated, for an even count). 10 classes; chance 0.1.

* ``listops``: the standard LRA configuration (max_depth 10, max_args 10, lengths 500-2000, 96,000 / 2,000 /
  2,000 trees). Heavy: the data are built only when first used, and the sizes can be lowered with ``--set``.
* ``listops-mini``: **non-standard**, a CPU-sized variant of the same generator (max_depth 5, max_args 5,
  lengths 20-100, 20,000 / 1,000 / 1,000). Its numbers are not comparable with published ListOps numbers.

Encoding: ``<bos>`` expression ``=`` label, with the LRA model input's tokens (brackets of the TSV rendering
dropped; ``]`` is its own token, LRA's ``X``). The label is predicted at ``=`` (a classification scored
"teacher_forced"; ``accuracy`` == ``exact_match`` here). The set order of the LRA split cannot be reproduced, so
the unique trees are split after a seeded shuffle. Slices: ``depth`` (operator nesting; the root operator is depth
1) and ``length`` (token count, bucketed by ``length_bucket``).
"""

from __future__ import annotations

import random

from pydantic import Field, model_validator

from arena.api import Example, Task, TaskConfig, Vocab

OPS = ("[MIN", "[MAX", "[MED", "[SM")
Tree = int | tuple[str, list["Tree"]]


class ListOpsConfig(TaskConfig):
    max_depth: int = Field(10, ge=1, le=20, description="depth at which nodes are forced to be leaves. Default: 10")
    max_args: int = Field(10, ge=2, le=20, description="maximum children of an operator. Default: 10")
    value_p: float = Field(0.25, gt=0, lt=1, description="LRA VALUE_P: probability of an operator below max_depth. Default: 0.25")
    min_length: int = Field(500, ge=0, description="trees need length > min_length. Default: 500")
    max_length: int = Field(2000, ge=2, description="trees need length < max_length. Default: 2000")
    n_train: int = Field(96_000, ge=1, le=1_000_000, description="training trees. Default: 96000")
    n_val: int = Field(2000, ge=1, le=100_000, description="validation trees. Default: 2000")
    n_test: int = Field(2000, ge=1, le=100_000, description="test trees. Default: 2000")
    length_bucket: int = Field(250, ge=1, description="width of the length slices. Default: 250")

    @model_validator(mode="after")
    def _check(self) -> ListOpsConfig:
        if self.max_length <= self.min_length + 1:
            raise ValueError("need max_length > min_length + 1")
        return self


class ListOpsMiniConfig(ListOpsConfig):
    max_depth: int = Field(5, ge=1, le=20, description="depth at which nodes are forced to be leaves. Default: 5")
    max_args: int = Field(5, ge=2, le=20, description="maximum children of an operator. Default: 5")
    min_length: int = Field(20, ge=0, description="trees need length > min_length. Default: 20")
    max_length: int = Field(100, ge=2, description="trees need length < max_length. Default: 100")
    n_train: int = Field(20_000, ge=1, le=1_000_000, description="training trees. Default: 20000")
    n_val: int = Field(1000, ge=1, le=100_000, description="validation trees. Default: 1000")
    n_test: int = Field(1000, ge=1, le=100_000, description="test trees. Default: 1000")
    length_bucket: int = Field(20, ge=1, description="width of the length slices. Default: 20")


def gen_tree(depth: int, cfg: ListOpsConfig, rng: random.Random) -> Tree:
    """The LRA recursion; ``depth`` starts at 1."""
    r = rng.random() if depth < cfg.max_depth else 1.0
    if r > cfg.value_p:
        return rng.randrange(10)
    k = rng.randint(2, cfg.max_args)
    children = [gen_tree(depth + 1, cfg, rng) for _ in range(k)]
    return rng.choice(OPS), children


def tree_words(tree: Tree) -> list[str]:
    out: list[str] = []
    stack: list[Tree | str] = [tree]
    while stack:  # iterative: trees can be deep enough to make recursion slow
        node = stack.pop()
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, int):
            out.append(str(node))
        else:
            op, children = node
            out.append(op)
            stack.append("]")
            stack.extend(reversed(children))
    return out


def tree_value(tree: Tree) -> int:
    if isinstance(tree, int):
        return tree
    op, children = tree
    args = [tree_value(c) for c in children]
    if op == "[MIN":
        return min(args)
    if op == "[MAX":
        return max(args)
    if op == "[SM":
        return sum(args) % 10
    args.sort()
    mid = len(args) // 2
    return args[mid] if len(args) % 2 else int((args[mid - 1] + args[mid]) / 2)


def tree_depth(tree: Tree) -> int:
    if isinstance(tree, int):
        return 0
    return 1 + max(tree_depth(c) for c in tree[1])


class ListOpsTask(Task):
    name = "listops"
    version = 1
    family = "hierarchical"
    description = "LRA ListOps (standard: depth<=10, 500-2000 tokens, 96k/2k/2k); root value at the end"
    config_cls: type[ListOpsConfig] = ListOpsConfig
    scoring = "teacher_forced"
    metric = "accuracy"
    default_split = "default"
    split_names = ("default",)
    slice_keys = ("depth", "length")

    _VOCAB = Vocab(("<pad>", "<bos>", "=", *OPS, "]", *(str(i) for i in range(10))))

    @property
    def vocab(self) -> Vocab:
        return self._VOCAB

    @property
    def chance(self) -> float:
        return 0.1

    def encode(self, words: list[str], label: int, depth: int) -> Example:
        cfg: ListOpsConfig = self.cfg  # type: ignore[assignment]
        tokens = self.vocab.ids(["<bos>", *words, "=", str(label)])
        n = len(tokens) - 1
        return Example(tokens=tokens, mask=tuple(i == n - 1 for i in range(n)), prompt_len=n,
                       slices={"depth": depth, "length": cfg.length_bucket * (len(words) // cfg.length_bucket)})

    def build_splits(self) -> dict[str, list[Example]]:
        cfg: ListOpsConfig = self.cfg  # type: ignore[assignment]
        rng = random.Random(f"{self.name}:{self.seed}")
        total = cfg.n_train + cfg.n_val + cfg.n_test
        seen: dict[tuple[str, ...], Example] = {}
        tries = 0
        while len(seen) < total:
            tries += 1
            if tries > 2000 * total + 100_000:
                raise ValueError(f"{self.name}: only {len(seen)} unique trees with {cfg.min_length} < length < "
                                 f"{cfg.max_length} after {tries - 1} draws; widen the bounds or lower the sizes")
            tree = gen_tree(1, cfg, rng)
            words = tree_words(tree)
            if cfg.min_length < len(words) < cfg.max_length and tuple(words) not in seen:
                seen[tuple(words)] = self.encode(words, tree_value(tree), tree_depth(tree))
        examples = list(seen.values())
        rng.shuffle(examples)
        return {"train": examples[: cfg.n_train], "val": examples[cfg.n_train : cfg.n_train + cfg.n_val],
                "test": examples[cfg.n_train + cfg.n_val :]}


class ListOpsMiniTask(ListOpsTask):
    name = "listops-mini"
    description = "ListOps-mini (NON-STANDARD, CPU-sized): depth<=4, args<=5, 20-100 tokens; root value at the end"
    config_cls = ListOpsMiniConfig
