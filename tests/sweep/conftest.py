"""Fixtures for sweep tests: tiny grids (runs of about a second), a PostgreSQL URL when a server is reachable."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

TINY_TRAIN = {"max_steps": 6, "batch_size": 8, "eval_every": 3, "warmup_steps": 1, "eval_batch_size": 16,
              "checkpoint_every": 3}


def tiny_spec(seeds: list[int], lrs: list[float] | None = None, archs: list[Any] | None = None,
              name: str = "t") -> dict[str, Any]:
    """2 archs x 2 tasks x seeds x lrs tiny runs (depth-1 tasks, a handful of examples, cheap latency)."""
    return {
        "name": name,
        "archs": archs or ["rnn", {"name": "transformer", "config": {"n_heads": 2}}],
        "tasks": [{"name": "counter-chain", "split": "iid", "config": {"depth": 1, "n_train": 64, "n_val": 8,
                                                                         "n_test": 16}},
                  {"name": "nested-parity", "config": {"variant": "flat", "depth": 1, "n_train": 64, "n_val": 8,
                                                         "n_test": 16}}],
        "sizes": ["tiny"],
        "seeds": seeds,
        **({"lrs": lrs} if lrs else {}),
        "train": dict(TINY_TRAIN),
        "latency": {"min_run_time": 0.01, "batch": 2},
    }


@pytest.fixture
def sweep_env(tmp_path, monkeypatch) -> dict[str, str]:
    """A fresh SQLite database and checkpoint folder (also exported for child processes)."""
    url = f"sqlite:///{tmp_path / 'arena.db'}"
    ck = str(tmp_path / "checkpoints")
    monkeypatch.setenv("ARENA_DB_URL", url)
    monkeypatch.setenv("ARENA_CHECKPOINT_DIR", ck)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return {"url": url, "checkpoints": ck, "dir": str(tmp_path)}


def _pg_base() -> str:
    url = os.environ.get("ARENA_TEST_PG_URL")
    if not url:
        pytest.skip("PostgreSQL tests need ARENA_TEST_PG_URL (CI starts a server with: eval \"$(.ci/postgres.sh)\")")
    return url


@pytest.fixture
def pg_url() -> str:
    """A PostgreSQL URL whose search_path is a fresh schema (dropped afterwards), so tests never share tables."""
    from sqlalchemy import create_engine, text

    base = _pg_base()
    schema = "t_" + uuid.uuid4().hex[:12]
    try:
        admin = create_engine(base)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # unreachable server, wrong password...
        pytest.skip(f"PostgreSQL at ARENA_TEST_PG_URL is unreachable: {type(exc).__name__}: {str(exc)[:200]}")
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


REPO = Path(__file__).resolve().parents[2]
