"""Where the LM track's data comes from: local files under a data directory, or the standard Hugging Face ids.

Resolution order for the data directory: an explicit path (the ``lm`` task's ``data_dir`` config or
``arena eval --data-dir``), then ``$ARENA_DATA_DIR``. The directory is laid out like the project's shared data::

    blimp/<UID>.jsonl.gz                      67 BLiMP paradigms (fields sentence_good, sentence_bad, ...)
    lambada_openai/lambada_test.jsonl         OpenAI's LAMBADA test set (field text)
    tinyshakespeare/input.txt                 char-rnn Tiny Shakespeare
    tinystories_excerpt/tinystories_val_head.txt   about 1,000 TinyStories validation stories

Without a data directory the benchmarks come from the Hugging Face ids lm-eval itself uses (``nyu-mll/blimp``,
``EleutherAI/lambada_openai``), Tiny Shakespeare from the char-rnn raw URL (as nanoGPT fetches it) and TinyStories
from ``roneneldan/TinyStories``. When offline (``HF_DATASETS_OFFLINE``/``HF_HUB_OFFLINE``) or when the hub cannot
be reached within a few seconds, a missing dataset raises one :class:`ArenaError` that says what to set, before
lm-eval or ``datasets`` get a chance to retry for half a minute.

lm-eval task YAMLs for local files are written at run time into a temporary directory, with absolute
``data_files`` paths (lm-eval resolves them relative to the process CWD otherwise) and a private ``cache_dir``
so the Arrow copies never land in the user's Hugging Face cache.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import socket
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from arena.api import Vocab
from arena.errors import ArenaError

ENV_DATA_DIR = "ARENA_DATA_DIR"

# corpus name -> (folder, file) under the data directory
CORPUS_FILES: dict[str, tuple[str, str]] = {
    "tinyshakespeare": ("tinyshakespeare", "input.txt"),
    "tinystories": ("tinystories_excerpt", "tinystories_val_head.txt"),
}
TINYSHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
TINYSHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TINYSTORIES_HF = "roneneldan/TinyStories"
TINYSTORIES_N_STORIES = 1000

# lm-eval benchmark -> the Hugging Face dataset id its built-in YAML loads
BENCHMARK_HF_IDS: dict[str, str] = {"blimp": "nyu-mll/blimp", "lambada_openai": "EleutherAI/lambada_openai"}
LOCAL_BENCHMARKS = ("blimp", "lambada_openai")
N_BLIMP_PARADIGMS = 67
LOCAL_PREFIX = "arena_"  # local lm-eval task names: arena_blimp, arena_blimp_<uid>, arena_lambada_openai

LAYOUT_HINT = (f"set {ENV_DATA_DIR}=path/to/data (or --set task.data_dir=path/to/data) to a folder laid out like "
               "the project's shared data: blimp/<UID>.jsonl.gz, lambada_openai/lambada_test.jsonl, "
               "tinyshakespeare/input.txt, tinystories_excerpt/tinystories_val_head.txt")


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The data directory (explicit path, else ``$ARENA_DATA_DIR``), or None. A named but absent folder is an
    error, never a silent fallback to the network."""
    raw = explicit if explicit not in (None, "") else os.environ.get(ENV_DATA_DIR) or None
    if raw is None:
        return None
    path = Path(raw).expanduser()
    if not path.is_dir():
        source = "data_dir" if explicit not in (None, "") else f"${ENV_DATA_DIR}"
        raise ArenaError(f"{source} points to {str(path)!r}, which is not a directory; {LAYOUT_HINT}")
    return path.resolve()


