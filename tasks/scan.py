"""SCAN (Lake & Baroni 2018, "Generalization without systematicity", ICML; official data: brendenlake/SCAN, BSD).

The 20,910 commands are generated from the grammar (``scan_grammar``); nothing is downloaded or shipped. Every
deterministic official split is rebuilt from its rule (SPECS.md §1), as a multiset, duplicates included:

* ``length``: train = action length <= 22 (16,990), test = length >= 24 (3,920).
* ``addprim_jump``: train = the 13,203 commands without ``jump`` + ``jump`` x1,467 (14,670 lines, 13,204 unique);
  test = the 7,706 other commands with ``jump``.
* ``addprim_turn_left``: train = the 19,701 commands without the bigram ``turn left`` + ``turn left`` x2,189
  (21,890 lines); test = the other 1,208.
* ``template_<t>`` (Loula et al. 2018) for t in around_right, opposite_right, right: train = no ``X <t>`` for any
  X in walk/look/run/jump/turn (15,225); test = an ``X <t>`` with X a verb, without ``turn <t>`` (4,476); the 1,209
  commands with ``turn <t>`` are in neither. ``template_jump_around_right``: 18,528 / 1,173.
* ``simple``: a *seeded* 80/20 re-split (16,728 / 4,182, the official sizes). The official random split cannot
  be regenerated (no seed reproduces it); pass ``official_dir`` to use the official file.
* ``depth`` (project-defined, not an official split): train = at most ``train_max_depth`` operators
  (Definition B of SPECS.md §1: left/right, opposite/around, twice/thrice, and/after), test = more. Default 6:
  17,710 / 3,200.

``val`` is carved from the train multiset (never from test): 2 % of the distinct train commands, at most 500,
excluding the primitive repeated in the addprim splits; all copies of a chosen command leave train. The choice
depends only on the multiset and the seed, so a file written by ``arena data export`` reads back to the same task.

Sequence: ``<bos> command <sep> actions <eos>``; the model must greedily generate the actions and ``<eos>``
exactly (scoring "generate", metric exact match, chance 0). Slices: ``depth`` (operator count, 0-7) and
``out_len`` (number of actions, 1-48, unbucketed so per-length accuracy on the length split can be read off).
"""

from __future__ import annotations

import random
import re
from functools import lru_cache
from pathlib import Path

from pydantic import Field

from arena.api import Example, Task, TaskConfig, Vocab
from arena.errors import ArenaError
from arena.tasks.scan_grammar import ACTIONS, INPUT_WORDS, commands, interpret, operator_count

SPECIALS = ("<pad>", "<bos>", "<sep>", "<eos>")
SPLITS = ("simple", "length", "addprim_jump", "addprim_turn_left", "template_around_right",
          "template_jump_around_right", "template_opposite_right", "template_right", "depth")
# where each split lives in a checkout of brendenlake/SCAN (the depth split has no official file)
OFFICIAL_FILES = {
    "simple": ("simple_split", "simple"),
    "length": ("length_split", "length"),
    "addprim_jump": ("add_prim_split", "addprim_jump"),
    "addprim_turn_left": ("add_prim_split", "addprim_turn_left"),
    "template_around_right": ("template_split", "template_around_right"),
    "template_jump_around_right": ("template_split", "template_jump_around_right"),
    "template_opposite_right": ("template_split", "template_opposite_right"),
    "template_right": ("template_split", "template_right"),
}
LINE_RE = re.compile(r"^IN: [a-z ]+ OUT: [A-Z_ ]+$")
VERBS_AND_TURN = ("walk", "look", "run", "jump", "turn")
SIMPLE_TRAIN = 16_728  # size of the official simple train file (80 % of 20,910, rounded as they did)


class ScanConfig(TaskConfig):
    train_max_depth: int = Field(6, ge=0, le=6, description="depth split: train on commands with at most this "
                                 "many operators, test on more (0-6). Default: 6")
    official_dir: str | None = Field(None, description="read the split from a copy of the official files "
                                     "(a brendenlake/SCAN checkout, or a folder with tasks_train_<split>.txt / "
                                     "tasks_test_<split>.txt or train.txt / test.txt). Default: None (generate)")
    n_train_max: int | None = Field(None, ge=1, description="cap on training examples (CPU-sized runs). "
                                    "Default: None (all)")
    n_test_max: int | None = Field(None, ge=1, description="cap on test (and val) examples. Default: None (all)")
    val_fraction: float = Field(0.02, gt=0.0, le=0.5, description="fraction of distinct train commands held out "
                                "as val (at most val_max). Default: 0.02")
    val_max: int = Field(500, ge=1, description="largest val set. Default: 500")


