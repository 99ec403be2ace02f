"""Shared fixtures: one thread, passive OpenMP, plugins off, a temporary database per test."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("ARENA_NO_PLUGINS", "1")  # third-party plugins never leak into the suite

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _export_cache_per_test(tmp_path_factory, monkeypatch):
    """Every test (and every process it starts) gets its own export cache: none reads another's entries."""
    monkeypatch.setenv("ARENA_CACHE_DIR", str(tmp_path_factory.mktemp("arena-cache")))


@pytest.fixture
def db_url(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'arena.db'}"
    monkeypatch.setenv("ARENA_DB_URL", url)
    monkeypatch.setenv("ARENA_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    return url
