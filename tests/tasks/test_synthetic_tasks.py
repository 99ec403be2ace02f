"""counter-chain, nested-parity, listops(-mini), mqar and the Chomsky tasks: labels against independent oracles
that read the serialized token strings, seeds, disjointness, declared lengths/depths, masks and slices."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.data import load_task
from arena.tasks import chomsky
from arena.tasks._depth_splits import held_out_bucket
from arena.tasks.counter_chain import CounterChainConfig, CounterChainTask, seq_length
from arena.tasks.listops import ListOpsMiniConfig, ListOpsMiniTask
from arena.tasks.mqar import MQARConfig, MQARTask
from arena.tasks.nested_parity import NestedParityConfig, NestedParityTask

FAST = settings(max_examples=40, deadline=None)


def words_of(task, ex) -> list[str]:
    return task.vocab.decode(ex.tokens)


def scored(ex) -> list[int]:
    return [i for i, m in enumerate(ex.mask) if m]


# -- counter-chain -------------------------------------------------------------------------------------------------
def cc_oracle(words: list[str], depth: int) -> tuple[list[int], list[str]]:
    """Re-read the blocks: each block must hold every address once; block t must equal block t-1 plus one.

    Returns the positions that must be scored and the value each must predict, derived from the *previous*
    block (never from the token being predicted)."""
    assert words[0] == "<bos>"
    m = 2**depth
    blocks, cur = [], None
    for i, w in enumerate(words[1:], start=1):
        if w == "#":
            cur = []
            blocks.append(cur)
        else:
            cur.append((i, w))
    positions, expected, prev = [], [], None
    for block in blocks:
        assert len(block) == m * (depth + 1)
        bits, value_at = {}, {}
        for k in range(m):
            group = block[k * (depth + 1) : (k + 1) * (depth + 1)]
            addr = int("".join(w[1] for _, w in group[:-1]), 2)
            assert all(w[0] == "A" for _, w in group[:-1]) and group[-1][1][0] == "B"
            bits[addr] = int(group[-1][1][1])
            value_at[addr] = group[-2][0]  # the last address token predicts the value
        assert sorted(bits) == list(range(m)), "a block must list every address exactly once"
        counter = sum(b << a for a, b in bits.items())
        if prev is not None:
            want = (prev + 1) % 2**m
            for a in range(m):
                positions.append(value_at[a])
                expected.append(f"B{(want >> a) & 1}")
        prev = counter
    order = sorted(range(len(positions)), key=positions.__getitem__)
    return [positions[i] for i in order], [expected[i] for i in order]


@FAST
@given(depth=st.integers(1, 4), blocks=st.integers(2, 5), shuffle=st.booleans(), seed=st.integers(0, 2**31))
def test_counter_chain_labels_match_oracle(depth, blocks, shuffle, seed):
    task = CounterChainTask(CounterChainConfig(depth=depth, blocks=blocks, shuffle=shuffle))
    ex = task.sample(depth, random.Random(seed))
    words = words_of(task, ex)
    positions, expected = cc_oracle(words, depth)
    assert scored(ex) == positions
    assert [words[i + 1] for i in positions] == expected
    assert len(ex.tokens) == seq_length(depth, blocks) == 1 + blocks * (1 + 2**depth * (depth + 1))


def test_counter_chain_known_lengths_and_fixed_order():
    assert seq_length(2, 4) == 53 and seq_length(3, 4) == 133 and seq_length(5, 4) == 773
    task = CounterChainTask(CounterChainConfig(depth=2, shuffle=False, n_train=5, n_val=2, n_test=2))
    ex = task.splits["train"][0]
    assert len(ex.tokens) == 53 and sum(ex.mask) == 3 * 4
    words = words_of(task, ex)
    block = words[2 : 2 + 12]  # unshuffled: addresses 00, 01, 10, 11 in order
    assert [block[k * 3] + block[k * 3 + 1] for k in range(4)] == ["A0A0", "A0A1", "A1A0", "A1A1"]


@pytest.mark.parametrize("split", ["iid", "depth", "upto"])
def test_counter_chain_splits_disjoint_and_ranged(split):
    cfg = CounterChainConfig(depth=2, n_train=300, n_val=40, n_test=40, train_depths=(1, 2), test_depths=(3, 3))
    task = CounterChainTask(cfg, seed=1, split=split)
    sp = task.splits
    train = {ex.tokens for ex in sp["train"]}
    held = [k for k in sp if k not in ("train", "test_ood")]
    assert all(ex.tokens not in train for k in held for ex in sp[k])
    if split == "depth":
        assert {ex.slices["depth"] for ex in sp["train"]} == {1, 2}
        assert {ex.slices["depth"] for ex in sp["test_ood"]} == {3}
    elif split == "upto":  # the cumulative protocol: train on depths 1..depth, held out at exactly depth
        assert set(sp) == {"train", "val", "test"}
        assert {ex.slices["depth"] for ex in sp["train"]} == {1, 2}
        assert {ex.slices["depth"] for ex in sp["val"] + sp["test"]} == {2}
        online = task.draw_online(random.Random(0), 200)
        assert {ex.slices["depth"] for ex in online} == {1, 2}
        assert not any(held_out_bucket(ex.tokens) for ex in online)
    else:
        assert {ex.slices["depth"] for k in sp for ex in sp[k]} == {2}
    again = CounterChainTask(cfg, seed=1, split=split).splits
    assert again == sp
    assert CounterChainTask(cfg, seed=2, split=split).splits["train"] != sp["train"]


def test_counter_chain_depth_one_still_disjoint():
    """At d=1 only 64 distinct sequences exist: the hash buckets still keep held-out sets out of training."""
    sp = CounterChainTask(CounterChainConfig(depth=1, n_train=200, n_val=20, n_test=20)).splits
    train = {ex.tokens for ex in sp["train"]}
    assert sp["test"] and all(ex.tokens not in train for ex in sp["test"] + sp["val"])


# -- nested-parity -------------------------------------------------------------------------------------------------
def np_oracle(words: list[str]) -> tuple[int, int, list[int]]:
    """(label, depth, positions of the shown leaf values) by recursive descent over the serialized tokens, memory
    parsed into a dict first; a shown leaf value must equal the memory's."""
    assert words[0] == "<bos>" and words[-2] == "?"
    memory: dict[str, int] = {}
    pos = 1
    if "Q" in words:
        while words[pos] != "Q":
            end = words.index(";", pos)
            name, eq, value = words[pos : end - 2], words[end - 2], words[end - 1]
            assert eq == "="
            memory["".join(name)] = int(value[1])
            pos = end + 1
        pos += 1
    offset = pos
    body = words[pos:-2]
    i = 0
    shown: list[int] = []

    def expr() -> tuple[int, int]:
        nonlocal i
        flip = 0
        if body[i] == "~":
            flip, i = 1, i + 1
        if body[i] == "(":
            i += 1
            left, dl = expr()
            assert body[i] == "^"
            i += 1
            right, dr = expr()
            assert body[i] == ")"
            i += 1
            return (left ^ right) ^ flip, 1 + max(dl, dr)
        if body[i] == "$":
            j = i + 1
            while j < len(body) and body[j] in ("A0", "A1"):
                j += 1
            value = memory["".join(body[i + 1 : j])]
            i = j
            if i < len(body) and body[i] in ("B0", "B1"):
                assert int(body[i][1]) == value, "a shown leaf value differs from the memory"
                shown.append(offset + i - 1)  # the last name token predicts it
                i += 1
            return value ^ flip, 0
        value = int(body[i][1])
        i += 1
        return value ^ flip, 0

    label, depth = expr()
    assert i == len(body)
    return label, depth, shown