# -- the rules ----------------------------------------------------------------------------------------------------
def _has(words: list[str], phrase: tuple[str, ...]) -> bool:
    """Token-level phrase match ("turn left" does not match "turn opposite left")."""
    n = len(phrase)
    return any(tuple(words[i : i + n]) == phrase for i in range(len(words) - n + 1))


@lru_cache(maxsize=1)
def _table() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(command, actions) for all 20,910 commands in grammar order."""
    return tuple((c, tuple(interpret(c))) for c in commands())


def _template(words: list[str], mod: tuple[str, ...], only: str | None) -> str | None:
    """"train", "test" or None (dropped) for a template split on the modifier ``mod`` (e.g. ("around", "right"))."""
    if _has(words, ("turn", *mod)):
        return None
    held = [v for v in VERBS_AND_TURN[:4] if _has(words, (v, *mod))]
    if only is not None:
        return "test" if only in held else "train"
    return "test" if held else "train"


def split_lines(split: str, seed: int = 0, train_max_depth: int = 6) -> dict[str, list[str]]:
    """The official multisets of commands ``{"train": [...], "test": [...]}`` (line order seeded, like the
    shuffled official files). Only ``simple`` depends on the seed as a set."""
    if split not in SPLITS:
        from arena.errors import suggest

        raise ArenaError(f"unknown SCAN split {split!r}{suggest(split, SPLITS)}")
    table = _table()
    train: list[str] = []
    test: list[str] = []
    if split == "simple":
        cmds = [c for c, _ in table]
        random.Random(f"scan-simple:{seed}").shuffle(cmds)
        train, test = cmds[:SIMPLE_TRAIN], cmds[SIMPLE_TRAIN:]
    elif split == "length":
        for c, a in table:
            (train if len(a) <= 22 else test).append(c)
    elif split == "depth":
        for c, _ in table:
            (train if operator_count(c) <= train_max_depth else test).append(c)
    elif split.startswith("addprim_"):
        prim = ("jump",) if split == "addprim_jump" else ("turn", "left")
        for c, _ in table:
            words = c.split()
            if not _has(words, prim):
                train.append(c)
            elif tuple(words) != prim:
                test.append(c)
        train += [" ".join(prim)] * (len(train) // 9)  # the primitive makes exactly 10 % of the train lines
    else:
        mods = {"around_right": (("around", "right"), None), "opposite_right": (("opposite", "right"), None),
                "right": (("right",), None), "jump_around_right": (("around", "right"), "jump")}
        mod, only = mods[split.removeprefix("template_")]
        for c, _ in table:
            side = _template(c.split(), mod, only)
            if side == "train":
                train.append(c)
            elif side == "test":
                test.append(c)
    rng = random.Random(f"scan-order:{split}:{seed}")
    rng.shuffle(train)
    rng.shuffle(test)
    return {"train": train, "test": test}


# -- the official files -------------------------------------------------------------------------------------------
def read_official_file(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """Parse ``IN: <command> OUT: <actions>`` lines; any malformed line is an error naming the file and line."""
    words_ok, actions_ok = set(INPUT_WORDS), set(ACTIONS)
    from arena.validation import read_text_file

    out = []
    lines = read_text_file(path, "SCAN file").split("\n")
    if lines[-1] == "":
        lines.pop()
    for i, line in enumerate(lines, 1):
        if not LINE_RE.match(line):
            raise ArenaError(f"{path}:{i}: not a SCAN line (expected 'IN: <command> OUT: <actions>'): {line[:80]!r}")
        cmd, act = line[4:].split(" OUT: ")
        if line != f"IN: {' '.join(cmd.split())} OUT: {' '.join(act.split())}":
            raise ArenaError(f"{path}:{i}: SCAN lines use single spaces and no trailing whitespace: {line[:80]!r}")
        bad = [w for w in cmd.split() if w not in words_ok] + [a for a in act.split() if a not in actions_ok]
        if bad or not cmd.strip() or not act.strip():
            raise ArenaError(f"{path}:{i}: unknown SCAN token(s) {bad!r} in {line[:80]!r}")
        out.append((" ".join(cmd.split()), tuple(act.split())))
    if not out:
        raise ArenaError(f"{path}: the file is empty")
    return out


def find_official_files(root: Path, split: str) -> tuple[Path, Path]:
    """Locate the train/test files of ``split`` under ``root`` (repo checkout, split folder, or an export)."""
    if split not in OFFICIAL_FILES:
        raise ArenaError(f"SCAN split {split!r} has no official file; drop official_dir to generate it")
    sub, key = OFFICIAL_FILES[split]
    tried = []
    for folder in (root / sub, root):
        for tr, te in ((f"tasks_train_{key}.txt", f"tasks_test_{key}.txt"), ("train.txt", "test.txt")):
            pair = (folder / tr, folder / te)
            tried.append(str(pair[0]))
            if pair[0].is_file() and pair[1].is_file():
                return pair
    raise ArenaError(f"no official SCAN files for split {split!r} under {root} (looked for {', '.join(tried)} "
                     "and the matching test file)")


# -- the task -----------------------------------------------------------------------------------------------------
class ScanTask(Task):
    name = "scan"
    version = 1
    family = "compositional"
    description = "SCAN (Lake & Baroni 2018) generated from its grammar; exact match of generated actions"
    config_cls = ScanConfig
    scoring = "generate"
    metric = "exact_match"
    default_split = "simple"
    split_names = SPLITS
    slice_keys = ("depth",)

    _VOCAB = Vocab(SPECIALS + INPUT_WORDS + ACTIONS)

    @property
    def vocab(self) -> Vocab:
        return self._VOCAB

    @property
    def chance(self) -> float:
        return 0.0

    def encode(self, command: str, actions: tuple[str, ...]) -> Example:
        words = command.split()
        prompt = ("<bos>", *words, "<sep>")
        tokens = self.vocab.ids(prompt + actions + ("<eos>",))
        n = len(tokens) - 1
        mask = tuple(i >= len(prompt) - 1 for i in range(n))
        return Example(tokens=tokens, mask=mask, prompt_len=len(prompt),
                       slices={"depth": operator_count(command), "out_len": len(actions)})

    def pairs(self) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
        """The official multisets as (command, actions): ``{"train": [...], "test": [...]}``, before val and caps."""
        if getattr(self, "_pairs", None) is None:
            cfg: ScanConfig = self.cfg  # type: ignore[assignment]
            if cfg.official_dir is not None:
                tr, te = find_official_files(Path(cfg.official_dir).expanduser(), self.split)
                self._pairs = {"train": read_official_file(tr), "test": read_official_file(te)}
            else:
                table = dict(_table())
                lines = split_lines(self.split, self.seed, cfg.train_max_depth)
                self._pairs = {k: [(c, table[c]) for c in v] for k, v in lines.items()}
        return self._pairs

    def lines(self) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
        """``{"train", "val", "test"}`` as (command, actions) after carving val and applying the caps."""
        if getattr(self, "_lines", None) is not None:
            return self._lines
        cfg: ScanConfig = self.cfg  # type: ignore[assignment]
        p = self.pairs()
        counts: dict[str, int] = {}
        for c, _ in p["train"]:
            counts[c] = counts.get(c, 0) + 1
        # repeated primitives (addprim) stay in train: they are the only exposure to the new word
        pool = sorted(c for c, k in counts.items() if k == 1)
        n_val = min(cfg.val_max, max(1, int(cfg.val_fraction * len(counts))))
        n_val = max(0, min(n_val, len(pool) - 1))  # a tiny official file still keeps a training example
        val_set = set(random.Random(f"scan-val:{self.split}:{self.seed}").sample(pool, n_val))
        train = [(c, a) for c, a in p["train"] if c not in val_set]
        val = [(c, a) for c, a in p["train"] if c in val_set]
        test = p["test"]
        if cfg.n_train_max is not None:
            train = train[: cfg.n_train_max]
        if cfg.n_test_max is not None:
            test = test[: cfg.n_test_max]
            val = val[: cfg.n_test_max]
        self._lines = {"train": train, "val": val, "test": test}
        return self._lines

    def official_lines(self) -> dict[str, list[str]]:
        """``{"train": [...], "test": [...]}`` in the official line format (train includes val: the whole train
        multiset, duplicates kept). Used by ``arena data export``."""
        ls = self.lines()
        fmt = lambda c, a: f"IN: {c} OUT: {' '.join(a)}"  # noqa: E731
        cfg: ScanConfig = self.cfg  # type: ignore[assignment]
        if cfg.n_train_max is None and cfg.n_test_max is None:  # original line order
            return {k: [fmt(c, a) for c, a in v] for k, v in self.pairs().items()}
        return {"train": [fmt(c, a) for c, a in ls["train"] + ls["val"]], "test": [fmt(c, a) for c, a in ls["test"]]}

    def build_splits(self) -> dict[str, list[Example]]:
        return {k: [self.encode(c, a) for c, a in v] for k, v in self.lines().items()}
