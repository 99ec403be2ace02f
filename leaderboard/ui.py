"""Streamlit glue shared by the pages: the read-only engine (cache_resource) and cached queries (cache_data, 1 min).

The database URL comes from ``$ARENA_DB_URL`` (set by ``arena leaderboard --db``), else the store's default.
Run metadata is only ever shown through text-safe elements (st.text, st.code, st.json, st.dataframe, chart
tooltips) or escaped with :func:`queries.safe_md`; nothing here uses ``unsafe_allow_html``.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from arena.errors import StoreError
from arena.leaderboard import queries
from arena.store.engine import UnreadableDatabaseError, open_store, resolve_url

TTL = "1m"


def db_url() -> str:
    return resolve_url(None)


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    return open_store(url, readonly=True)


def engine_or_message() -> Engine | None:
    """The read-only engine, or None after showing a helpful message (no database yet, bad URL)."""
    url = db_url()
    try:
        engine = _engine(url)
        queries.has_runs_table(engine)  # a file that is not a database fails here, not halfway down a page
        return engine
    except UnreadableDatabaseError as exc:  # corrupted, or written by a newer arena: not "no results yet"
        st.error(f"Cannot read the database {queries.safe_md(queries.db_label(url))}:")
        st.code(str(exc), language=None)
        return None
    except StoreError as exc:
        st.info(f"No results to show yet: {queries.safe_md(exc)}")
        st.markdown("Record a run first, for example:")
        st.code(f"arena run --arch rnn --task scan-depth --size tiny --db {url}", language="bash")
        st.caption("then reload this page (results are re-read every minute).")
        return None
    except DBAPIError as exc:
        st.error(f"Cannot read the database {queries.safe_md(queries.db_label(url))}:")
        st.code(str(getattr(exc, "orig", None) or exc), language=None)
        return None


def no_runs_message() -> None:
    st.info("The database has no completed runs yet.")
    st.code("arena run --arch rnn --task scan-depth --size tiny", language="bash")
    st.caption("Failed or still-running runs are not shown on the leaderboard; see `arena list runs`.")


@st.cache_data(ttl=TTL, show_spinner=False)
def task_splits(url: str) -> list[tuple[str, str]]:
    """Every (task, split) with completed runs: one small DISTINCT query, so a page reads only its task's runs."""
    return queries.task_pairs(_engine(url))


@st.cache_data(ttl=TTL, show_spinner="reading runs…")
def runs(url: str, task: str | None = None) -> pd.DataFrame:
    """The completed runs of ``task`` (every task for None), one row each."""
    return queries.runs_frame(_engine(url), task)


def runs_or_stop() -> tuple[str, list[tuple[str, str]]]:
    """The page preamble: the database URL and its (task, split) pairs, or a message and ``st.stop()``."""
    url = db_url()
    if engine_or_message() is None:
        st.stop()
    pairs = task_splits(url)
    if not pairs:
        no_runs_message()
        st.stop()
    return url, pairs


@st.cache_data(ttl=TTL, show_spinner="aggregating…")
def board(url: str, task: str, split: str, hardware: tuple[str, ...] = ()) -> pd.DataFrame:
    """One task's aggregate over seeds, cached independently of the gate: moving the gate only recomputes ratios."""
    return queries.leaderboard(queries.filter_runs(runs(url, task), (task,), (split,), hardware))


@st.cache_data(ttl=TTL, show_spinner=False)
def arch_scale(url: str) -> tuple[list[str], list[str]]:
    """Every architecture in the database with its fixed colour (the same on every page)."""
    return queries.arch_scale(queries.arch_names(_engine(url)))


@st.cache_data(ttl=TTL, show_spinner="reading depth slices…")
def depth(url: str, task: str) -> pd.DataFrame:
    """Per-depth curves of every leaderboard row of ``task`` (mean, std, n over seeds)."""
    return queries.depth_curves(runs(url, task), queries.metric_rows(_engine(url), task, slice_key="depth"))


@st.cache_data(ttl=TTL, show_spinner=False)
def val_scores(url: str, task: str) -> pd.DataFrame:
    return queries.val_scores(_engine(url), task)


@st.cache_data(ttl=TTL, show_spinner=False)
def run_choices(url: str) -> pd.DataFrame:
    return queries.run_choices(_engine(url))


@st.cache_data(ttl=TTL, show_spinner="loading the run…")
def run_detail(url: str, run_id: int) -> dict | None:
    return queries.run_detail(_engine(url), run_id)


@st.cache_data(ttl=TTL, show_spinner=False)
def status_counts(url: str) -> dict[str, int]:
    return queries.status_counts(_engine(url))


@st.cache_data(ttl=TTL, show_spinner=False)
def last_updated(url: str) -> pd.Timestamp | None:
    return queries.last_updated(_engine(url))


@st.cache_data(ttl=TTL, show_spinner=False)
def succinctness(url: str) -> tuple[pd.DataFrame, list[str]]:
    return queries.succinctness_frame(queries.succinctness_dirs(url))
