"""SCAN-shift: SCAN's words and actions under interpretation rules the state machine's skeleton cannot express.

A control grammar for the headline (issue 18; project-defined, no paper). The state machine's SCAN skeleton
hard-codes SCAN's sentence shape: at most one conjunction per sentence, and a conjunction that concatenates its
two clauses in either order. SCAN-shift keeps every SCAN word and every clause (S) meaning, and changes the rest:

    C -> S | S and C | S after C           (right-nested: "a and b after c" = a and (b after c))
    [[x and c]]   = interleave([[x]], [[c]])   a1 c1 a2 c2 ... then what is left of the longer one
    [[x after c]] = [[c]] [[x]]               (as in SCAN)
    [[S]]         = SCAN's (``scan_grammar.interpret_s``)

So "walk twice and jump left" is WALK LTURN WALK JUMP (SCAN: WALK WALK LTURN JUMP), and a command can hold two
conjunctions. Nothing changes in the vocabulary (13 words, 6 actions): a model built for SCAN reads every command.

Commands: every S (102) and every S-conj-S (20,808), plus ``n_nested`` commands with two conjunctions drawn from a
fixed generator (the same set for every run seed). Splits:

* ``simple``: a seeded 80/20 re-split of the commands;
* ``length``: train = at most ``train_max_actions`` actions (default 24), test = more;
* ``addprim_jump``: train = the commands without ``jump`` + the bare ``jump`` repeated to 10 % of the train lines;
  test = the other commands with ``jump`` (SCAN's rule).

``val`` is carved from train as in ``scan`` (2 % of the distinct train commands, at most 500). Sequence, scoring
and slices are SCAN's (``<bos> command <sep> actions <eos>``, greedy exact match; ``depth`` = operator count,
``out_len`` = number of actions) plus ``conj`` (0, 1, 2 conjunctions).
"""

from __future__ import annotations

import random
from functools import lru_cache

from pydantic import Field

from arena.api import Example, TaskConfig
from arena.errors import ArenaError, suggest
from arena.tasks.scan import ScanTask
from arena.tasks.scan_grammar import interpret_s, operator_count, s_phrases

SPLITS = ("simple", "length", "addprim_jump")
CONJ = ("and", "after")


class ScanShiftConfig(TaskConfig):
    n_nested: int = Field(8000, ge=0, le=1_000_000, description="commands with two conjunctions in the pool "
                          "(a fixed draw, the same for every seed). Default: 8000")
    train_max_actions: int = Field(24, ge=1, le=100, description="length split: train on commands with at most "
                                   "this many actions, test on longer. Default: 24")
    n_train_max: int | None = Field(None, ge=1, description="cap on training examples. Default: None (all)")
    n_test_max: int | None = Field(None, ge=1, description="cap on test (and val) examples. Default: None (all)")
    val_fraction: float = Field(0.02, gt=0.0, le=0.5, description="fraction of distinct train commands held out "
                                "as val (at most val_max). Default: 0.02")
    val_max: int = Field(500, ge=1, description="largest val set. Default: 500")


def interleave(a: list[str], b: list[str]) -> list[str]:
    out: list[str] = []
    for i in range(max(len(a), len(b))):
        out += a[i : i + 1] + b[i : i + 1]
    return out


def interpret(command: str) -> list[str]:
    """Actions of a SCAN-shift command: split at the first conjunction; the rest is the right operand."""
    words = command.split()
    at = next((i for i, w in enumerate(words) if w in CONJ), None)
    if at is None:
        return interpret_s(words)
    head, rest = interpret_s(words[:at]), interpret(" ".join(words[at + 1 :]))
    return interleave(head, rest) if words[at] == "and" else rest + head


@lru_cache(maxsize=4)
def pool(n_nested: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(command, actions) for the S and S-conj-S commands (grammar order) and ``n_nested`` distinct two-conjunction
    commands drawn with a fixed seed."""
    ss = s_phrases()
    cmds = list(ss) + [f"{a} {c} {b}" for c in CONJ for a in ss for b in ss]
    rng = random.Random("scan-shift-nested")
    nested: set[str] = set()
    while len(nested) < n_nested:
        a, b, c = (ss[rng.randrange(len(ss))] for _ in range(3))
        nested.add(f"{a} {rng.choice(CONJ)} {b} {rng.choice(CONJ)} {c}")
    cmds += sorted(nested)
    return tuple((c, tuple(interpret(c))) for c in cmds)


def split_lines(split: str, seed: int, cfg: ScanShiftConfig) -> dict[str, list[str]]:
    if split not in SPLITS:
        raise ArenaError(f"unknown SCAN-shift split {split!r}{suggest(split, SPLITS)}")
    table = pool(cfg.n_nested)
    train: list[str] = []
    test: list[str] = []
    if split == "simple":
        cmds = [c for c, _ in table]
        random.Random(f"scan-shift-simple:{seed}").shuffle(cmds)
        cut = round(0.8 * len(cmds))
        train, test = cmds[:cut], cmds[cut:]
    elif split == "length":
        for c, a in table:
            (train if len(a) <= cfg.train_max_actions else test).append(c)
    else:
        for c, _ in table:
            words = c.split()
            if "jump" not in words:
                train.append(c)
            elif words != ["jump"]:
                test.append(c)
        train += ["jump"] * (len(train) // 9)
    rng = random.Random(f"scan-shift-order:{split}:{seed}")
    rng.shuffle(train)
    rng.shuffle(test)
    return {"train": train, "test": test}


class ScanShiftTask(ScanTask):
    name = "scan-shift"
    version = 1
    family = "compositional"
    description = ("SCAN-shift: SCAN's words with interleaving 'and' and right-nested conjunctions (a control "
                   "grammar the state machine's skeleton cannot express); exact match of generated actions")
    config_cls = ScanShiftConfig
    split_names = SPLITS
    slice_keys = ("depth",)

    def encode(self, command: str, actions: tuple[str, ...]) -> Example:
        ex = super().encode(command, actions)
        conj = sum(w in CONJ for w in command.split())
        return Example(tokens=ex.tokens, mask=ex.mask, prompt_len=ex.prompt_len,
                       slices={"depth": operator_count(command), "out_len": len(actions), "conj": conj})

    def pairs(self) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
        if getattr(self, "_pairs", None) is None:
            cfg: ScanShiftConfig = self.cfg  # type: ignore[assignment]
            table = dict(pool(cfg.n_nested))
            lines = split_lines(self.split, self.seed, cfg)
            self._pairs = {k: [(c, table[c]) for c in v] for k, v in lines.items()}
        return self._pairs
