"""Interpreter skeletons of the state machine (SPECS.md §5, LexSM-164): the prior knowledge, not parameters.

Each skeleton reads a sentence as a sequence of lexicon rows (ints) and executes it under one discrete lexicon
``lex[row] = (role, arg)`` (plus a clause template for SCAN). Nothing here refers to a particular word: which row
is a primitive, a direction, a multiplier, a conjunction, a literal or a bracket is the lexicon's business.
The only tokens the SCAN skeleton treats structurally are the optional grouping tokens (``OPEN_ROW``/``CLOSE_ROW``)
that a caller maps the bracket symbols of ``scan-depth`` to; they are part of the skeleton and disclosed as such.

The functions between the ``skeleton:`` markers are what :func:`skeleton_size` measures (non-blank lines and gzip
bytes), so keep them self-contained.
"""

from __future__ import annotations

import gzip
import inspect

# -- skeleton: scan -------------------------------------------------------------------------------------------
PRIM, DIR, AMUL, LOOP, CONJ = range(5)
OPEN_ROW, CLOSE_ROW = -1, -2  # grouping tokens (scan-depth); any other negative row is an unknown word
# a clause whose output could exceed MAX_OUT symbols is rejected before it is built: a resource bound (a sampled
# lexicon can make every word a multiplier, and the output grows as the product of their factors)
MAX_OUT = 4096


def scan_unit(t, p, d, a):
    # the 8 candidate clause templates: d^a p, p d^a, (d p)^a, (p d)^a, d p, p d, d^a, p
    return (d * a + p, p + d * a, (d + p) * a, (p + d) * a, d + p, p + d, d * a, p)[t]


def scan_clause(rows, lex, t, emit):
    p, d, a, b = None, None, 1, 1
    for w in rows:
        if w < 0:
            return None
        role, arg = lex[w]
        if role == PRIM:
            if p is not None or emit[arg] is None:
                return None
            p = emit[arg]
        elif role == DIR:
            if d is not None or emit[arg] is None:
                return None
            d = emit[arg]
        elif role == AMUL:
            a *= arg + 1
        elif role == LOOP:
            b *= arg + 1
        else:
            return None
    if p is None or (len(p) + len(d or ())) * a * b > MAX_OUT:
        return None
    return scan_unit(t, p, d or (), a) * b


def scan_side(items, lex, t, emit):
    if len(items) == 1 and type(items[0]) is tuple:
        return items[0]
    if any(type(x) is tuple for x in items):
        return None
    return scan_clause(items, lex, t, emit)


def scan_frame(items, lex, t, emit):
    conj = [i for i, w in enumerate(items) if type(w) is int and w >= 0 and lex[w][0] == CONJ]
    if len(conj) > 1:
        return None
    if not conj:
        return scan_side(items, lex, t, emit)
    i = conj[0]
    swap = lex[items[i]][1]
    left, right = scan_side(items[:i], lex, t, emit), scan_side(items[i + 1:], lex, t, emit)
    if swap > 1 or left is None or right is None:
        return None
    return right + left if swap else left + right


def scan_execute(rows, lex, t, emit):
    stack = [[]]
    for w in rows:
        if w == OPEN_ROW:
            stack.append([])
        elif w == CLOSE_ROW:
            out = scan_frame(stack.pop(), lex, t, emit) if len(stack) > 1 else None
            if out is None:
                return None
            stack[-1].append(out)
        else:
            stack[-1].append(w)
    return scan_frame(stack[0], lex, t, emit) if len(stack) == 1 else None
# -- end skeleton: scan ---------------------------------------------------------------------------------------


# -- skeleton: parity -----------------------------------------------------------------------------------------
LIT, P_OPEN, P_CLOSE, OP, NEG, IGNORE = range(6)
PARITY_OPS = (lambda x, y: x ^ y, lambda x, y: x & y, lambda x, y: x | y, lambda x, y: 1 - (x ^ y))


def parity_step(state, w, lex):
    # state = (stack, acc, op, neg); returns the next state or None (invalid)
    stack, acc, op, neg = state
    role, arg = lex[w] if w >= 0 else (None, 0)
    if role == IGNORE:
        return state
    if role == NEG:
        return stack, acc, op, neg ^ 1
    if role == P_OPEN:
        return stack + ((acc, op, neg),), None, None, 0
    if role == OP:
        return None if acc is None or op is not None else (stack, acc, arg, neg)
    if role == LIT and arg < 2:
        v = arg ^ neg
    elif role == P_CLOSE and stack and acc is not None and op is None and not neg:
        v = acc ^ stack[-1][2]
        stack, acc, op = stack[:-1], stack[-1][0], stack[-1][1]
    else:
        return None
    if acc is None:
        return None if op is not None else (stack, v, None, 0)
    return None if op is None else (stack, PARITY_OPS[op](acc, v), None, 0)


def parity_result(state):
    # the value a complete expression has in this state, else None
    if state is None or state[0] or state[2] is not None or state[3]:
        return None
    return state[1]
# -- end skeleton: parity -------------------------------------------------------------------------------------


def parity_execute(rows, lex):
    state = ((), None, None, 0)
    for w in rows:
        state = parity_step(state, w, lex)
        if state is None:
            return None
    value = parity_result(state)
    return None if value is None else (value,)


def skeleton_size(name: str) -> dict[str, int]:
    """Non-blank lines and gzip bytes of a skeleton's source (the text between its markers in this file)."""
    src = inspect.getsource(inspect.getmodule(skeleton_size))
    begin, end = f"# -- skeleton: {name} ", f"# -- end skeleton: {name} "
    body = src[src.index(begin): src.index(end)]
    lines = [ln for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    text = "\n".join(lines).encode()
    return {"lines": len(lines), "gzip_bytes": len(gzip.compress(text, compresslevel=9, mtime=0))}