@FAST
@given(variant=st.sampled_from(["mem", "flat"]), depth=st.integers(1, 5), seed=st.integers(0, 2**31),
       leaf_values=st.booleans())
def test_nested_parity_label_matches_oracle(variant, depth, seed, leaf_values):
    task = NestedParityTask(NestedParityConfig(variant=variant, leaf_values=leaf_values))
    ex = task.sample(depth, random.Random(seed))
    words = words_of(task, ex)
    label, parsed_depth, shown = np_oracle(words)
    assert words[-1] == f"Y{label}" and parsed_depth == depth == ex.slices["depth"]
    assert scored(ex) == shown + [len(ex.tokens) - 2]  # '?' (and the shown leaf values) are scored
    with_values = leaf_values and variant == "mem"
    assert len(shown) == (2**depth if with_values else 0)
    n_neg = words.count("~")
    leaves = 2**depth
    if variant == "mem":  # memory records (d+3 each), tree: 3 per inner node, d+1 per leaf, 1 per negation
        leaf_len = depth + 1 + with_values
        assert len(ex.tokens) == 1 + leaves * (depth + 3) + 1 + 3 * (leaves - 1) + leaves * leaf_len + n_neg + 2
        assert len(set(words[1 : words.index("Q")])) <= 6
    else:
        assert len(ex.tokens) == 1 + 3 * (leaves - 1) + leaves + n_neg + 2


