"""SCAN: exact official counts, disjointness, labels against an independent parser, official-file reader, CLI."""

from __future__ import annotations

import re
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from arena.data import export_task, load_task, sample_batch
from arena.errors import ArenaError
from arena.tasks.scan import SPLITS, ScanConfig, ScanTask, split_lines
from arena.tasks.scan_grammar import commands, interpret, operator_count

LINE = re.compile(r"^IN: [a-z ]+ OUT: [A-Z_ ]+$")

# -- an independent oracle: recursive descent over C -> S (and|after) S | S; S -> V [twice|thrice]; V -> ... -----
_PRIM = {"walk": "WALK", "look": "LOOK", "run": "RUN", "jump": "JUMP"}
_SIDE = {"left": "TURN_LEFT", "right": "TURN_RIGHT"}


class _Parser:
    def __init__(self, text: str):
        self.toks, self.i, self.ops = text.split(), 0, 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, allowed) -> str:
        tok = self.peek()
        if tok not in allowed:
            raise SyntaxError(f"expected one of {sorted(allowed)} at {self.i} in {self.toks}, got {tok}")
        self.i += 1
        return tok

    def command(self) -> list[str]:
        first = self.sentence()
        if self.peek() in ("and", "after"):
            conj = self.take({"and", "after"})
            self.ops += 1
            second = self.sentence()
            first = first + second if conj == "and" else second + first
        if self.peek() is not None:
            raise SyntaxError(f"trailing tokens {self.toks[self.i:]}")
        return ["I_" + a for a in first]

    def sentence(self) -> list[str]:
        body = self.verb_phrase()
        rep = {"twice": 2, "thrice": 3}.get(self.peek() or "")
        if rep:
            self.i += 1
            self.ops += 1
            body = body * rep
        return body

    def verb_phrase(self) -> list[str]:
        head = self.take(set(_PRIM) | {"turn"})
        own = [] if head == "turn" else [_PRIM[head]]
        mod = self.peek() if self.peek() in ("opposite", "around") else None
        if mod:
            self.i += 1
            self.ops += 1
        if self.peek() not in _SIDE:
            if head == "turn" or mod:
                raise SyntaxError("turn/opposite/around need a direction")
            return own
        side = _SIDE[self.take(set(_SIDE))]
        self.ops += 1
        if mod == "around":
            return ([side] + own) * 4
        if mod == "opposite":
            return [side, side] + own
        return [side] + own


def oracle(text: str) -> tuple[list[str], int]:
    p = _Parser(text)
    return p.command(), p.ops


ALL = list(commands())
ALL_SET = set(ALL)
# (train lines, unique train commands, test lines) from SPECS.md §1
EXPECTED = {
    "simple": (16_728, 16_728, 4_182),
    "length": (16_990, 16_990, 3_920),
    "addprim_jump": (14_670, 13_204, 7_706),
    "addprim_turn_left": (21_890, 19_702, 1_208),
    "template_around_right": (15_225, 15_225, 4_476),
    "template_opposite_right": (15_225, 15_225, 4_476),
    "template_right": (15_225, 15_225, 4_476),
    "template_jump_around_right": (18_528, 18_528, 1_173),
    "depth": (17_710, 17_710, 3_200),
}


def test_grammar_has_20910_distinct_commands_all_labelled_like_the_oracle():
    assert len(ALL) == 20_910 == len(ALL_SET)
    for c in ALL:
        actions, ops = oracle(c)
        assert interpret(c) == actions, c
        assert operator_count(c) == ops, c
    assert max(len(c.split()) for c in ALL) == 9 and max(len(interpret(c)) for c in ALL) == 48


def test_operator_count_distribution_matches_specs():
    assert Counter(operator_count(c) for c in ALL) == {0: 4, 1: 50, 2: 328, 3: 1328, 4: 3520, 5: 6080, 6: 6400,
                                                      7: 3200}


@pytest.mark.parametrize("split", SPLITS)
def test_split_counts_and_disjointness(split):
    lines = split_lines(split)
    train, test = lines["train"], lines["test"]
    n_train, n_unique, n_test = EXPECTED[split]
    assert (len(train), len(set(train)), len(test), len(set(test))) == (n_train, n_unique, n_test, n_test)
    assert not set(train) & set(test)
    assert set(train) | set(test) <= ALL_SET
    dup = {c: k for c, k in Counter(train).items() if k > 1}
    if split == "addprim_jump":
        assert dup == {"jump": 1_467}
    elif split == "addprim_turn_left":
        assert dup == {"turn left": 2_189}
    else:
        assert dup == {}


