"""LexSM-164 (architectures/state_machine.py): parameter count, skeleton expressiveness, forward/lexicon agreement,
refusal of unsupported tasks, learning from data (fast smoke test; full SCAN splits, the shuffled-targets control
and vocabulary-permutation invariance are marked slow)."""

from __future__ import annotations

import json
import random

import pytest
import torch

from arena.api import Example, ModelShape, Task, TaskConfig, Vocab
from arena.architectures.state_machine import StateMachine, StateMachineConfig
from arena.errors import ArenaError
from arena.evaluate import greedy_generate
from arena.registry import get_arch
from arena.tasks.scan_grammar import ACTIONS, INPUT_WORDS, commands, interpret

# the lexicon a correct SCAN solution needs (written here, in the test, from the grammar's semantics)
REFERENCE = {
    "words": {"walk": "PRIM(I_WALK)", "look": "PRIM(I_LOOK)", "run": "PRIM(I_RUN)", "jump": "PRIM(I_JUMP)",
              "turn": "PRIM(<eps>)", "left": "DIR(I_TURN_LEFT)", "right": "DIR(I_TURN_RIGHT)",
              "opposite": "AMUL(x2)", "around": "LOOP(x4)", "twice": "LOOP(x2)", "thrice": "LOOP(x3)",
              "and": "CONJ(keep)", "after": "CONJ(swap)"},
    "template": "d^a p",
}


class MiniScan(Task):
    """A small in-test SCAN task: split rules of the official ``addprim_jump`` and ``length`` splits, optionally
    on a random subset of the training commands, with a renaming of the input words."""

    name = "scan"
    scoring = "generate"
    default_split = "addprim_jump"
    split_names = ("addprim_jump", "length")

    def __init__(self, split: str = "addprim_jump", seed: int = 0, n_train: int | None = None,
                 rename: dict[str, str] | None = None, n_test: int | None = None, max_words: int | None = None):
        super().__init__(TaskConfig(), seed, split)
        self.n_train, self.n_test, self.rename, self.max_words = n_train, n_test, rename or {}, max_words
        words = tuple(self.rename.get(w, w) for w in INPUT_WORDS)
        self._vocab = Vocab(("<pad>", "<bos>", "<sep>", "<eos>") + words + ACTIONS)

    @property
    def vocab(self) -> Vocab:
        return self._vocab

    def encode(self, command: str) -> Example:
        prompt = ("<bos>", *(self.rename.get(w, w) for w in command.split()), "<sep>")
        tokens = self.vocab.ids(prompt + tuple(interpret(command)) + ("<eos>",))
        mask = tuple(i >= len(prompt) - 1 for i in range(len(tokens) - 1))
        return Example(tokens=tokens, mask=mask, prompt_len=len(prompt))

    def build_splits(self) -> dict[str, list[Example]]:
        cs = [c for c in commands() if len(c.split()) <= (self.max_words or 9)]
        if self.split == "addprim_jump":
            train = [c for c in cs if "jump" not in c.split()]
            test = [c for c in cs if "jump" in c.split() and c != "jump"]
            extra = ["jump"]
        else:
            train = [c for c in cs if len(interpret(c)) <= 22]
            test = [c for c in cs if len(interpret(c)) >= 24]
            extra = []
        rng = random.Random(self.seed)
        if self.n_train:
            train = rng.sample(train, self.n_train)
        if self.n_test:
            test = rng.sample(test, self.n_test)
        return {"train": [self.encode(c) for c in train + extra], "test": [self.encode(c) for c in test]}


class Unsupported(MiniScan):
    name = "mqar"


def build(**cfg) -> StateMachine:
    spec = get_arch("state-machine")
    return spec.factory(ModelShape(vocab_size=23, d_model=1, n_layers=1, max_seq_len=64), StateMachineConfig(**cfg))


def test_exactly_164_parameters_and_metadata():
    spec = get_arch("state-machine")
    m = build()
    assert sum(p.numel() for p in m.parameters()) == 164 == spec.params(None, StateMachineConfig())
    assert sorted(p.numel() for p in m.parameters()) == [8, 65, 91]
    assert all(isinstance(p, torch.nn.Parameter) for p in m.parameters())
    assert spec.flops(None, StateMachineConfig(), 10) is None
    assert spec.task_specific and spec.trainer == "custom" and set(spec.supported_tasks) == {"scan", "scan-depth",
                                                                                            "scan-shift",
                                                                                            "nested-parity"}
    parity = build(skeleton="parity")
    assert sum(p.numel() for p in parity.parameters()) == 80 == spec.params(None, StateMachineConfig(skeleton="parity"))
    size = m.skeleton_size()
    assert 20 < size["lines"] < 120 and 200 < size["gzip_bytes"] < 2000


