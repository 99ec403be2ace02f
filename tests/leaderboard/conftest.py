"""Leaderboard fixtures: seeded databases (missing, empty, small with a hostile plugin row, 10,000 runs)."""

from __future__ import annotations

import pytest
from _lb_helpers import seed_small

from arena.leaderboard.synthetic import seed_database
from arena.store.engine import open_store


@pytest.fixture(autouse=True)
def _isolated_results(tmp_path_factory, monkeypatch):
    """The Depth page also reads ./results/succinctness*.csv; the repository ships real ones, so every test runs
    from an empty working directory and sees only the files it writes itself."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture
def small_db(tmp_path, monkeypatch) -> tuple[str, dict[str, int]]:
    url = f"sqlite:///{tmp_path / 'small.db'}"
    ids = seed_small(url)
    monkeypatch.setenv("ARENA_DB_URL", url)
    return url, ids


@pytest.fixture
def missing_db(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'nothing-here.db'}"
    monkeypatch.setenv("ARENA_DB_URL", url)
    return url


@pytest.fixture
def empty_db(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(url).dispose()  # migrated schema, no runs
    monkeypatch.setenv("ARENA_DB_URL", url)
    return url


@pytest.fixture(scope="session")
def big_db_url(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('big') / 'big.db'}"
    seed_database(url, 10_000).dispose()
    return url
