"""Persistence: ORM models, engines (any SQLAlchemy URL; SQLite by default) and run lifecycle helpers."""

from arena.store.engine import DEFAULT_URL, open_store, resolve_url
from arena.store.models import Base, Metric, Provenance, Run
from arena.store.repo import get_run, list_runs, mark_stale_runs

__all__ = ["DEFAULT_URL", "open_store", "resolve_url", "Base", "Metric", "Provenance", "Run", "get_run", "list_runs",
           "mark_stale_runs"]