def is_offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
               for v in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """A single TCP connect with a short timeout: decides up front whether a download can work at all."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _hf_cached(dataset_id: str) -> bool:
    """Whether a previous online run left ``dataset_id`` in the Hugging Face caches (so offline can still work)."""
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")).expanduser()
    roots = [Path(os.environ["HF_DATASETS_CACHE"])] if os.environ.get("HF_DATASETS_CACHE") else []
    roots += [home / "datasets", home / "hub"]
    org, _, name = dataset_id.partition("/")
    names = (f"{org}___{name}".lower(), f"datasets--{org}--{name}".lower())
    for root in roots:
        with contextlib.suppress(OSError):
            if root.is_dir() and any(p.name.lower() in names for p in root.iterdir()):
                return True
    return False


def _missing(what: str, why: str) -> ArenaError:
    return ArenaError(f"{what} is not available: {why}. {LAYOUT_HINT}")


def require_remote(dataset_id: str, what: str) -> None:
    """Fail fast (one message, a few seconds at most) if ``dataset_id`` cannot be loaded without a data dir."""
    if is_offline():
        if _hf_cached(dataset_id):
            return
        raise _missing(what, f"no {ENV_DATA_DIR} is set, HF_DATASETS_OFFLINE/HF_HUB_OFFLINE is on and "
                             f"{dataset_id!r} is not in the Hugging Face cache")
    if not hub_reachable():
        raise _missing(what, f"no {ENV_DATA_DIR} is set and huggingface.co cannot be reached to download "
                             f"{dataset_id!r}")


# -- the character tokenizer ---------------------------------------------------------------------------------
PAD, BOS, UNK = "<pad>", "<bos>", "<unk>"
SPECIALS = (PAD, BOS, UNK)


class CharTokenizer:
    """Characters <-> ids over a :class:`Vocab` whose first tokens are ``<pad>``, ``<bos>``, ``<unk>``."""

    def __init__(self, vocab: Vocab):
        if vocab.tokens[:3] != SPECIALS:
            raise ValueError(f"a character vocabulary starts with {SPECIALS}, got {vocab.tokens[:3]}")
        self.vocab = vocab
        self.pad_id, self.bos_id, self.unk_id = 0, 1, 2
        self._index = {t: i for i, t in enumerate(vocab.tokens) if i >= len(SPECIALS)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(Vocab(SPECIALS + tuple(sorted(set(text)))))

    @property
    def size(self) -> int:
        return self.vocab.size

    def encode(self, text: str) -> list[int]:
        get, unk = self._index.get, self.unk_id
        return [get(ch, unk) for ch in text]

    def decode(self, ids: Sequence[int]) -> str:
        """Characters; ``<pad>``/``<bos>`` are dropped and ``<unk>`` becomes U+FFFD."""
        toks, skip = self.vocab.tokens, (self.pad_id, self.bos_id)
        return "".join("\ufffd" if i == self.unk_id else toks[i] for i in ids if i not in skip)


# -- training corpora -------------------------------------------------------------------------------------------
def load_corpus(corpus: str, data_dir: Path | None) -> str:
    """The full text of a training corpus (before the train/val cut)."""
    if corpus not in CORPUS_FILES:
        raise ArenaError(f"unknown corpus {corpus!r}; choose one of {', '.join(CORPUS_FILES)}")
    if data_dir is not None:
        folder, name = CORPUS_FILES[corpus]
        path = data_dir / folder / name
        if not path.is_file():
            raise _missing(f"corpus {corpus!r}", f"{str(path)!r} does not exist")
        from arena.validation import read_text_file

        return read_text_file(path, f"corpus {corpus!r} file")
    if corpus == "tinyshakespeare":
        return _download_tinyshakespeare()
    require_remote(TINYSTORIES_HF, f"corpus {corpus!r}")
    from datasets import load_dataset

    ds = load_dataset(TINYSTORIES_HF, split="validation")
    return "".join(str(ds[i]["text"]).strip() + "\n\n" for i in range(min(TINYSTORIES_N_STORIES, len(ds))))


def _download_tinyshakespeare() -> str:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "arena" / "tinyshakespeare.txt"
    if cache.is_file():
        data = cache.read_bytes()
        if hashlib.sha256(data).hexdigest() == TINYSHAKESPEARE_SHA256:
            return data.decode("utf-8")
    what = "corpus 'tinyshakespeare'"
    if is_offline():
        raise _missing(what, f"no {ENV_DATA_DIR} is set and HF_DATASETS_OFFLINE/HF_HUB_OFFLINE is on")
    if not hub_reachable("raw.githubusercontent.com"):
        raise _missing(what, f"no {ENV_DATA_DIR} is set and raw.githubusercontent.com cannot be reached")
    with urllib.request.urlopen(TINYSHAKESPEARE_URL, timeout=30) as resp:  # noqa: S310 - fixed https URL
        data = resp.read()
    if hashlib.sha256(data).hexdigest() != TINYSHAKESPEARE_SHA256:
        raise ArenaError(f"downloaded Tiny Shakespeare does not match its sha256; {LAYOUT_HINT}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(data)
    return data.decode("utf-8")


def split_corpus(corpus: str, text: str, train_frac: float = 0.9) -> tuple[str, str]:
    """Train/val cut. Tiny Shakespeare: nanoGPT's character cut (first 90% / last 10%). TinyStories: at the
    blank line nearest to 90% of the characters, so no paragraph is split (stories themselves contain blank
    lines, so exact story boundaries cannot be recovered from the excerpt)."""
    n = len(text)
    cut = int(n * train_frac)
    if corpus == "tinystories":
        before, after = text.rfind("\n\n", 0, cut), text.find("\n\n", cut)
        options = [p + 2 for p in (before, after) if p >= 0]
        if options:
            cut = min(options, key=lambda p: abs(p - n * train_frac))
    return text[:cut], text[cut:]


# -- benchmarks -------------------------------------------------------------------------------------------------
def blimp_paradigms(data_dir: Path) -> list[str]:
    folder = data_dir / "blimp"
    uids = sorted(p.name[: -len(".jsonl.gz")] for p in folder.glob("*.jsonl.gz")) if folder.is_dir() else []
    return uids


def check_local_benchmark(name: str, data_dir: Path) -> None:
    if name == "blimp":
        uids = blimp_paradigms(data_dir)
        if len(uids) != N_BLIMP_PARADIGMS:
            raise _missing("BLiMP", f"{str(data_dir / 'blimp')!r} holds {len(uids)} <UID>.jsonl.gz files, "
                                    f"expected {N_BLIMP_PARADIGMS}")
    elif name == "lambada_openai":
        path = data_dir / "lambada_openai" / "lambada_test.jsonl"
        if not path.is_file():
            raise _missing("LAMBADA (OpenAI)", f"{str(path)!r} does not exist")
    else:
        raise ArenaError(f"no local copy is known for lm-eval task {name!r} (local: {', '.join(LOCAL_BENCHMARKS)}); "
                         f"unset {ENV_DATA_DIR} to use lm-eval's own dataset ids")


def require_benchmarks(names: list[str] | tuple[str, ...], data_dir: Path | None) -> None:
    """Check every benchmark's data before lm-eval is imported or called."""
    for name in names:
        if data_dir is not None:
            check_local_benchmark(name, data_dir)
        elif name in BENCHMARK_HF_IDS:
            require_remote(BENCHMARK_HF_IDS[name], f"lm-eval task {name!r}")
        elif is_offline():
            raise _missing(f"lm-eval task {name!r}", f"no {ENV_DATA_DIR} is set and HF_DATASETS_OFFLINE is on")


