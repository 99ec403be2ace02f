"""Tasks of "Neural Networks and the Chomsky Hierarchy" (Delétang et al., ICLR 2023, arXiv:2207.02098).

Official implementation: google-deepmind/neural_networks_chomsky_hierarchy (generators described in SPECS.md §3).
Registered under the paper's own names: regular ``parity_check``, ``even_pairs``, ``modular_arithmetic``
(the simple one), ``cycle_navigation``; deterministic context-free ``reverse_string``, ``stack_manipulation``,
``modular_arithmetic_brackets`` (with ``*``, as the paper), ``solve_equation``; context-sensitive
``duplicate_string``, ``missing_duplicate_string``, ``odds_first``, ``binary_addition``,
``binary_multiplication``, ``compute_sqrt``, ``bucket_sort``: all fifteen tasks of Table 2.

Protocol (split ``length``, the only one): train on input lengths uniform in 1..40, ``val`` on the same lengths,
``test`` on every length 41..``eval_max_length`` with ``n_test_per_length`` examples each (the paper: 1..500, 512
sequences per length). The score is the accuracy per output token, counted up to and including the termination
token for ``stack_manipulation``, ``binary_addition`` and ``binary_multiplication``; the paper's headline is its mean over the lengths
41..max, i.e. the primary metric ``accuracy`` (per-example token accuracy, averaged) on ``test``. Every example
carries the slice ``length`` (the nominal input length, as the paper's per-length curves; ``modular_arithmetic``
uses n-1 symbols when n is even).

Readout (``readout``):
* ``"blank"`` (default, the paper's non-autoregressive setup): the model reads ``[input ; blanks]`` and output
  token j is read off after the j-th blank. The arena's Example scores the *next* token, which would put the
  gold outputs into the input stream, so each example holds one output token: ``<bos> input _×j  y_j`` scored
  at the last blank (j uniform over the scored outputs). For a causal model this is exactly the paper's
  prediction of y_j; the test split has the same number of examples at every length, so its ``accuracy`` is
  the paper's mean over lengths (each sequence weighted equally rather than each token — identical for
  fixed-length outputs). Training sees one output token per sequence.
* ``"autoregressive"``: ``<bos> input _ y_1 .. y_m``, every output token scored with the gold previous outputs
  visible (teacher forcing). Cheaper to train, but *not* the paper's setup for multi-token outputs (``accuracy``
  still averages per example, so long outputs do not weigh more). For the one-token tasks (the four regular ones)
  both coincide.

Chance: 1/(number of output classes), 0.5 for the binary tasks (as the paper states), 0.2 for mod-5 outputs.
Published Table 2 numbers are in docs/tasks.md (marked [recalled]); the paper trains 1,000,000 steps.
"""

from __future__ import annotations

import math
import random
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from arena.api import Example, Task, TaskConfig, Vocab

BITS = ("0", "1")
DIGITS5 = ("0", "1", "2", "3", "4")


class ChomskyConfig(TaskConfig):
    train_lengths: tuple[int, int] = Field((1, 40), description="inclusive train/val input lengths. Default: (1, 40)")
    eval_max_length: int = Field(100, ge=2, le=2000, description="test covers lengths train_max+1..this "
                                 "(the paper: 500). Default: 100")
    readout: Literal["blank", "autoregressive"] = Field("blank", description="blank (the paper's "
                                                        "non-autoregressive readout) or autoregressive. Default: blank")
    n_train: int = Field(20_000, ge=1, le=10_000_000, description="training examples. Default: 20000")
    n_val: int = Field(500, ge=1, le=100_000, description="validation examples. Default: 500")
    n_test_per_length: int = Field(32, ge=1, le=100_000, description="test examples per length. Default: 32")

    @model_validator(mode="after")
    def _check(self) -> ChomskyConfig:
        lo, hi = self.train_lengths
        if not 1 <= lo <= hi < self.eval_max_length:
            raise ValueError(f"need 1 <= train_lengths[0] <= train_lengths[1] < eval_max_length, got "
                             f"{self.train_lengths} and {self.eval_max_length}")
        return self