def test_refuses_unsupported_tasks_with_a_clear_message():
    m = build()
    with pytest.raises(ArenaError, match=r"task-specific.*scan, scan-depth, scan-shift, nested-parity.*'mqar'"):
        m.fit(Unsupported(n_train=20), max_steps=1, seed=0)
    from arena.registry import get_task

    np_spec = get_task("nested-parity")
    with pytest.raises(ArenaError, match="variant=flat"):
        m.fit(np_spec.cls(np_spec.config(variant="mem", n_train=20, n_val=5, n_test=5)), max_steps=1, seed=0)


def test_skeleton_with_the_reference_lexicon_computes_all_of_scan():
    task = MiniScan("addprim_jump", n_train=50)  # "around" etc. must be among the training words
    assert len({w for e in task.splits["train"] for w in task.vocab.decode(e.tokens[1: e.prompt_len - 1])}) == 13
    m = build()
    m.bind(task)
    m.load_lexicon(REFERENCE)
    assert m.learned_lexicon() == REFERENCE
    for c in commands():
        assert m.predict(c.split()) == interpret(c), c


def test_a_clause_of_many_multipliers_is_rejected_before_its_output_is_built():
    """A sampled lexicon can make every word of a long clause a multiplier (factor up to 7 each): on scan-shift's
    14-word clauses that once built 69M-symbol outputs and ran a sweep out of memory. The skeleton rejects any
    clause whose output could exceed MAX_OUT symbols; clauses below the bound are executed as before."""
    import arena.architectures.state_machine_skeletons as sk

    emit = [(i,) for i in range(6)] + [()]
    lex = [(sk.PRIM, 0)] + [(sk.LOOP, 6)] * 12  # row 0 a primitive, rows 1.. clause multipliers x7
    assert sk.scan_clause((0, 1, 2, 3), lex, 7, emit) == (0,) * 7 ** 3  # 343 symbols: built
    assert sk.scan_clause((0, 1, 2, 3, 4), lex, 7, emit) == (0,) * 7 ** 4  # 2,401 <= MAX_OUT = 4,096: built
    assert sk.scan_clause((0, 1, 2, 3, 4, 5), lex, 7, emit) is None  # 16,807 > MAX_OUT: rejected
    assert sk.scan_execute(tuple(range(13)), lex, 7, emit) is None  # 7^12 = 1.4e10 symbols: rejected, not built
    assert sk.MAX_OUT >= 2 * 4 * 3  # SCAN's longest clause ("jump around left thrice": 24 actions) is far below


def test_forward_logits_follow_the_lexicon_and_greedy_generation_scores_them():
    task = MiniScan("length", n_train=200, n_test=60)
    m = build()
    assert torch.all(m(torch.ones(2, 5, dtype=torch.long)) == 0)  # before binding: uniform logits
    m.bind(task)
    m.load_lexicon(REFERENCE)
    test = task.splits["test"]
    gens = greedy_generate(m, test, batch_size=16)
    assert all(g[: len(e.tokens) - e.prompt_len] == list(e.tokens[e.prompt_len:]) for g, e in zip(gens, test, strict=True))
    # teacher-forced alignment: at position t >= prompt_len - 1 the argmax is token t + 1
    ex = test[0]
    logits = m(torch.tensor([ex.tokens[:-1]]))
    pred = logits[0].argmax(-1).tolist()
    assert pred[ex.prompt_len - 1:] == list(ex.tokens[ex.prompt_len:])
    # a lexicon with "twice" read as x3 changes the output accordingly
    wrong = json.loads(json.dumps(REFERENCE))
    wrong["words"]["twice"] = "LOOP(x3)"
    m.load_lexicon(wrong)
    assert m.predict(["walk", "twice"]) == ["I_WALK"] * 3


def test_learns_a_short_addprim_jump_split_from_data():
    """Fast version of the headline result: the commands of at most 3 words, add-jump rule (train: no "jump" but
    the bare command; test: every other command with "jump"); a shortened schedule (150 steps)."""
    task = MiniScan("addprim_jump", max_words=3)
    m = build(entropy_start=0.1, max_steps=150)
    summary = m.fit(task, max_steps=1000, seed=0)  # capped by the config's 150
    assert summary["steps"] <= 150 and summary["params"] == 164
    assert summary["train_exact_match"] == 1.0
    assert _test_accuracy(m, task) >= 0.99
    assert summary["lexicon"]["words"]["jump"] == "PRIM(I_JUMP)"
    json.dumps(summary)  # JSON-able


