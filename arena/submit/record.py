"""Recording accepted submissions: the run rows are assembled by the parent from what it measured, and written
through :mod:`arena.store.repo` in one transaction (all suite runs or none).

Identity columns (``source="plugin"``, the plugin's name, version and SHA-256) are the parent's, never the
worker's. A run whose config hash (plugin SHA-256 + config + seed; the secret data seed is not part of it) is
already recorded is the *same* run, not a new replicate: it is reported and not written again.
"""

from __future__ import annotations

import sys
from typing import Any

from arena import __version__
from arena.measure.hardware import git_commit, hardware, package_versions


def flatten_metrics(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """``{split: {"metrics", "slices"}}`` -> metric rows (the shape :func:`arena.store.repo.record_many` takes)."""

    def num(v: Any) -> float | None:
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    rows = []
    for split, r in results.items():
        for name, value in r.get("metrics", {}).items():
            if name != "n":
                rows.append({"split": split, "name": name, "value": num(value),
                             "n": int(r["metrics"].get("n", 0)) or None})
        for key, groups in r.get("slices", {}).items():
            for val, ms in groups.items():
                for name, value in ms.items():
                    if name != "n":
                        rows.append({"split": split, "name": name, "value": num(value), "slice_key": key,
                                     "slice_value": str(val), "n": int(ms.get("n", 0)) or None})
    return rows


def provenance(command: str | None) -> dict[str, Any]:
    sha, dirty = git_commit()
    return {"arena_version": __version__, "git_commit": sha, "git_dirty": dirty, "python": sys.version.split()[0],
            "packages": package_versions(), "command": command}


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
        return repo.record_many(engine, runs)
    finally:
        engine.dispose()
