"""Child-process body of the concurrent-writer test, in its own module so spawned children import only the store
(not torch)."""

from __future__ import annotations

from typing import Any


def write_runs(url: str, ident: dict[str, Any], payload: dict[str, Any], who: int, n: int, q: Any) -> None:
    from arena.store import open_store, repo

    try:
        engine = open_store(url)
        for i in range(n):
            repo.import_runs(engine, [(dict(ident, config_hash=f"w{who}-r{i:02d}", seed=i), payload)])
        q.put((who, "ok"))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        q.put((who, f"{type(exc).__name__}: {exc}"))