def _test_accuracy(m: StateMachine, task: Task) -> float:
    gens = greedy_generate(m, task.splits["test"], batch_size=64)
    n = len(gens)
    return sum(g[: len(e.tokens) - e.prompt_len] == list(e.tokens[e.prompt_len:])
               for g, e in zip(gens, task.splits["test"], strict=True)) / n


@pytest.mark.slow
@pytest.mark.parametrize("split", ["addprim_jump", "length"])
def test_learns_scan_and_generalises(split):
    task = MiniScan(split, n_train=3000, n_test=1500, seed=0)
    m = build()
    summary = m.fit(task, seed=0)
    assert summary["train_exact_match"] == 1.0
    assert _test_accuracy(m, task) >= 0.99
    assert summary["lexicon"]["words"]["jump"] == "PRIM(I_JUMP)"


@pytest.mark.slow
def test_shuffled_targets_control_scores_about_zero():
    task = MiniScan("addprim_jump", n_train=3000, n_test=1500, seed=0)
    m = build(shuffle_targets=True)
    summary = m.fit(task, seed=0)
    assert summary["train_exact_match"] < 0.05
    assert _test_accuracy(m, task) < 0.02


@pytest.mark.slow
def test_permuting_the_vocabulary_does_not_change_the_result():
    """Renaming the words (which changes their alphabetical rows) and a seeded random row order give the same
    test accuracy and the same lexicon up to the renaming."""
    rename = {w: n for w, n in zip(INPUT_WORDS, ["zeta", "ypsilon", "xi", "omega", "nu", "mu", "lambda", "kappa",
                                                 "iota", "eta", "epsilon", "delta", "beta"], strict=True)}
    base = MiniScan("addprim_jump", n_train=3000, n_test=1500, seed=0)
    renamed = MiniScan("addprim_jump", n_train=3000, n_test=1500, seed=0, rename=rename)
    results = []
    for task, cfg in ((base, {}), (renamed, {}), (base, {"word_order": "shuffled"})):
        m = build(**cfg)
        s = m.fit(task, seed=0)
        back = {k: v for k, v in rename.items()} if task is renamed else {}
        inv = {v: k for k, v in back.items()}
        results.append((_test_accuracy(m, task), {inv.get(w, w): e for w, e in s["lexicon"]["words"].items()},
                        s["lexicon"]["template"]))
    assert results[0][0] >= 0.99 and results[0] == results[1] == results[2]


@pytest.mark.slow
def test_nested_parity_flat_extrapolates_in_depth():
    from arena.evaluate import evaluate_task
    from arena.registry import get_task

    spec = get_task("nested-parity")
    task = spec.cls(spec.config(variant="flat", n_train=1000, n_val=100, n_test=200), seed=0)
    m = build(max_steps=1000)  # parity gets no partial credit (one label token), so it needs a longer schedule
    summary = m.fit(task, seed=0)
    assert summary["params"] == 80 and summary["train_exact_match"] == 1.0
    res = evaluate_task(m, task, 64)
    assert res["test_ood"]["metrics"]["exact_match"] == 1.0


def test_a_run_records_the_skeleton_as_its_prior(tmp_path, monkeypatch):
    """The runner fills the run's prior columns from HandWrittenPrior (the skeleton fit() chose for the task)."""
    from arena.api import HandWrittenPrior
    from arena.runner import run
    from arena.spec import RunSpec, TrainConfig

    monkeypatch.setenv("ARENA_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    m = build()
    assert isinstance(m, HandWrittenPrior)
    res = run(RunSpec(arch="state-machine", task="scan", split="simple", train=TrainConfig(max_steps=2),
                      task_config={"n_test_max": 20, "n_train_max": 100}),
              db=f"sqlite:///{tmp_path / 'sm.db'}", overrides=["latency.enabled=false"])
    size = m.skeleton_size()
    assert res.record["prior"] == {"gzip_bytes": size["gzip_bytes"], "lines": size["lines"],
                                   "learned_bits": m.n_learned_bits()}
    assert res.record["extra"]["skeleton_size"] == size  # still in extra, as before
    from typer.testing import CliRunner

    from arena.cli.app import app

    shown = CliRunner().invoke(app, ["show", str(res.run_id), "--db", f"sqlite:///{tmp_path / 'sm.db'}"])
    assert shown.exit_code == 0 and f"{size['gzip_bytes']} B gzip, {size['lines']} lines" in shown.stdout