def _bits(n: int, rng: random.Random) -> list[str]:
    return [str(rng.getrandbits(1)) for _ in range(n)]


# -- the generators: (length, rng) -> (input symbols, scored output symbols) ---------------------------------------
def parity_check(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    s = _bits(n, rng)
    return s, [str(s.count("1") % 2)]


def even_pairs(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    s = _bits(n, rng)
    changes = sum(a != b for a, b in zip(s, s[1:], strict=False))
    return s, [str(changes % 2)]


def modular_arithmetic(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    n = n if n % 2 else n - 1
    digits = [rng.randrange(5) for _ in range(n // 2 + 1)]
    ops = [rng.choice(("+", "*", "-")) for _ in range(n // 2)]
    terms, current = [], digits[0]
    for op, d in zip(ops, digits[1:], strict=True):  # '*' binds tighter; 'a - b' is 'a + (-b)'
        if op == "*":
            current *= d
        else:
            terms.append(current)
            current = d if op == "+" else -d
    terms.append(current)
    words = [str(digits[0])]
    for op, d in zip(ops, digits[1:], strict=True):
        words += [op, str(d)]
    return words, [str(sum(terms) % 5)]


def cycle_navigation(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    moves = [rng.randrange(3) for _ in range(n)]  # 0: one step back, 1: stay, 2: one step forward
    return ["LSR"[m] for m in moves], [str(sum(m - 1 for m in moves) % 5)]


def reverse_string(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    s = _bits(n, rng)
    return s, s[::-1]


def stack_manipulation(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    if n == 1:
        s = _bits(1, rng)
        return s, [*s, "<end>"]
    stack = _bits(rng.randint(1, n - 1), rng)
    actions = [rng.choice(("POP", "PUSH0", "PUSH1")) for _ in range(n - len(stack))]
    final = list(stack)
    for a in actions:
        if a == "POP":
            if final:
                final.pop()
        else:
            final.append(a[-1])
    return [*stack, *actions], [*final[::-1], "<end>"]


def duplicate_string(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    s = _bits(n, rng)
    return s, s + s


def odds_first(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    s = _bits(n, rng)
    return s, s[1::2] + s[0::2]


def _little_endian(x: int, width: int) -> list[str]:
    return list(format(x, "b").zfill(width)[::-1])


def binary_addition(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    if n <= 2:  # as the official code: a single number, "summed" with nothing
        x = rng.randrange(2**n - 1)
        return _little_endian(x, n), [*_little_endian(x, 0), "<end>"]
    len_a = rng.randint(1, n - 2)
    len_b = n - 1 - len_a
    a, b = rng.randint(1, 2**len_a - 1), rng.randint(1, 2**len_b - 1)
    return [*_little_endian(a, len_a), "+", *_little_endian(b, len_b)], [*_little_endian(a + b, 0), "<end>"]


def bucket_sort(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    s = [str(rng.randrange(5)) for _ in range(n)]
    return s, sorted(s)


def _bracket_expression(n: int, rng: random.Random, ops: str) -> tuple[list[str], int]:
    """A bracketed expression of exactly n symbols over digits 0-4 and its value mod 5 (the official recursion:
    n = 1..4 is d, -d, (d), (-d); longer is (left op right) with len(left) uniform in 1..n-4)."""
    if n <= 4:
        d = rng.randrange(5)
        sign = -1 if n % 2 == 0 else 1
        body = ["-", str(d)] if sign < 0 else [str(d)]
        return (["(", *body, ")"] if n > 2 else body), sign * d % 5
    left_n = rng.randint(1, n - 4)
    left, a = _bracket_expression(left_n, rng, ops)
    right, b = _bracket_expression(n - left_n - 3, rng, ops)
    op = rng.choice(ops)
    value = {"+": a + b, "-": a - b, "*": a * b}[op] % 5
    return ["(", *left, op, *right, ")"], value


def modular_arithmetic_brackets(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    expr, value = _bracket_expression(n, rng, "+-*")
    return expr, [str(value)]


def solve_equation(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    if n < 3:  # as the official code: all-zero input, answer 0
        return ["0"] * n, ["0"]
    expr, value = _bracket_expression(n - 2, rng, "+-")  # no '*': x times 0 would have several solutions
    i = rng.randrange(len(expr))
    while expr[i] not in DIGITS5:  # advance cyclically to the first digit
        i = (i + 1) % len(expr)
    hidden, expr[i] = expr[i], "x"
    return [*expr, "=", str(value)], [hidden]


def missing_duplicate_string(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    if n == 1:  # as the official code: no substring to duplicate; input and answer 1
        return ["1"], ["1"]
    s = _bits(n // 2, rng) * 2
    i = rng.randrange(len(s))
    hidden, s[i] = s[i], "?"
    return s + ["#"] * (n % 2), [hidden]


def binary_multiplication(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    if n <= 2:  # as the official code: n random bits, the "product" is n-1 zeros
        return _little_endian(rng.randrange(2**n - 1), n), ["0"] * (n - 1) + ["<end>"]
    len_a = rng.randint(1, n - 2)
    len_b = n - 1 - len_a
    a, b = rng.randint(1, 2**len_a - 1), rng.randint(1, 2**len_b - 1)
    return [*_little_endian(a, len_a), "*", *_little_endian(b, len_b)], [*_little_endian(a * b, 0), "<end>"]


def compute_sqrt(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    x = rng.randint(1, 2**n - 1)
    return list(format(x, "b").zfill(n)), list(format(math.isqrt(x), "b").zfill((n + 1) // 2))


class ChomskyTask(Task):
    """Shared machinery; each subclass names one generator, its level, symbols and output classes."""

    version = 1
    family = "chomsky"
    config_cls = ChomskyConfig
    scoring = "teacher_forced"
    metric = "accuracy"
    default_split = "length"
    split_names = ("length",)
    slice_keys = ("length",)
    level: ClassVar[str] = ""
    symbols: ClassVar[tuple[str, ...]] = ()
    n_classes: ClassVar[int] = 2

    @staticmethod
    def generate(n: int, rng: random.Random) -> tuple[list[str], list[str]]:
        raise NotImplementedError

    _VOCAB: ClassVar[Vocab] = Vocab(("<pad>", "<bos>", "_"))

    @property
    def vocab(self) -> Vocab:
        return self._VOCAB

    @property
    def chance(self) -> float:
        return 1.0 / self.n_classes

    def sample(self, n: int, rng: random.Random) -> Example:
        cfg: ChomskyConfig = self.cfg  # type: ignore[assignment]
        x, y = self.generate(n, rng)
        if cfg.readout == "blank":
            j = rng.randint(1, len(y))
            tokens = self.vocab.ids(["<bos>", *x, *["_"] * j, y[j - 1]])
            mask = tuple(i == len(tokens) - 2 for i in range(len(tokens) - 1))
            return Example(tokens=tokens, mask=mask, prompt_len=len(tokens) - 1, slices={"length": n})
        tokens = self.vocab.ids(["<bos>", *x, "_", *y])
        start = 1 + len(x)  # the blank predicts y_1
        mask = tuple(i >= start for i in range(len(tokens) - 1))
        return Example(tokens=tokens, mask=mask, prompt_len=start + 1, slices={"length": n})

    def build_splits(self) -> dict[str, list[Example]]:
        cfg: ChomskyConfig = self.cfg  # type: ignore[assignment]
        lo, hi = cfg.train_lengths

        def rng(part: str) -> random.Random:
            return random.Random(f"{self.name}:{self.seed}:{cfg.readout}:{part}")

        r_train, r_val, r_test = rng("train"), rng("val"), rng("test")
        return {"train": [self.sample(r_train.randint(lo, hi), r_train) for _ in range(cfg.n_train)],
                "val": [self.sample(r_val.randint(lo, hi), r_val) for _ in range(cfg.n_val)],
                "test": [self.sample(n, r_test) for n in range(hi + 1, cfg.eval_max_length + 1)
                         for _ in range(cfg.n_test_per_length)]}


def _task(name: str, fn, level: str, symbols: tuple[str, ...], n_classes: int, what: str) -> type[ChomskyTask]:
    cls = type(f"{''.join(w.title() for w in name.split('_'))}Task", (ChomskyTask,), {
        "name": name, "level": level, "symbols": symbols, "n_classes": n_classes, "generate": staticmethod(fn),
        "_VOCAB": Vocab(("<pad>", "<bos>", "_", *symbols)),
        "description": f"Chomsky hierarchy ({level}): {what}; train lengths 1-40, scored on longer inputs",
        "__module__": __name__})
    return cls


ParityCheckTask = _task("parity_check", parity_check, "R", BITS, 2, "bits -> number of 1s mod 2")
EvenPairsTask = _task("even_pairs", even_pairs, "R", BITS, 2, "bits -> number of unequal neighbours mod 2")
ModularArithmeticTask = _task("modular_arithmetic", modular_arithmetic, "R", (*DIGITS5, "+", "-", "*"), 5,
                              "expression over digits 0-4 with + - * -> its value mod 5")
CycleNavigationTask = _task("cycle_navigation", cycle_navigation, "R", ("L", "S", "R", *DIGITS5), 5,
                            "moves back/stay/forward on a 5-cycle -> final position")
ReverseStringTask = _task("reverse_string", reverse_string, "DCF", BITS, 2, "bits -> reversed")
StackManipulationTask = _task("stack_manipulation", stack_manipulation, "DCF",
                              (*BITS, "POP", "PUSH0", "PUSH1", "<end>"), 2,
                              "stack (bottom to top) and POP/PUSH actions -> final stack top to bottom")
DuplicateStringTask = _task("duplicate_string", duplicate_string, "CS", BITS, 2, "bits s -> ss")
OddsFirstTask = _task("odds_first", odds_first, "CS", BITS, 2, "bits -> odd-indexed then even-indexed bits")
BinaryAdditionTask = _task("binary_addition", binary_addition, "CS", (*BITS, "+", "<end>"), 2,
                           "little-endian a + b -> little-endian sum")
BucketSortTask = _task("bucket_sort", bucket_sort, "CS", DIGITS5, 5, "digits 0-4 -> sorted")
ModularArithmeticBracketsTask = _task("modular_arithmetic_brackets", modular_arithmetic_brackets, "DCF",
                                      (*DIGITS5, "+", "-", "*", "(", ")"), 5,
                                      "bracketed expression over digits 0-4 with + - * -> its value mod 5")
SolveEquationTask = _task("solve_equation", solve_equation, "DCF", (*DIGITS5, "+", "-", "(", ")", "x", "="), 5,
                          "bracketed equation mod 5 with one unknown x -> the value of x")
MissingDuplicateStringTask = _task("missing_duplicate_string", missing_duplicate_string, "CS", (*BITS, "?", "#"), 2,
                                   "ss with one bit replaced by ? (odd n: padded by #) -> the missing bit")
BinaryMultiplicationTask = _task("binary_multiplication", binary_multiplication, "CS", (*BITS, "*", "<end>"), 2,
                                 "little-endian a * b -> little-endian product")
ComputeSqrtTask = _task("compute_sqrt", compute_sqrt, "CS", BITS, 2,
                        "big-endian n bits x -> floor(sqrt(x)), big-endian, ceil(n/2) bits")

TASK_CLASSES: tuple[type[ChomskyTask], ...] = (
    ParityCheckTask, EvenPairsTask, ModularArithmeticTask, CycleNavigationTask, ReverseStringTask,
    StackManipulationTask, DuplicateStringTask, OddsFirstTask, BinaryAdditionTask, BucketSortTask,
    ModularArithmeticBracketsTask, SolveEquationTask, MissingDuplicateStringTask, BinaryMultiplicationTask,
    ComputeSqrtTask)