def test_nested_parity_lengths_balance_and_splits():
    for depth, approx in ((3, 113), (4, 257), (5, 578)):
        task = NestedParityTask(NestedParityConfig(depth=depth, n_train=200, n_val=10, n_test=10), split="iid")
        lengths = [len(e.tokens) for e in task.splits["train"]]
        assert abs(statistics.mean(lengths) - approx) / approx < 0.03
    task = NestedParityTask(NestedParityConfig(n_train=900, n_val=30, n_test=30))
    sp = task.splits
    assert set(sp) == {"train", "val", "test_iid", "test_ood"}
    assert {e.slices["depth"] for e in sp["train"]} == {1, 2, 3}
    assert {e.slices["depth"] for e in sp["test_ood"]} == {4, 5}
    train = {e.tokens for e in sp["train"]}
    assert not any(e.tokens in train for e in sp["val"] + sp["test_iid"])
    assert 0.4 < statistics.mean(e.slices["label"] for e in sp["train"]) < 0.6
    assert task.chance == 0.5 and task.scoring == "teacher_forced"


# -- listops -------------------------------------------------------------------------------------------------------
def listops_oracle(words: list[str]) -> tuple[int, int]:
    """(value, depth) with an explicit stack over the token string."""
    stack: list[tuple[str, list[int]]] = []
    depth = best = 0
    result = None
    for w in words:
        if w.startswith("["):
            stack.append((w, []))
            depth += 1
            best = max(best, depth)
        elif w == "]":
            op, args = stack.pop()
            depth -= 1
            value = {"[MIN": min, "[MAX": max, "[SM": lambda a: sum(a) % 10,
                     "[MED": lambda a: int(statistics.median(a))}[op](args)
            if stack:
                stack[-1][1].append(value)
            else:
                result = value
        else:
            stack[-1][1].append(int(w)) if stack else None
            result = int(w) if not stack else result
    assert not stack
    return result, best


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_listops_mini_labels_match_oracle(seed):
    task = ListOpsMiniTask(ListOpsMiniConfig(n_train=30, n_val=5, n_test=5), seed=seed)
    for ex in task.splits["train"]:
        words = words_of(task, ex)
        assert words[0] == "<bos>" and words[-2] == "="
        value, depth = listops_oracle(words[1:-2])
        assert words[-1] == str(value) and depth == ex.slices["depth"] <= 4
        assert 20 < len(words) - 3 < 100
        assert scored(ex) == [len(ex.tokens) - 2]


def test_listops_unique_disjoint_and_standard_bounds():
    task = ListOpsMiniTask(ListOpsMiniConfig(n_train=400, n_val=50, n_test=50))
    sp = task.splits
    all_tokens = [e.tokens for k in sp for e in sp[k]]
    assert len(set(all_tokens)) == len(all_tokens) == 500
    std = load_task("listops", n_train=6, n_val=2, n_test=2)
    for ex in std.splits["train"]:
        words = words_of(std, ex)
        assert 500 < len(words) - 3 < 2000 and ex.slices["depth"] <= 9
        assert words[-1] == str(listops_oracle(words[1:-2])[0])
    assert std.chance == 0.1 and std.vocab.size == 18


# -- mqar ----------------------------------------------------------------------------------------------------------
@FAST
@given(seed=st.integers(0, 2**31), shape=st.sampled_from([(64, 4), (64, 8), (128, 16), (32, 2)]),
       random_fill=st.booleans(), layout=st.sampled_from(["zoology", "answer_next"]))
