"""scan-depth SD(d): labels against an independent recursive-descent oracle, seeds, splits, depths 0-6."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from arena.data import load_task
from arena.tasks.scan_depth import ScanDepthConfig, ScanDepthTask, interpret_tree

# -- independent oracle: E -> "(" E conj E ")" | leaf; leaf semantics from a lookup table built by hand ------------
_ACT = {"walk": ["I_WALK"], "look": ["I_LOOK"], "run": ["I_RUN"], "jump": ["I_JUMP"], "turn": []}
_TURN = {"left": "I_TURN_LEFT", "right": "I_TURN_RIGHT"}


def _leaf(words: list[str]) -> list[str]:
    times = {"twice": 2, "thrice": 3}.get(words[-1], 1)
    core = words[:-1] if times > 1 else words
    verb, rest = core[0], core[1:]
    if not rest:
        assert verb != "turn"
        out = list(_ACT[verb])
    elif rest[0] == "opposite":
        out = [_TURN[rest[1]]] * 2 + _ACT[verb]
    else:
        (side,) = rest
        out = [_TURN[side]] + _ACT[verb]
    return out * times


def oracle(words: list[str]) -> tuple[list[str], int]:
    """(actions, depth) by recursive descent."""
    pos = 0

    def expr() -> tuple[list[str], int]:
        nonlocal pos
        if words[pos] == "(":
            pos += 1
            left, dl = expr()
            conj = words[pos]
            pos += 1
            right, dr = expr()
            assert words[pos] == ")", words
            pos += 1
            assert conj in ("and", "after")
            return (left + right if conj == "and" else right + left), 1 + max(dl, dr)
        start = pos
        while pos < len(words) and words[pos] not in ("(", ")", "and", "after"):
            pos += 1
        return _leaf(words[start:pos]), 0

    result = expr()
    assert pos == len(words), "trailing words"
    return result


_leaves = st.builds(
    lambda verb, mod, rep: " ".join(w for w in (verb, *mod, rep) if w),
    st.sampled_from(["walk", "look", "run", "jump", "turn"]),
    st.sampled_from([(), ("left",), ("right",), ("opposite", "left"), ("opposite", "right")]),
    st.sampled_from(["", "twice", "thrice"]),
).filter(lambda s: not s.startswith("turn") or len(s.split()) > 1 and s.split()[1] not in ("twice", "thrice"))


@st.composite
def trees(draw, max_depth: int = 6) -> list[str]:
    depth = draw(st.integers(0, max_depth))

    def build(d: int) -> list[str]:
        if d == 0:
            return draw(_leaves).split()
        conj = draw(st.sampled_from(["and", "after"]))
        return ["(", *build(d - 1), conj, *build(d - 1), ")"]

    return build(depth)


@settings(max_examples=300, deadline=None)
@given(trees())
def test_labels_equal_oracle(words):
    task = ScanDepthTask(ScanDepthConfig())
    ex = task.encode(words)
    actions, depth = oracle(words)
    assert interpret_tree(words) == actions
    d = task.describe_example(ex)
    assert d["target"] == " ".join(actions) + " <eos>"
    assert ex.slices["depth"] == depth


SMALL = dict(n_train=300, n_val=20, n_test_per_depth=10)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000))
def test_seeds_give_identical_data(seed):
    cfg = ScanDepthConfig(**SMALL)
    a, b = ScanDepthTask(cfg, seed=seed).splits, ScanDepthTask(cfg, seed=seed).splits
    assert a == b
    assert a["test_ood"] != ScanDepthTask(cfg, seed=seed + 1).splits["test_ood"]


def _inputs(task, exs):
    return [task.describe_example(e)["input"] for e in exs]


@pytest.mark.parametrize("split", ["depth", "iid"])
def test_splits_disjoint_and_in_range(split):
    cfg = ScanDepthConfig(train_depths=(0, 3), test_depths=(4, 6), iid_depths=(0, 6), **SMALL)
    task = ScanDepthTask(cfg, seed=3, split=split)
    sp = task.splits
    expected = {"train", "val", "test_iid", "test_ood"} if split == "depth" else {"train", "val", "test"}
    assert set(sp) == expected
    train = set(_inputs(task, sp["train"]))
    for k, v in sp.items():
        if k != "train":
            assert not train & set(_inputs(task, v)), k
    hi = 3 if split == "depth" else 6
    assert {e.slices["depth"] for e in sp["train"]} == set(range(hi + 1))
    if split == "depth":
        assert {e.slices["depth"] for e in sp["test_ood"]} == {4, 5, 6}
    for exs in sp.values():  # every generated label matches the oracle
        for e in exs[:60]:
            words = task.describe_example(e)["input"].split()[1:-1]
            actions, depth = oracle(words)
            assert task.describe_example(e)["target"].split()[:-1] == actions
            assert e.slices["depth"] == depth
            assert e.slices["out_len"] == 8 * (len(actions) // 8)


def test_depth_zero_leaves_all_in_training():
    task = ScanDepthTask(ScanDepthConfig(**SMALL))
    leaves = [e for e in task.splits["train"] if e.slices["depth"] == 0]
    assert len(leaves) == 72


@pytest.mark.parametrize("bad", [dict(train_depths=(0, 0)), dict(test_depths=(5, 7)), dict(iid_depths=(3, 2)),
                                 dict(n_train=0)])
def test_config_validation(bad):
    with pytest.raises(ValidationError):
        ScanDepthConfig(**bad)


def test_registry_and_data_api():
    task = load_task("scan-depth", split="iid", **SMALL)
    assert isinstance(task, ScanDepthTask) and task.scoring == "generate" and task.chance == 0.0


def test_cli_export_jsonl(tmp_path):
    import json

    from typer.testing import CliRunner

    from arena.cli.app import app

    args = ["data", "export", "scan-depth", "--split", "depth", "--out", str(tmp_path), "--set", "n_train=300",
            "--set", "n_val=20", "--set", "n_test_per_depth=10", "--set", "test_depths=[4,6]"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    sizes = {p.name: len(p.read_text().splitlines()) for p in tmp_path.iterdir()}
    assert sizes == {"train.jsonl": 300, "val.jsonl": 18, "test_iid.jsonl": 30, "test_ood.jsonl": 30}
    for line in (tmp_path / "test_ood.jsonl").read_text().splitlines():
        row = json.loads(line)
        actions, depth = oracle(row["input"].split()[1:-1])
        assert row["target"] == " ".join(actions) + " <eos>" and row["slices"]["depth"] == depth >= 4