def test_split_rules_in_detail():
    length = split_lines("length")
    assert max(len(interpret(c)) for c in length["train"]) == 22
    assert {len(interpret(c)) for c in length["test"]} == {24, 25, 26, 27, 28, 30, 32, 33, 36, 40, 48}
    jump = split_lines("addprim_jump")
    assert all("jump" not in c.split() or c == "jump" for c in jump["train"])
    assert all("jump" in c.split() and c != "jump" for c in jump["test"])
    assert set(jump["train"]) | set(jump["test"]) == ALL_SET
    tl = split_lines("addprim_turn_left")
    assert "turn opposite left" in tl["train"] and "walk left" in tl["train"]
    assert set(tl["train"]) | set(tl["test"]) == ALL_SET
    for t in ("around_right", "opposite_right", "right", "jump_around_right"):
        s = split_lines(f"template_{t}")
        assert len(ALL_SET - set(s["train"]) - set(s["test"])) == 1_209  # the "turn <t>" commands, in neither
    right = split_lines("template_right")
    assert "walk opposite right" in right["train"] and "turn around right" in right["train"]
    assert "walk right" in right["test"]
    # operator-count profile of the official test sets (SPECS.md §1)
    assert Counter(operator_count(c) for c in length["test"]) == {3: 8, 4: 128, 5: 576, 6: 1536, 7: 1672}
    assert Counter(operator_count(c) for c in jump["test"]) == {1: 18, 2: 128, 3: 520, 4: 1344, 5: 2240, 6: 2304,
                                                                7: 1152}
    ar = split_lines("template_around_right")
    assert Counter(operator_count(c) for c in ar["test"]) == {2: 4, 3: 72, 4: 416, 5: 1168, 6: 1728, 7: 1088}


def test_depth_split_knob():
    lines = split_lines("depth", train_max_depth=5)
    assert (len(lines["train"]), len(lines["test"])) == (11_310, 9_600)
    assert max(operator_count(c) for c in lines["train"]) == 5 == min(operator_count(c) for c in lines["test"]) - 1


def test_seeds():
    a, b, c = split_lines("simple", seed=0), split_lines("simple", seed=0), split_lines("simple", seed=1)
    assert a == b and set(a["test"]) != set(c["test"])
    # rule-based splits are the same multiset for every seed
    assert Counter(split_lines("addprim_jump", seed=3)["train"]) == Counter(split_lines("addprim_jump")["train"])


def _cmd(task, ex) -> str:
    return task.describe_example(ex)["input"].removeprefix("<bos> ").removesuffix(" <sep>")


def test_task_examples_val_and_slices():
    task = ScanTask(ScanConfig(), split="addprim_jump")
    sp = task.splits
    assert set(sp) == {"train", "val", "test"}
    assert (len(sp["train"]), len(sp["val"]), len(sp["test"])) == (14_406, 264, 7_706)
    cmds = {k: [_cmd(task, e) for e in v] for k, v in sp.items()}
    # val is carved out of the train multiset: together they are exactly the official train lines
    assert Counter(cmds["train"] + cmds["val"]) == Counter(split_lines("addprim_jump")["train"])
    assert not set(cmds["val"]) & set(cmds["train"]) and not set(cmds["val"]) & set(cmds["test"])
    assert cmds["train"].count("jump") == 1_467
    for ex in sp["test"][:500] + sp["val"][:100]:
        d = task.describe_example(ex)
        actions, ops = oracle(_cmd(task, ex))
        assert d["target"] == " ".join(actions) + " <eos>"
        assert ex.slices == {"depth": ops, "out_len": len(actions)}
        assert ex.mask == tuple(i >= ex.prompt_len - 1 for i in range(len(ex.tokens) - 1))
    assert task.vocab.tokens[0] == "<pad>" and task.scoring == "generate" and task.chance == 0.0


def test_caps():
    task = load_task("scan", split="length", n_train_max=100, n_test_max=30)
    assert [len(task.splits[k]) for k in ("train", "val", "test")] == [100, 30, 30]


