"""SQLAlchemy 2.0 typed ORM: runs, their per-split/per-slice metrics, and provenance.

A run row is created ``running``; it becomes ``completed`` in one transaction that also writes its metrics and
provenance, or ``failed`` / ``interrupted`` with the error. Schema changes go through Alembic migrations
(``arena/store/migrations``), never ``create_all`` on a live database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

VERSION_TABLE = "arena_alembic_version"  # our own name, so arena can share a database with other Alembic users
STATUSES = ("running", "completed", "failed", "interrupted")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # identity
    arch: Mapped[str] = mapped_column(String(128), index=True)
    arch_version: Mapped[int] = mapped_column(Integer)
    arch_kind: Mapped[str] = mapped_column(String(16))
    arch_family: Mapped[str] = mapped_column(String(64), default="other")
    task: Mapped[str] = mapped_column(String(128), index=True)
    task_version: Mapped[int] = mapped_column(Integer)
    split: Mapped[str] = mapped_column(String(64))
    size: Mapped[str | None] = mapped_column(String(32))
    seed: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    config_hash: Mapped[str] = mapped_column(String(64), index=True)
    # lifecycle
    status: Mapped[str] = mapped_column(String(16), index=True, default="running")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer, default=0)
    checkpoint_path: Mapped[str | None] = mapped_column(Text)
    # measured cost
    params_total: Mapped[int | None] = mapped_column(BigInteger)
    params_embedding: Mapped[int | None] = mapped_column(BigInteger)
    params_non_embedding: Mapped[int | None] = mapped_column(BigInteger)
    params_active: Mapped[int | None] = mapped_column(BigInteger)
    state_size: Mapped[int | None] = mapped_column(BigInteger)
    flops_forward_per_token: Mapped[float | None] = mapped_column(Float)
    flops_forward_per_example: Mapped[float | None] = mapped_column(Float)
    flops_train_total: Mapped[float | None] = mapped_column(Float)
    flops_counted_per_example: Mapped[float | None] = mapped_column(Float)
    flops_note: Mapped[str | None] = mapped_column(Text)
    # submissions only: "verified" | "declared" (None: arena's own code, analytic counts cross-checked by a counter)
    flops_status: Mapped[str | None] = mapped_column(String(16))
    latency_p50_ms: Mapped[float | None] = mapped_column(Float)
    latency_p90_ms: Mapped[float | None] = mapped_column(Float)
    latency_batch: Mapped[int | None] = mapped_column(Integer)
    throughput_per_s: Mapped[float | None] = mapped_column(Float)
    threads: Mapped[int | None] = mapped_column(Integer)
    memory_mb: Mapped[float | None] = mapped_column(Float)
    train_seconds: Mapped[float | None] = mapped_column(Float)
    # score
    metric: Mapped[str | None] = mapped_column(String(64))
    headline_split: Mapped[str | None] = mapped_column(String(64))
    score: Mapped[float | None] = mapped_column(Float)
    normalized_score: Mapped[float | None] = mapped_column(Float)
    chance: Mapped[float | None] = mapped_column(Float)
    higher_is_better: Mapped[bool] = mapped_column(Boolean, default=True)
    # where it came from
    source: Mapped[str] = mapped_column(String(16), default="builtin")
    plugin_name: Mapped[str | None] = mapped_column(String(255))
    plugin_version: Mapped[str | None] = mapped_column(String(64))
    plugin_sha256: Mapped[str | None] = mapped_column(String(64))
    isolation: Mapped[str | None] = mapped_column(String(16))  # submissions: "namespaces" | "uid" | "none"
    task_specific: Mapped[bool] = mapped_column(Boolean, default=False)
    hardware: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # derived runs (arena prune): made from the parent's trained model, not trained from scratch
    parent_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    derived_method: Mapped[str | None] = mapped_column(String(32))
    heads_kept: Mapped[int | None] = mapped_column(Integer)
    finetune_steps: Mapped[int | None] = mapped_column(Integer)

    metrics: Mapped[list[Metric]] = relationship(back_populates="run", cascade="all, delete-orphan",
                                                 order_by="Metric.id")
    provenance: Mapped[Provenance | None] = relationship(back_populates="run", cascade="all, delete-orphan",
                                                         uselist=False)


def _add_declared_columns() -> None:
    """Cost/score columns declared in :mod:`arena.columns` that the class above does not spell out (new ones
    only need their declaration and a migration)."""
    from arena.columns import COLUMNS

    types = {"float": Float, "int": BigInteger, "text": Text}
    for c in COLUMNS:
        if c.name not in Run.__table__.c:
            setattr(Run, c.name, mapped_column(c.name, types[c.sql], nullable=True))


_add_declared_columns()


class Metric(Base):
    __tablename__ = "metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    split: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    value: Mapped[float | None] = mapped_column(Float)
    slice_key: Mapped[str | None] = mapped_column(String(64))
    slice_value: Mapped[str | None] = mapped_column(String(64))
    n: Mapped[int | None] = mapped_column(Integer)

    run: Mapped[Run] = relationship(back_populates="metrics")


class Provenance(Base):
    __tablename__ = "provenance"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    arena_version: Mapped[str] = mapped_column(String(32))
    git_commit: Mapped[str | None] = mapped_column(String(64))
    git_dirty: Mapped[bool | None] = mapped_column(Boolean)
    python: Mapped[str] = mapped_column(String(64))
    packages: Mapped[dict[str, Any]] = mapped_column(JSON)
    command: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    run: Mapped[Run] = relationship(back_populates="provenance")