def _dump(path: Path, data: dict) -> None:
    # JSON is valid YAML and needs no escaping of Windows paths or odd characters
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def _head(src: Path, dst: Path, limit: int | None) -> Path:
    """``src`` itself, or (with a limit) a temporary copy of its first ``limit`` records: lm-eval's ``limit``
    takes the first documents anyway, and ``datasets`` then converts and lm-eval iterates only those."""
    if limit is None:
        return src
    opener = gzip.open if src.name.endswith(".gz") else open
    dst.parent.mkdir(parents=True, exist_ok=True)
    with opener(src, "rt", encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as g:
        kept = 0
        for line in f:
            if line.strip():
                g.write(line if line.endswith("\n") else line + "\n")
                kept += 1
                if kept >= limit:
                    break
    return dst


def write_local_yamls(folder: Path, data_dir: Path, names: list[str] | tuple[str, ...],
                      cache_dir: Path, limit: int | None = None) -> dict[str, str]:
    """Write lm-eval task YAMLs reading the local files; return benchmark -> local lm-eval task/group name.

    The fields follow lm-eval's own ``blimp/_template_yaml`` and ``lambada/lambada_openai.yaml``; only the
    dataset source changes (``dataset_path: json`` with absolute ``data_files``). With ``limit`` the data files
    are temporary copies of the first ``limit`` records (same documents as lm-eval's ``limit``, less loading)."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}
    heads = folder / "data"
    for name in names:
        check_local_benchmark(name, data_dir)
        if name == "blimp":
            subtasks = []
            for uid in blimp_paradigms(data_dir):
                task = f"{LOCAL_PREFIX}blimp_{uid}"
                subtasks.append(task)
                _dump(folder / f"{task}.yaml", {
                    "task": task, "dataset_path": "json", "dataset_name": None,
                    "dataset_kwargs": {"data_files": {"train": str(_head(data_dir / "blimp" / f"{uid}.jsonl.gz",
                                                                             heads / f"{uid}.jsonl", limit))},
                                       "cache_dir": str(cache_dir)},
                    "output_type": "multiple_choice", "validation_split": "train", "doc_to_text": "",
                    "doc_to_target": 0, "doc_to_choice": "{{[sentence_good, sentence_bad]}}", "num_fewshot": 0,
                    "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
                    "metadata": {"version": 1.0}})
            _dump(folder / f"{LOCAL_PREFIX}blimp_group.yaml", {
                "group": f"{LOCAL_PREFIX}blimp", "task": subtasks,
                "aggregate_metric_list": [{"metric": "acc", "aggregation": "mean", "weight_by_size": False}],
                "metadata": {"version": 2.0}})
            out[name] = f"{LOCAL_PREFIX}blimp"
        elif name == "lambada_openai":
            task = f"{LOCAL_PREFIX}lambada_openai"
            _dump(folder / f"{task}.yaml", {
                "task": task, "dataset_path": "json", "dataset_name": None,
                "dataset_kwargs": {"data_files": {"test": str(_head(data_dir / "lambada_openai" / "lambada_test.jsonl",
                                                                            heads / "lambada_test.jsonl", limit))},
                                   "cache_dir": str(cache_dir)},
                "output_type": "loglikelihood", "test_split": "test",
                "doc_to_text": "{{text.split(' ')[:-1]|join(' ')}}", "doc_to_target": "{{' '+text.split(' ')[-1]}}",
                "metric_list": [{"metric": "perplexity", "aggregation": "perplexity", "higher_is_better": False},
                                {"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
                "metadata": {"version": 1.0}})
            out[name] = task
    return out


@contextlib.contextmanager
def offline_hf(home: Path) -> Iterator[None]:
    """Offline Hugging Face with a private HF_HOME for the duration (also patching already-imported modules,
    which read these variables at import time)."""
    keys = ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "HF_HOME", "HF_DATASETS_CACHE")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(home),
                       "HF_DATASETS_CACHE": str(home / "datasets")})
    patched: list[tuple[object, str, object]] = []

    def patch(module_name: str, attr: str, value: object) -> None:
        import sys

        mod = sys.modules.get(module_name)
        if mod is not None and hasattr(mod, attr):
            patched.append((mod, attr, getattr(mod, attr)))
            setattr(mod, attr, value)

    patch("datasets.config", "HF_DATASETS_OFFLINE", True)
    patch("datasets.config", "HF_HUB_OFFLINE", True)
    patch("huggingface_hub.constants", "HF_HUB_OFFLINE", True)
    try:
        yield
    finally:
        for mod, attr, old in reversed(patched):
            setattr(mod, attr, old)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def read_blimp(data_dir: Path, uid: str, limit: int | None = None) -> list[dict]:
    """Plain-Python reader for one paradigm (tests and sanity checks)."""
    rows = []
    with gzip.open(data_dir / "blimp" / f"{uid}.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
                if limit is not None and len(rows) >= limit:
                    break
    return rows


def temp_workdir(prefix: str = "arena-lm-eval-") -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=prefix)


__all__ = ["CharTokenizer", "SPECIALS", "resolve_data_dir", "is_offline", "hub_reachable", "require_remote", "load_corpus", "split_corpus",
           "blimp_paradigms", "check_local_benchmark", "require_benchmarks", "write_local_yamls", "offline_hf",
           "read_blimp", "temp_workdir", "ENV_DATA_DIR", "LAYOUT_HINT", "BENCHMARK_HF_IDS", "LOCAL_BENCHMARKS"]