def test_official_dir_reads_an_export_and_repo_layout(tmp_path):
    gen = load_task("scan", split="addprim_jump")
    written = export_task(gen, tmp_path / "flat")
    assert written == {"train.txt": 14_670, "test.txt": 7_706}
    back = load_task("scan", split="addprim_jump", official_dir=str(tmp_path / "flat"))
    assert back.splits == gen.splits
    repo = tmp_path / "repo" / "add_prim_split"
    repo.mkdir(parents=True)
    (repo / "tasks_train_addprim_jump.txt").write_text((tmp_path / "flat" / "train.txt").read_text())
    (repo / "tasks_test_addprim_jump.txt").write_text((tmp_path / "flat" / "test.txt").read_text())
    again = load_task("scan", split="addprim_jump", official_dir=str(tmp_path / "repo"))
    assert again.splits == gen.splits


@pytest.mark.parametrize("bad", ["IN: walk OUT: I_WALK ", "IN: walk  OUT: I_WALK", "walk OUT: I_WALK",
                                 "IN: walk OUT: I_WALKS", "IN: walkk OUT: I_WALK"])
def test_official_dir_rejects_malformed_line_with_its_number(tmp_path, bad):
    good = "IN: walk OUT: I_WALK\nIN: run twice OUT: I_RUN I_RUN\n"
    (tmp_path / "train.txt").write_text(good + bad + "\n")
    (tmp_path / "test.txt").write_text(good)
    task = load_task("scan", split="length", official_dir=str(tmp_path))
    with pytest.raises(ArenaError, match=r"train\.txt:3:"):
        _ = task.splits


def test_official_dir_missing_files_and_depth(tmp_path):
    with pytest.raises(ArenaError, match="no official SCAN files"):
        _ = load_task("scan", split="length", official_dir=str(tmp_path)).splits
    with pytest.raises(ArenaError, match="no official file"):
        _ = load_task("scan", split="depth", official_dir=str(tmp_path)).splits


def test_sample_batch():
    task = load_task("scan", split="simple", n_train_max=200)
    x, y, slices = sample_batch(task, "train", n=8, seed=1)
    x2, y2, _ = sample_batch(task, "train", n=8, seed=1)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert x.shape == y.shape and x.dtype == torch.long and x.shape[0] == 8
    assert set(slices) == {"depth", "out_len"} and slices["depth"].shape == (8,)
    sep, eos = task.vocab.id("<sep>"), task.vocab.id("<eos>")
    for i in range(8):
        scored = y[i][y[i] != -100].tolist()
        assert scored[-1] == eos and len(scored) == int(slices["out_len"][i]) + 1
        first = int((y[i] != -100).nonzero()[0])
        assert int(x[i, first]) == sep  # the first scored prediction is made at <sep>


def test_cli_export_addprim_jump(tmp_path):
    from arena.cli.app import app

    out = tmp_path / "tmp"
    res = CliRunner().invoke(app, ["data", "export", "scan", "--split", "addprim_jump", "--out", str(out)])
    assert res.exit_code == 0, res.output
    train = (out / "train.txt").read_text().splitlines()
    test = (out / "test.txt").read_text().splitlines()
    assert (len(train), len(set(train)), len(test)) == (14_670, 13_204, 7_706)
    assert train.count("IN: jump OUT: I_JUMP") == 1_467
    assert all(LINE.match(line) for line in train + test)
    assert all(oracle(line[4:].split(" OUT: ")[0])[0] == line.split(" OUT: ")[1].split() for line in test)


def test_cli_errors_exit_2(tmp_path):
    from arena.cli.app import app

    r = CliRunner()
    res = r.invoke(app, ["data", "export", "scan", "--set", "trian_max_depth=3", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "trian_max_depth" in res.output and "train_max_depth" in res.output
    res = r.invoke(app, ["data", "export", "scna", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "did you mean 'scan'" in res.output
    res = r.invoke(app, ["data", "export", "scan", "--set", "train_max_depth=9", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "train_max_depth" in res.output


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ALL))
def test_property_interpretation_equals_oracle(command):
    assert interpret(command) == oracle(command)[0]


def test_cli_show():
    from arena.cli.app import app

    res = CliRunner().invoke(app, ["data", "show", "scan", "--split", "template_right", "--which", "test", "-n", "2"])
    assert res.exit_code == 0, res.output
    assert "train: 14921  val: 304  test: 4476" in res.output
    assert len([line for line in res.output.splitlines() if line.startswith("{")]) == 2
