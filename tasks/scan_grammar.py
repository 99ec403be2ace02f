"""The SCAN grammar and its interpretation (Lake & Baroni 2018, Supplementary Figs. 6-7).

Shared by the ``scan`` and ``scan-depth`` task families (and by the state machine's tests). The generator
enumerates the 20,910 commands in a fixed grammar order; interpretation is a direct reading of the semantics.
"""

from __future__ import annotations

from collections.abc import Iterator

VERBS = ("walk", "look", "run", "jump")
DIRECTIONS = ("left", "right")
ACTIONS = ("I_WALK", "I_LOOK", "I_RUN", "I_JUMP", "I_TURN_LEFT", "I_TURN_RIGHT")
INPUT_WORDS = ("walk", "look", "run", "jump", "turn", "left", "right", "opposite", "around", "twice", "thrice",
               "and", "after")
_TURN = {"left": "I_TURN_LEFT", "right": "I_TURN_RIGHT"}


def v_phrases(around: bool = True) -> list[str]:
    """All V phrases: U, D (U dir, turn dir), opposite and (optionally) around forms (34 with around)."""
    out = list(VERBS)
    for d in DIRECTIONS:
        out += [f"{u} {d}" for u in VERBS] + [f"turn {d}"]
    for mod in ("opposite", "around") if around else ("opposite",):
        for d in DIRECTIONS:
            out += [f"{u} {mod} {d}" for u in VERBS] + [f"turn {mod} {d}"]
    return out


def s_phrases(around: bool = True) -> list[str]:
    """All S phrases: V, V twice, V thrice (102 with around, 72 without)."""
    vs = v_phrases(around)
    return vs + [f"{v} twice" for v in vs] + [f"{v} thrice" for v in vs]


def commands() -> Iterator[str]:
    """All 20,910 SCAN commands: S | S and S | S after S."""
    ss = s_phrases()
    yield from ss
    for conj in ("and", "after"):
        for a in ss:
            for b in ss:
                yield f"{a} {conj} {b}"


def _interpret_v(words: list[str]) -> list[str]:
    if len(words) == 1:
        return [f"I_{words[0].upper()}"]
    if len(words) == 2:
        verb, d = words
        return [_TURN[d]] + ([] if verb == "turn" else [f"I_{verb.upper()}"])
    verb, mod, d = words
    unit = [_TURN[d]] + ([] if verb == "turn" else [f"I_{verb.upper()}"])
    if mod == "opposite":
        return [_TURN[d]] + unit
    if mod == "around":
        return unit * 4
    raise ValueError(f"not a SCAN V phrase: {' '.join(words)!r}")


def interpret_s(words: list[str]) -> list[str]:
    if words and words[-1] in ("twice", "thrice"):
        return _interpret_v(words[:-1]) * (2 if words[-1] == "twice" else 3)
    return _interpret_v(words)


def interpret(command: str) -> list[str]:
    """Action sequence of a SCAN command (``x and y`` = [[x]][[y]], ``x after y`` = [[y]][[x]])."""
    words = command.split()
    for conj in ("and", "after"):
        if conj in words:
            i = words.index(conj)
            a, b = interpret_s(words[:i]), interpret_s(words[i + 1 :])
            return a + b if conj == "and" else b + a
    return interpret_s(words)


def operator_count(command: str) -> int:
    """Definition B of SPECS.md §1: words that are operators (left/right, opposite/around, twice/thrice, and/after)."""
    return sum(w not in VERBS and w != "turn" for w in command.split())
