"""Helpers shared by the leaderboard tests (seeding, AppTest factory, tree walking)."""

from __future__ import annotations

from pathlib import Path

import arena.leaderboard
from arena.leaderboard.synthetic import add_run, seed_database

APP = Path(arena.leaderboard.__file__).resolve().parent / "streamlit_app.py"
PAGES = ["leaderboard", "pareto", "depth", "lr_robustness", "run_detail", "glossary"]
XSS_ARCH = "<script>alert(1)</script>"
XSS_PLUGIN = '<img src=x onerror="window.__xss=1">'


def seed_small(url: str) -> dict[str, int]:
    """60 runs over 5 archs x 2 tasks x 3 sizes x 2 seeds, one hostile plugin run, one failed run."""
    engine = seed_database(url, 60)
    hostile = add_run(engine, arch=XSS_ARCH, source="plugin", plugin_name=XSS_PLUGIN, plugin_version="0.1 **x**",
                      plugin_sha256="ab" * 32, normalized_score=0.9, score=0.9)
    failed = add_run(engine, arch="rnn", status="failed", error="Traceback: <b>boom</b>", score=None,
                     normalized_score=None)
    return {"hostile": hostile, "failed": failed}


def app_test(timeout: float = 120):
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(APP), default_timeout=timeout)


def walk(node):
    """Every element in an AppTest tree (blocks included)."""
    for child in getattr(node, "children", {}).values():
        yield child
        yield from walk(child)
