"""SCAN-shift: labels against an independent interpreter, split rules, and what the SCAN skeleton cannot do."""

from __future__ import annotations

from collections import Counter

import pytest

from arena.data import load_task
from arena.errors import ArenaError
from arena.tasks.scan_shift import SPLITS, ScanShiftConfig, interpret, pool, split_lines

# -- an independent interpreter: split at every conjunction, fold the clauses from the right -------------------
_ACT = {"walk": ["I_WALK"], "look": ["I_LOOK"], "run": ["I_RUN"], "jump": ["I_JUMP"], "turn": []}
_TURN = {"left": "I_TURN_LEFT", "right": "I_TURN_RIGHT"}


def _clause(words: list[str]) -> list[str]:
    times = 1
    if words[-1] == "twice":
        words, times = words[:-1], 2
    elif words[-1] == "thrice":
        words, times = words[:-1], 3
    verb = _ACT[words[0]]
    if len(words) == 1:
        unit = verb
    elif len(words) == 2:
        unit = [_TURN[words[1]]] + verb
    elif words[1] == "opposite":
        unit = [_TURN[words[2]], _TURN[words[2]]] + verb
    else:
        assert words[1] == "around"
        unit = ([_TURN[words[2]]] + verb) * 4
    return unit * times


def _zip(a: list[str], b: list[str]) -> list[str]:
    out, i, j = [], 0, 0
    while i < len(a) or j < len(b):
        if i < len(a):
            out.append(a[i])
            i += 1
        if j < len(b):
            out.append(b[j])
            j += 1
    return out


def oracle(command: str) -> list[str]:
    """Right-nested: fold the clauses from the last one leftwards."""
    words, clauses, conjs, cur = command.split(), [], [], []
    for w in words:
        if w in ("and", "after"):
            clauses.append(cur)
            conjs.append(w)
            cur = []
        else:
            cur.append(w)
    clauses.append(cur)
    acc = _clause(clauses[-1])
    for conj, clause in zip(reversed(conjs), reversed(clauses[:-1]), strict=True):
        acc = _zip(_clause(clause), acc) if conj == "and" else acc + _clause(clause)
    return acc


def test_every_label_matches_the_independent_interpreter():
    table = pool(8000)
    assert len(table) == 102 + 2 * 102**2 + 8000 and len({c for c, _ in table}) == len(table)
    assert all(list(a) == oracle(c) for c, a in table)
    conj = Counter(sum(w in ("and", "after") for w in c.split()) for c, _ in table)
    assert conj == {0: 102, 1: 20_808, 2: 8000}


def test_worked_examples_differ_from_scan():
    assert interpret("walk twice and jump left") == ["I_WALK", "I_TURN_LEFT", "I_WALK", "I_JUMP"]
    assert interpret("walk after run twice") == ["I_RUN", "I_RUN", "I_WALK"]
    # right nesting: look and (walk after jump)
    assert interpret("look thrice and walk after jump") == ["I_LOOK", "I_JUMP", "I_LOOK", "I_WALK", "I_LOOK"]


@pytest.mark.parametrize("split", SPLITS)
def test_splits_follow_their_rules(split):
    cfg = ScanShiftConfig()
    lines = split_lines(split, 0, cfg)
    table = dict(pool(cfg.n_nested))
    train, test = lines["train"], lines["test"]
    if split == "simple":
        assert not set(train) & set(test) and len(train) + len(test) == len(table)
        assert split_lines(split, 1, cfg)["test"] != test
    elif split == "length":
        assert max(len(table[c]) for c in train) <= 24 < min(len(table[c]) for c in test)
    else:
        assert all("jump" not in c.split() for c in train if c != "jump")
        assert train.count("jump") == (len(train) - train.count("jump")) // 9
        assert all("jump" in c.split() and c != "jump" for c in test)
    task = load_task("scan-shift", split=split)
    sp = task.splits
    assert set(sp) == {"train", "val", "test"} and 0 < len(sp["val"]) <= 500
    words = task.vocab.tokens
    val_cmds = {" ".join(words[i] for i in e.tokens[1 : e.prompt_len - 1]) for e in sp["val"]}
    train_cmds = {" ".join(words[i] for i in e.tokens[1 : e.prompt_len - 1]) for e in sp["train"]}
    assert not val_cmds & train_cmds


def test_same_vocabulary_as_scan_and_bad_split_named():
    assert load_task("scan-shift").vocab.tokens == load_task("scan").vocab.tokens
    with pytest.raises(ArenaError, match="unknown SCAN-shift split 'lenght'.*did you mean 'length'"):
        split_lines("lenght", 0, ScanShiftConfig())


def test_the_scan_skeleton_has_no_lexicon_for_scan_shift():
    """Exhaustive over what matters: with SCAN's own (correct-for-SCAN) lexicon, the skeleton gets every command
    without a conjunction right, no command with two conjunctions, and a one-conjunction 'and' command only when
    interleaving equals concatenation. No other CONJ choice can do better on two-conjunction commands: the skeleton
    rejects a frame with more than one conjunction whatever the lexicon."""
    from arena.architectures import state_machine_skeletons as sk
    from arena.tasks.scan_grammar import INPUT_WORDS

    rows = {w: i for i, w in enumerate(sorted(INPUT_WORDS))}
    out = ["I_JUMP", "I_LOOK", "I_RUN", "I_TURN_LEFT", "I_TURN_RIGHT", "I_WALK"]
    emit = [(i,) for i in range(len(out))] + [()]
    lex = [(0, 0)] * 13
    for w, i in [("walk", 5), ("look", 1), ("run", 2), ("jump", 0)]:
        lex[rows[w]] = (sk.PRIM, i)
    lex[rows["turn"]] = (sk.PRIM, 6)
    lex[rows["left"]], lex[rows["right"]] = (sk.DIR, 3), (sk.DIR, 4)
    lex[rows["opposite"]], lex[rows["around"]] = (sk.AMUL, 1), (sk.LOOP, 3)
    lex[rows["twice"]], lex[rows["thrice"]] = (sk.LOOP, 1), (sk.LOOP, 2)
    lex[rows["and"]], lex[rows["after"]] = (sk.CONJ, 0), (sk.CONJ, 1)
    for cmd, acts in pool(2000):
        got = sk.scan_execute(tuple(rows[w] for w in cmd.split()), lex, 0, emit)
        got = None if got is None else [out[s] for s in got]
        n_conj = sum(w in ("and", "after") for w in cmd.split())
        if n_conj == 2:
            assert got is None
        elif n_conj == 0 or "after" in cmd.split():
            assert got == list(acts)
        else:
            i = cmd.split().index("and")
            a, b = _clause(cmd.split()[:i]), _clause(cmd.split()[i + 1 :])
            assert (got == list(acts)) == (_zip(a, b) == a + b)