def test_mqar_labels_match_oracle(seed, shape, random_fill, layout):
    seq_len, kv = shape
    task = MQARTask(MQARConfig(seq_len=seq_len, num_kv_pairs=kv, random_non_queries=random_fill, n_train=3,
                               n_val=1, n_test=1, layout=layout), seed=seed)
    v = task.vocab
    for ex in task.splits["train"]:
        words, labels = v.decode(ex.tokens), v.decode(ex.labels)
        assert len(ex.tokens) == seq_len + 1 and max(ex.tokens) < v.size and 0 not in ex.tokens
        pairs = dict(zip(words[0 : 2 * kv : 2], words[1 : 2 * kv : 2], strict=True))
        assert len(pairs) == kv and all(k[0] == "k" for k in pairs) and all(x[0] == "v" for x in pairs.values())
        pos = scored(ex)
        assert len(pos) == kv and all(p >= 2 * kv and (p - 2 * kv) % 2 == 0 for p in pos)
        assert sorted(words[p] for p in pos) == sorted(pairs)
        assert all(labels[p] == pairs[words[p]] for p in pos)  # the label at a re-shown key is its value
        if layout == "answer_next":
            assert ex.targets is None and all(words[p + 1] == pairs[words[p]] for p in pos)
        elif not random_fill:
            assert all(words[p + 1] == "<fill>" for p in pos)
        if not random_fill:
            allowed = {"<fill>", *pairs} | (set(pairs.values()) if layout == "answer_next" else set())
            assert set(words[2 * kv :]) <= allowed
        assert words[-1] == "<fill>" or layout == "answer_next"  # Zoology's dropped extra slot
        assert ex.slices == {"num_kv_pairs": kv, "seq_len": seq_len}


def zoology_layout(keys, values, gaps, seq_len):
    """Inputs and labels of one example exactly as Zoology's multiquery_ar builds them (random_non_queries=False),
    re-derived from the facts of its code: ``queries`` holds the keys at 2*gap (values never enter the inputs),
    ``labels`` holds the values at 2*gap + context + 1 over L+1 slots and is then shifted left by one, and the
    inputs drop the last of the L+1 slots."""
    context = [t for kv in zip(keys, values, strict=True) for t in kv]
    queries = [0] * (seq_len - len(context) + 1)
    for k, g in zip(keys, gaps, strict=True):
        queries[2 * g] = k
    examples = context + queries
    labels = [-100] * (seq_len + 1)
    for val, g in zip(values, gaps, strict=True):
        labels[2 * g + len(context) + 1] = val
    return examples[:-1], labels[1:]


