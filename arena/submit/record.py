"""Recording accepted submissions: the run rows are assembled by the parent from what it measured, and written
through :mod:`arena.store.repo` in one transaction (all suite runs or none).

Identity columns (``source="plugin"``, the plugin's name, version and SHA-256) are the parent's, never the
worker's. A run whose config hash (plugin SHA-256 + config + seed; the secret data seed is not part of it) is
already recorded is the *same* run, not a new replicate: it is reported and not written again.
"""

from __future__ import annotations

from typing import Any

from arena.measure.hardware import hardware
from arena.record import flatten_metrics, provenance  # noqa: F401  (the suite's metric rows and provenance)


def hardware_info() -> dict[str, Any]:
    hw = hardware("cpu")
    hw["threads"] = 1  # the workers run single-threaded
    return hw


def already_recorded(url: str, hashes: list[str]) -> dict[str, int]:
    """config hash -> run id for the completed runs already in the database."""
    from arena.store import repo
    from arena.store.engine import open_store

    engine = open_store(url)
    try:
        found = {h: repo.find_completed(engine, h) for h in hashes}
    finally:
        engine.dispose()
    return {h: r.id for h, r in found.items() if r is not None}


def write(url: str, runs: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[int]:
    from arena.store import repo
    from arena.store.engine import open_store

    engine = open_store(url)
    try:
        return repo.import_runs(engine, runs)
    finally:
        engine.dispose()
