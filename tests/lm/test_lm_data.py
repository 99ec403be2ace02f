"""Data resolution for the LM track: corpora and splits, generated lm-eval YAMLs, and one fast clear error when
data is missing offline."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arena.errors import ArenaError
from arena.tasks.lm.data import (
    ENV_DATA_DIR,
    CharTokenizer,
    blimp_paradigms,
    load_corpus,
    require_benchmarks,
    resolve_data_dir,
    split_corpus,
    write_local_yamls,
)

REPO = Path(__file__).resolve().parents[2]


def shared_data() -> Path | None:
    env = os.environ.get(ENV_DATA_DIR)
    if env and Path(env).is_dir():
        return Path(env)
    fallback = REPO.parent / "shared" / "data"
    return fallback if fallback.is_dir() else None


DATA = shared_data()
needs_data = pytest.mark.skipif(DATA is None, reason=f"no shared data: set {ENV_DATA_DIR} or provide ../shared/data")


@pytest.fixture
def offline_no_data(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_DATA_DIR, raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize("names", [["blimp"], ["lambada_openai"], ["hellaswag"]])
def test_offline_without_data_is_one_fast_clear_error(offline_no_data, names):
    t0 = time.monotonic()
    with pytest.raises(ArenaError) as exc:
        require_benchmarks(names, resolve_data_dir(None))
    assert time.monotonic() - t0 < 10
    msg = str(exc.value)
    assert f"{ENV_DATA_DIR}=path/to/data" in msg and "blimp/<UID>.jsonl.gz" in msg and names[0] in msg


def test_offline_corpus_without_data_is_a_clear_error(offline_no_data):
    with pytest.raises(ArenaError, match=f"{ENV_DATA_DIR}=path/to/data"):
        load_corpus("tinyshakespeare", None)
    with pytest.raises(ArenaError, match="not a directory"):
        resolve_data_dir(str(offline_no_data / "nowhere"))


def test_cli_run_offline_without_data_fails_fast_with_one_message(offline_no_data, db_url):
    env = dict(os.environ)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "arena.cli", "run", "--arch", "rnn", "--task", "lm", "--size", "tiny",
                           "--max-steps", "1", "--db", db_url, "--json"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"{ENV_DATA_DIR}=path/to/data" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout.strip() == ""
    assert time.monotonic() - t0 < 60  # process start-up included; the check itself is instantaneous


def test_missing_files_in_a_data_dir_are_named(tmp_path):
    (tmp_path / "blimp").mkdir()
    (tmp_path / "blimp" / "adjunct_island.jsonl.gz").write_bytes(gzip.compress(b"{}\n"))
    with pytest.raises(ArenaError, match="holds 1 <UID>.jsonl.gz files, expected 67"):
        require_benchmarks(["blimp"], tmp_path)
    with pytest.raises(ArenaError, match="lambada_test.jsonl"):
        require_benchmarks(["lambada_openai"], tmp_path)
    with pytest.raises(ArenaError, match="no local copy"):
        require_benchmarks(["hellaswag"], tmp_path)
    with pytest.raises(ArenaError, match="tinyshakespeare/input.txt"):
        load_corpus("tinyshakespeare", tmp_path)


def test_tinystories_cut_falls_on_a_blank_line():
    text = "".join(f"Story {i} begins.\n\nIt ends {i}.\n\n" for i in range(200))
    train, val = split_corpus("tinystories", text)
    assert train + val == text and train.endswith("\n\n") and abs(len(train) / len(text) - 0.9) < 0.02


@needs_data
def test_tinyshakespeare_nanogpt_split_and_vocab():
    text = load_corpus("tinyshakespeare", resolve_data_dir(str(DATA)))
    train, val = split_corpus("tinyshakespeare", text)
    assert (len(train), len(val)) == (1_003_854, 111_540)
    tok = CharTokenizer.from_text(text)
    assert tok.size == 65 + 3 and tok.vocab.tokens[:3] == ("<pad>", "<bos>", "<unk>")
    assert tok.decode(tok.encode(val[:500])) == val[:500]
    from arena.tasks.lm import LMConfig, LMTask

    task = LMTask(LMConfig(data_dir=str(DATA)))
    assert task.vocab == tok.vocab and task.val_text == val
    assert task.chance == pytest.approx(4.829, abs=1e-3)  # unigram bits/char: the input-ignoring baseline
    assert task.metric == "bits_per_char" and not task.higher_is_better and task.eval_splits == [
        "val", "blimp", "lambada_openai"]


@needs_data
def test_generated_yamls_use_absolute_paths_and_the_limit(tmp_path):
    data = resolve_data_dir(str(DATA))
    assert len(blimp_paradigms(data)) == 67
    names = write_local_yamls(tmp_path / "tasks", data, ["blimp", "lambada_openai"], tmp_path / "cache", limit=7)
    assert names == {"blimp": "arena_blimp", "lambada_openai": "arena_lambada_openai"}
    group = json.loads((tmp_path / "tasks" / "arena_blimp_group.yaml").read_text())
    assert len(group["task"]) == 67 and group["aggregate_metric_list"][0]["weight_by_size"] is False
    one = json.loads((tmp_path / "tasks" / "arena_blimp_adjunct_island.yaml").read_text())
    path = Path(one["dataset_kwargs"]["data_files"]["train"])
    assert path.is_absolute() and len(path.read_text().splitlines()) == 7
    assert one["doc_to_choice"] == "{{[sentence_good, sentence_bad]}}" and one["validation_split"] == "train"
    lam = json.loads((tmp_path / "tasks" / "arena_lambada_openai.yaml").read_text())
    first = json.loads(Path(lam["dataset_kwargs"]["data_files"]["test"]).read_text().splitlines()[0])
    with open(data / "lambada_openai" / "lambada_test.jsonl", encoding="utf-8") as f:
        assert first == json.loads(f.readline())
    full = write_local_yamls(tmp_path / "full", data, ["lambada_openai"], tmp_path / "cache")
    lam = json.loads((tmp_path / "full" / f"{full['lambada_openai']}.yaml").read_text())
    assert lam["dataset_kwargs"]["data_files"]["test"] == str(data / "lambada_openai" / "lambada_test.jsonl")