@FAST
@given(seed=st.integers(0, 2**31), shape=st.sampled_from([(64, 4), (16, 2), (128, 16)]))
def test_mqar_default_layout_is_zoology(seed, shape):
    """The default layout reproduces Zoology's inputs and labels position by position (its docstring example is
    the case V=12, L=16, D=2: ``2 8 4 7 0 0 4 0 ...`` with label 7 at the re-shown key 4)."""
    seq_len, kv = shape
    task = MQARTask(MQARConfig(seq_len=seq_len, num_kv_pairs=kv, random_non_queries=False, n_train=4, n_val=1,
                               n_test=1), seed=seed)
    fill = task.cfg.vocab_size
    for ex in task.splits["train"]:
        zoo = [0 if t == fill else t for t in ex.tokens]  # back to Zoology ids (0 = filler)
        keys, values = zoo[0 : 2 * kv : 2], zoo[1 : 2 * kv : 2]
        gaps = [(zoo.index(k, 2 * kv) - 2 * kv) // 2 for k in keys]
        inputs, labels = zoology_layout(keys, values, gaps, seq_len)
        assert zoo[:-1] == inputs
        assert [lab if m else -100 for lab, m in zip(ex.labels, ex.mask, strict=True)] == labels
    # Zoology's docstring example, literally
    inputs, labels = zoology_layout([2, 4], [8, 7], [4, 1], 16)
    assert inputs == [2, 8, 4, 7, 0, 0, 4, 0, 0, 0, 0, 0, 2, 0, 0, 0]
    assert labels[6] == 7 and labels[12] == 8 and sum(x != -100 for x in labels) == 2


def test_mqar_fig2_is_zoology_figure_2():
    from arena.tasks.mqar import MQARFig2Config

    cfg = MQARFig2Config()
    assert (cfg.vocab_size, cfg.seq_len, cfg.num_kv_pairs, cfg.random_non_queries) == (8192, 64, 4, False)
    assert (cfg.n_train, cfg.n_test, cfg.layout, cfg.power_a) == (100_000, 3000, "zoology", 0.01)
    assert set(cfg.test_configs) == {(128, 8), (256, 16)}


def test_mqar_gaps_follow_the_power_law_and_configs_are_checked():
    task = MQARTask(MQARConfig(n_train=400, n_val=1, n_test=1))
    gaps = [(p - 8) // 2 for ex in task.splits["train"] for p in scored(ex)]
    # a = 0.01 makes the slot distribution steep: the first slot is much likelier than the last one
    assert gaps.count(0) > 3 * gaps.count(27)
    with pytest.raises(ValueError):
        MQARConfig(seq_len=64, num_kv_pairs=20)
    with pytest.raises(ValueError):
        MQARConfig(vocab_size=64, seq_len=64)
    ood = MQARTask(MQARConfig(n_train=5, n_val=2, n_test=3), split="ood").splits
    assert {(e.slices["seq_len"], e.slices["num_kv_pairs"]) for e in ood["test_ood"]} == set(
        MQARConfig().test_configs)


# -- Chomsky hierarchy ---------------------------------------------------------------------------------------------
def _bits(s):
    return "".join(s)


CHOMSKY_ORACLES = {
    "parity_check": lambda x: [str(bin(int("1" + _bits(x), 2)).count("1") % 2 ^ 1)],
    "even_pairs": lambda x: [str(int(x[0] != x[-1]))],
    "modular_arithmetic": lambda x: [str(eval(" ".join(x)) % 5)],  # noqa: S307 - digits and + - * only
    "cycle_navigation": lambda x: [str(sum({"L": 4, "S": 0, "R": 1}[m] for m in x) % 5)],
    "reverse_string": lambda x: [x[len(x) - 1 - i] for i in range(len(x))],
    "duplicate_string": lambda x: list(_bits(x) * 2),
    "odds_first": lambda x: [x[i] for i in range(1, len(x), 2)] + [x[i] for i in range(0, len(x), 2)],
    "bucket_sort": lambda x: [d for d in "01234" for _ in range(x.count(d))],
}


def _stack_oracle(x):
    text = ""
    for w in x:
        if w in "01":
            text += w
        elif w == "POP":
            text = text[:-1]
        else:
            text += w[-1]
    return list(text[::-1]) + ["<end>"]


def _addition_oracle(x):
    if "+" not in x:
        return list(format(int(_bits(x)[::-1] or "0", 2), "b")[::-1]) + ["<end>"]
    i = x.index("+")
    total = int(_bits(x[:i])[::-1], 2) + int(_bits(x[i + 1 :])[::-1], 2)
    return list(format(total, "b")[::-1]) + ["<end>"]


def _equation_oracle(x):
    """Try every digit for x; the equation (no '*') must have exactly one solution."""
    if len(x) < 3:
        return ["0"]
    eq = x.index("=")
    lhs, rhs = "".join(x[:eq]), int(x[eq + 1])
    sols = [d for d in "01234" if eval(lhs.replace("x", d)) % 5 == rhs]  # noqa: S307 - digits, + - ( ) only
    assert len(sols) == 1, (lhs, rhs, sols)
    return sols


def _missing_oracle(x):
    if x == ["1"]:
        return ["1"]
    s = [b for b in x if b != "#"]
    half = len(s) // 2
    i = s.index("?")
    return [s[i + half] if i < half else s[i - half]]


def _multiplication_oracle(x):
    if "*" not in x:
        return ["0"] * (len(x) - 1) + ["<end>"]
    i = x.index("*")
    product = int(_bits(x[:i])[::-1], 2) * int(_bits(x[i + 1 :])[::-1], 2)
    return list(format(product, "b")[::-1]) + ["<end>"]


def _sqrt_oracle(x):
    v, lo, hi = int(_bits(x), 2), 0, 2 ** len(x)
    while hi - lo > 1:  # largest r with r*r <= v, by bisection
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if mid * mid <= v else (lo, mid)
    return list(format(lo, "b").zfill((len(x) + 1) // 2))


CHOMSKY_ORACLES["stack_manipulation"] = _stack_oracle
CHOMSKY_ORACLES["binary_addition"] = _addition_oracle
CHOMSKY_ORACLES["modular_arithmetic_brackets"] = lambda x: [str(eval("".join(x)) % 5)]  # noqa: S307 - as above
CHOMSKY_ORACLES["solve_equation"] = _equation_oracle
CHOMSKY_ORACLES["missing_duplicate_string"] = _missing_oracle
CHOMSKY_ORACLES["binary_multiplication"] = _multiplication_oracle
CHOMSKY_ORACLES["compute_sqrt"] = _sqrt_oracle
# output length as a function of the input length n (None: variable, ends with <end>)
OUT_LEN = {"parity_check": lambda n: 1, "even_pairs": lambda n: 1, "modular_arithmetic": lambda n: 1,
           "cycle_navigation": lambda n: 1, "reverse_string": lambda n: n, "duplicate_string": lambda n: 2 * n,
           "odds_first": lambda n: n, "bucket_sort": lambda n: n, "modular_arithmetic_brackets": lambda n: 1,
           "solve_equation": lambda n: 1, "missing_duplicate_string": lambda n: 1,
           "compute_sqrt": lambda n: (n + 1) // 2}


def test_every_chomsky_task_registered_and_oracled():
    names = [cls.name for cls in chomsky.TASK_CLASSES]
    assert names == ["parity_check", "even_pairs", "modular_arithmetic", "cycle_navigation", "reverse_string",
                     "stack_manipulation", "duplicate_string", "odds_first", "binary_addition", "bucket_sort",
                     "modular_arithmetic_brackets", "solve_equation", "missing_duplicate_string",
                     "binary_multiplication", "compute_sqrt"]
    assert set(names) == set(CHOMSKY_ORACLES)
    for name in names:
        assert load_task(name, n_train=2, n_val=2, n_test_per_length=1).name == name


@settings(max_examples=60, deadline=None)
@given(cls=st.sampled_from(chomsky.TASK_CLASSES), n=st.integers(1, 60), seed=st.integers(0, 2**31),
       readout=st.sampled_from(["blank", "autoregressive"]))
def test_chomsky_labels_match_oracle(cls, n, seed, readout):
    task = cls(chomsky.ChomskyConfig(readout=readout))
    ex = task.sample(n, random.Random(seed))
    words = words_of(task, ex)
    assert words[0] == "<bos>" and ex.slices == {"length": n} and max(ex.tokens) < task.vocab.size
    first_blank = words.index("_")
    x = words[1:first_blank]
    want_len = n - (1 - n % 2) if cls.name == "modular_arithmetic" else n
    assert len(x) == want_len
    y = CHOMSKY_ORACLES[cls.name](x)
    if cls.name in OUT_LEN:
        assert len(y) == OUT_LEN[cls.name](n)
    else:
        assert y[-1] == "<end>" and len(y) <= n + 1
    if readout == "blank":
        j = len(words) - 1 - first_blank  # number of blanks read before the answer
        assert words[first_blank : first_blank + j] == ["_"] * j and 1 <= j <= len(y)
        assert words[-1] == y[j - 1] and scored(ex) == [len(ex.tokens) - 2]
    else:
        assert words[first_blank + 1 :] == y
        assert scored(ex) == list(range(first_blank, len(ex.tokens) - 1))


def test_chomsky_splits_lengths_and_balance():
    task = load_task("parity_check", n_train=400, n_val=50, n_test_per_length=3, eval_max_length=60)
    sp = task.splits
    assert {e.slices["length"] for e in sp["train"]} <= set(range(1, 41))
    assert len({e.slices["length"] for e in sp["train"]}) > 30
    test_lengths = [e.slices["length"] for e in sp["test"]]
    assert sorted(set(test_lengths)) == list(range(41, 61)) and all(test_lengths.count(n) == 3 for n in range(41, 61))
    assert task.chance == 0.5 and load_task("bucket_sort", n_train=1).chance == 0.2
    assert task.metric == "accuracy" and task.scoring == "teacher_forced"
    again = load_task("parity_check", n_train=400, n_val=50, n_test_per_length=3, eval_max_length=60).splits
    assert again == sp
    other = load_task("parity_check", seed=1, n_train=400, n_val=50, n_test_per_length=3, eval_max_length=60)
    assert other.splits["train"] != sp["train"]
    adds = load_task("binary_addition", n_train=300, n_val=1, n_test_per_length=1).splits["train"]
    ones = [e for e in adds if e.slices["length"] >= 3]
    assert ones and all("+" in words_of(load_task("binary_addition", n_train=1), e) for e in ones)


@pytest.mark.parametrize("name", ["modular_arithmetic_brackets", "solve_equation", "missing_duplicate_string",
                                  "binary_multiplication", "compute_sqrt"])
def test_the_five_added_chomsky_generators_on_every_length(name):
    """Every length 1..120 (past the default test range), 5 draws each: exact input length, balanced brackets,
    the oracle's answer, and the official small-length conventions."""
    cls = next(c for c in chomsky.TASK_CLASSES if c.name == name)
    rng = random.Random(name)
    for n in range(1, 121):
        for _ in range(5):
            x, y = cls.generate(n, rng)
            assert len(x) == n and set(x) <= set(cls.symbols) and set(y) <= set(cls.symbols)
            assert y == CHOMSKY_ORACLES[name](x)
            if name in ("modular_arithmetic_brackets", "solve_equation"):
                depth = 0
                for w in x:
                    depth += (w == "(") - (w == ")")
                    assert depth >= 0
                assert depth == 0
            if name == "solve_equation" and n >= 3:
                assert x.count("x") == 1 and x[-2] == "=" and "*" not in x
            if name == "missing_duplicate_string" and n > 1:
                assert x.count("?") == 1 and x.count("#") == n % 2
            if name == "binary_multiplication" and n >= 3:
                assert x.count("*") == 1 and len(y) <= n


# -- recall-depth --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [1, 2, 4, 6])
def test_recall_depth_asks_every_key_once_and_never_shows_an_answer(depth):
    from arena.tasks.recall_depth import RecallDepthConfig, RecallDepthTask, seq_len

    task = RecallDepthTask(RecallDepthConfig(depth=depth, n_train=20, n_val=10, n_test=10), seed=depth)
    d_pairs, v = 1 << depth, task.vocab
    train = {e.tokens for e in task.splits["train"]}
    for split, examples in task.splits.items():
        for ex in examples:
            words, labels = v.decode(ex.tokens), v.decode(ex.labels)
            assert len(ex.tokens) == seq_len(depth) + 1 == 4 * d_pairs + 9
            pairs = dict(zip(words[0 : 2 * d_pairs : 2], words[1 : 2 * d_pairs : 2], strict=True))
            assert len(pairs) == d_pairs  # distinct keys
            pos = scored(ex)
            assert sorted(words[p] for p in pos) == sorted(pairs)  # every key asked exactly once
            assert all(labels[p] == pairs[words[p]] for p in pos)
            assert set(words[2 * d_pairs :]) <= {"<fill>", *pairs}  # no value after the pairs: answers are labels
            if split != "train":
                assert ex.tokens not in train
    assert task.chance == 2 / 256
    with pytest.raises(ValueError, match="distinct keys"):
        RecallDepthConfig(depth=7, vocab_size=128)


@pytest.mark.parametrize(("depths", "field"), [({"test_depths": (4, 5)}, "test_depths"),
                                               ({"train_depths": (1, 5), "test_depths": (5, 5)}, "train_depths")])
def test_recall_depth_split_depth_refuses_depths_the_vocabulary_cannot_hold(depths, field):
    """Split 'depth' uses train_depths/test_depths, not `depth`: a depth too deep for the keys is refused when the
    task is built, naming the field, instead of failing while the splits are drawn; the same config works under
    split 'iid' (which uses `depth` alone) and under 'depth' once the field is lowered."""
    from arena.tasks.recall_depth import RecallDepthConfig, RecallDepthTask

    cfg = RecallDepthConfig(vocab_size=40, n_train=4, n_val=4, n_test=4, **depths)
    with pytest.raises(ValueError, match=rf"task\.{field} .* reaches depth 5,.* lower task\.{field}"):
        RecallDepthTask(cfg, split="depth")
    assert RecallDepthTask(cfg, split="iid").splits["val"]
    ok = RecallDepthConfig(vocab_size=40, n_train=4, n_val=4, n_test=4, train_depths=(1, 3), test_depths=(4, 4))
    assert {e.slices["depth"] for e in RecallDepthTask(ok, split="depth").splits["test_ood"]} == {4}
