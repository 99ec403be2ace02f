"""``lm``: character-level language modelling, scored on held-out bits per character and through EleutherAI
lm-evaluation-harness on BLiMP and LAMBADA (SPECS.md §4; project-defined track).

Corpus: Tiny Shakespeare (karpathy/char-rnn ``input.txt``) with nanoGPT's ``shakespeare_char`` cut — the first
90% of characters train, the last 10% validation — or the TinyStories validation excerpt, cut 90/10 at a blank
line. Vocabulary: ``<pad>``, ``<bos>``, ``<unk>`` and the corpus characters (Tiny Shakespeare: 65); characters
of the benchmarks the corpus never contains become ``<unk>``.

Training examples: ``<bos>`` + a window of ``block_size`` characters, every position scored, taken at a fixed
``stride`` over the training text (the trainer samples them uniformly). Starting every window at ``<bos>``
teaches the model the "no context" state lm-eval needs for BLiMP (empty context).

Evaluation (custom scoring, one call per split):
* ``val``: bits per character of the whole validation text (log-likelihood in disjoint windows of
  ``block_size``, each starting at ``<bos>``; nanoGPT's val loss / ln 2 is the same quantity, estimated on random
  windows);
* ``blimp``: lm-eval ``blimp`` (67 paradigms; ``acc`` = the good sentence is more likely; chance 0.5), with one
  slice per paradigm (``slice_key="paradigm"``);
* ``lambada_openai``: lm-eval ``lambada_openai`` (``perplexity`` of the last word, ``acc`` = greedy match).
``eval_limit`` caps the documents per lm-eval task (per paradigm for BLiMP). Headline: ``val`` bits/char (lower
is better, so arena's normalized score is None; the leaderboard orients it for Pareto fronts). BLiMP accuracy was
the alternative (in [0, 1], chance 0.5); it was not chosen because every architecture at the CPU-sized budget
scored within noise of chance while bits/char separated them (docs/benchmarks-lm.md). ``chance`` is the
bits/char of a model that ignores its input: the train unigram distribution (add-one smoothed) on the val text.

Simplified relative to the published setups: character-level tokenization (published BLiMP/LAMBADA numbers use
word or BPE models trained on far larger corpora), and ``eval_limit`` subsets by default.
"""

from __future__ import annotations

import math
from collections import Counter
from functools import cached_property
from typing import Any

from pydantic import Field, field_validator

from arena.api import Example, Task, TaskConfig, Vocab
from arena.errors import ArenaError
from arena.metrics import register_metric
from arena.tasks.lm.data import (
    BENCHMARK_HF_IDS,
    CORPUS_FILES,
    CharTokenizer,
    load_corpus,
    require_benchmarks,
    resolve_data_dir,
    split_corpus,
)

register_metric("bits_per_char", higher_is_better=False, description="held-out negative log-likelihood per "
                "character, in bits")
register_metric("loss", higher_is_better=False, description="held-out negative log-likelihood per token, in nats")
register_metric("acc", description="lm-eval accuracy (BLiMP: the good sentence is more likely; LAMBADA: greedy "
                "match of the last word)")
register_metric("perplexity", higher_is_better=False, description="lm-eval perplexity (LAMBADA: of the last word)")


DEFAULT_BENCHMARKS = ("blimp", "lambada_openai")


class LMConfig(TaskConfig):
    corpus: str = Field("tinyshakespeare", description="training corpus: tinyshakespeare | tinystories. "
                                                       "Default: tinyshakespeare")
    block_size: int = Field(128, ge=8, le=8192, description="characters per training window (and the "
                                                            "evaluation context). Default: 128")
    stride: int | None = Field(None, ge=1, description="characters between training windows. Default: None "
                                                       "(block_size / 2)")
    eval_limit: int | None = Field(200, ge=1, description="documents per lm-eval task (per paradigm for BLiMP); "
                                                          "None = all. Default: 200")
    benchmarks: tuple[str, ...] = Field(DEFAULT_BENCHMARKS, description="lm-eval tasks run after "
                                        "training. Default: (blimp, lambada_openai)")
    eval_batch_size: int = Field(64, ge=1, le=65_536, description="lm-eval pieces per forward pass. Default: 64")
    data_dir: str | None = Field(None, description="folder laid out like the shared data (blimp/, "
                                 "lambada_openai/, tinyshakespeare/, tinystories_excerpt/). Default: None "
                                 "($ARENA_DATA_DIR, else the Hugging Face ids)")

    @field_validator("corpus")
    @classmethod
    def _corpus(cls, v: str) -> str:
        if v not in CORPUS_FILES:
            raise ValueError(f"unknown corpus {v!r}; choose one of {', '.join(CORPUS_FILES)}")
        return v

    @field_validator("benchmarks")
    @classmethod
    def _benchmarks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [b for b in v if b in ("val", "train")]
        if bad or len(set(v)) != len(v):
            raise ValueError("benchmarks must be distinct lm-eval task names other than 'val'/'train'")
        return v


