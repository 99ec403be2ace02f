"""The LM track end to end through the CLI, offline: ``arena run --task lm`` returns bits/char, BLiMP (with
per-paradigm slices) and LAMBADA in one run record, and ``arena eval`` on its checkpoint reproduces them."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

REPO = Path(__file__).resolve().parents[2]


def shared_data() -> Path | None:
    env = os.environ.get("ARENA_DATA_DIR")
    if env and Path(env).is_dir():
        return Path(env)
    fallback = REPO.parent / "shared" / "data"
    return fallback if fallback.is_dir() else None


DATA = shared_data()
pytestmark = pytest.mark.skipif(DATA is None, reason="no shared data: set ARENA_DATA_DIR or provide ../shared/data")


def arena(*args: str, cwd: Path, env: dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, "-m", "arena.cli", *args], capture_output=True, text=True, timeout=900,
                          cwd=cwd, env=env)
    if proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_run_lm_offline_then_eval_the_checkpoint(tmp_path, db_url):
    env = dict(os.environ, ARENA_DATA_DIR=str(DATA), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1",
               HF_HOME=str(tmp_path / "hf"), OMP_NUM_THREADS="1", ARENA_CHECKPOINT_DIR=str(tmp_path / "ckpt"))
    rec = arena("run", "--arch", "transformer", "--task", "lm", "--size", "tiny", "--max-steps", "50",
                "--set", "eval_limit=20", "--set", "latency.min_run_time=0.05", "--db", db_url, "--json",
                cwd=tmp_path, env=env)
    assert rec["status"] == "completed" and rec["task"] == "lm"
    scores = rec["scores"]
    assert set(scores) == {"val", "blimp", "lambada_openai"}
    # 50 steps already beat the uniform code length over the 68-symbol vocabulary (log2 68 = 6.09 bits)
    assert 1.0 < scores["val"]["bits_per_char"] < 0.9 * math.log2(68)
    assert 0.0 <= scores["blimp"]["acc"] <= 1.0
    assert scores["lambada_openai"]["perplexity"] > 1.0 and 0.0 <= scores["lambada_openai"]["acc"] <= 1.0
    paradigms = rec["slices"]["blimp"]["paradigm"]
    assert len(paradigms) == 67 and "adjunct_island" in paradigms
    accs = [p["acc"] for p in paradigms.values()]
    assert all(a in {k / 20 for k in range(21)} for a in accs)  # 20 pairs per paradigm
    assert sum(accs) / 67 == pytest.approx(scores["blimp"]["acc"], abs=1e-9)  # unweighted mean, as in lm-eval
    assert rec["headline_split"] == "val" and rec["metric"] == "bits_per_char"
    assert rec["score"] == scores["val"]["bits_per_char"] and rec["normalized_score"] is None
    assert rec["params"]["total"] > 0 and rec["flops"]["forward_per_token"] > 0

    # the stored checkpoint gives back the same numbers
    again = arena("eval", "--run", str(rec["run_id"]), "--tasks", "val,lambada_openai", "--limit", "20",
                  "--db", db_url, "--json", "--save", cwd=tmp_path, env=env)
    assert again["scores"]["val"]["bits_per_char"] == pytest.approx(scores["val"]["bits_per_char"], rel=1e-9)
    assert again["scores"]["lambada_openai"]["perplexity"] == pytest.approx(scores["lambada_openai"]["perplexity"],
                                                                            rel=1e-6)

    # --save replaced those splits in the run record and left BLiMP alone
    from arena.runner import run_record
    from arena.store import get_run, open_store

    stored = run_record(get_run(open_store(db_url), rec["run_id"]))
    assert stored["scores"]["blimp"] == scores["blimp"] and len(stored["slices"]["blimp"]["paradigm"]) == 67
    assert stored["scores"]["val"]["bits_per_char"] == pytest.approx(scores["val"]["bits_per_char"], rel=1e-9)
    assert stored["extra"]["lm_eval"]["lambada_openai"] == {"limit": 20}