class LMTask(Task):
    name = "lm"
    version = 1
    family = "language-modelling"
    description = "character LM on Tiny Shakespeare: val bits/char, lm-eval BLiMP (acc) and LAMBADA (perplexity)"
    config_cls = LMConfig
    scoring = "custom"
    metric = "bits_per_char"
    higher_is_better = False
    headline_split = "val"
    default_split = "default"
    split_names = ("default",)
    slice_keys = ()

    # -- data -------------------------------------------------------------------------------------------------
    @cached_property
    def data_dir(self):  # noqa: ANN201 - Path | None
        return resolve_data_dir(self.cfg.data_dir)

    @cached_property
    def _texts(self) -> tuple[str, str]:
        # first data access (the runner needs the vocabulary before training): check the benchmarks' data too,
        # so a missing file stops the run before any training time is spent
        require_benchmarks(self.cfg.benchmarks, self.data_dir)
        text = load_corpus(self.cfg.corpus, self.data_dir)
        train, val = split_corpus(self.cfg.corpus, text)
        if len(train) < self.cfg.block_size + 1 or not val:
            raise ArenaError(f"corpus {self.cfg.corpus!r} has {len(text):,} characters: too short for one training "
                             f"block of {self.cfg.block_size} plus a validation part")
        return train, val

    @property
    def train_text(self) -> str:
        return self._texts[0]

    @property
    def val_text(self) -> str:
        return self._texts[1]

    @cached_property
    def tokenizer(self) -> CharTokenizer:
        return CharTokenizer.from_text(self.train_text + self.val_text)

    @property
    def vocab(self) -> Vocab:
        return self.tokenizer.vocab

    @property
    def block_size(self) -> int:
        return self.cfg.block_size

    @cached_property
    def chance(self) -> float:
        """Bits/char of the best input-ignoring model: the train unigram distribution (add-one) on val."""
        counts = Counter(self.train_text)
        total, chars = len(self.train_text), set(self.train_text + self.val_text)
        logp = {ch: math.log2((counts[ch] + 1) / (total + len(chars))) for ch in chars}
        val = Counter(self.val_text)
        return -sum(n * logp[ch] for ch, n in val.items()) / max(1, len(self.val_text))

    def build_splits(self) -> dict[str, list[Example]]:
        W = self.cfg.block_size
        stride = self.cfg.stride or max(1, W // 2)
        ids = self.tokenizer.encode(self.train_text)
        if len(ids) < W + 1:
            raise ValueError(f"corpus {self.cfg.corpus!r} is shorter than one block of {W} characters")
        bos = self.tokenizer.bos_id
        mask = (True,) * W
        train = [Example(tokens=(bos, *ids[s : s + W]), mask=mask) for s in range(0, len(ids) - W + 1, stride)]
        return {"train": train}

    @property
    def splits(self) -> dict[str, list[Example]]:
        # the evaluated splits have no Example lists: evaluate() scores them. They are present (empty) so that
        # the runner and the trainer see the split names; the trainer's in-training validation skips empty sets.
        if self._splits is None:
            self._splits = self.build_splits() | {name: [] for name in self.eval_splits}
        return self._splits

    @property
    def eval_splits(self) -> list[str]:
        return ["val", *self.cfg.benchmarks]

    @property
    def max_seq_len(self) -> int:
        return self.cfg.block_size + 1

    def analysis_examples(self, split: str, n: int) -> list[Example]:
        """Held-out windows for ``val`` (``<bos>`` + ``block_size`` characters of the validation text, disjoint,
        every position scored, as the held-out score reads it); the training windows for ``train``."""
        if split == "train":
            return list(self.splits["train"][:n])
        if split != "val":
            raise ValueError(f"task 'lm' analyses split 'val' (held-out text) or 'train', not {split!r}")
        W, ids, bos = self.cfg.block_size, self.tokenizer.encode(self.val_text), self.tokenizer.bos_id
        starts = range(0, max(0, len(ids) - W) + 1, W)
        return [Example(tokens=(bos, *ids[s : s + W]), mask=(True,) * W) for s in list(starts)[:n]]

    def describe_example(self, ex: Example) -> dict[str, Any]:
        text = self.tokenizer.decode(ex.tokens)
        return {"input": text, "target": text, "slices": dict(ex.slices)}

    # -- scoring (also arena.api.HarnessTask, for ``arena eval``) --------------------------------------------------
    def harness_model(self, model: Any, batch_size: int | None = None, device: str = "cpu") -> Any:
        from arena.lm_eval_adapter import ArenaLM

        return ArenaLM(model, self.tokenizer, self.cfg.block_size, batch_size=batch_size or self.cfg.eval_batch_size,
                       device=device)

    def harness_names(self) -> tuple[str, ...]:
        return DEFAULT_BENCHMARKS

    def harness_scores(self, lm: Any, names: Any, limit: int | None = None) -> dict[str, dict[str, Any]]:
        """``val``: held-out bits per character; any other name: an lm-eval task (:mod:`.harness`)."""
        out: dict[str, dict[str, Any]] = {}
        if "val" in names:
            logprob, n = lm.rolling_logprob(self.val_text)
            nats = -logprob / n
            out["val"] = {"metrics": {"bits_per_char": nats / math.log(2), "loss": nats, "n": float(n)}, "slices": {}}
        bench = [n for n in names if n != "val"]
        if bench:
            from arena.tasks.lm.harness import run_benchmarks

            out |= run_benchmarks(lm, bench, self.data_dir, limit)
        return {n: out[n] for n in names}

    def evaluate(self, model: Any, split: str, device: str = "cpu") -> dict[str, Any]:
        if split != "val" and split not in self.cfg.benchmarks:
            raise ValueError(f"task 'lm' has no split {split!r}")
        return self.harness_scores(self.harness_model(model, device=device), [split], self.cfg.eval_limit)[split]


__all__ = ["LMTask", "LMConfig", "BENCHMARK_HF_IDS"]
