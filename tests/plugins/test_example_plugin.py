"""The example plugin, as a user gets it: pip-installed into a fresh virtualenv, listed, submitted, on the leaderboard.

Slow (a venv, two pip installs with build isolation, one sandboxed suite run): ``pytest -m slow
tests/plugins/test_example_plugin.py``. The venv reuses this interpreter's site-packages so torch is not
downloaded again; arena itself is installed into it editable with ``--no-deps``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "arena-plugin-example"

pytestmark = pytest.mark.slow


def _run(cmd: list[str], env: dict[str, str], cwd: Path | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    print("$", " ".join(str(c) for c in cmd), f"-> {proc.returncode}")
    print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n")
    return proc


def test_example_plugin_installs_lists_submits_and_shows_on_the_leaderboard(tmp_path):
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("ARENA_NO_PLUGINS", "ARENA_PLUGINS", "ARENA_DB_URL",
                                                              "PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", PIP_DISABLE_PIP_VERSION_CHECK="1")
    assert _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], env).returncode == 0
    py, arena = venv / "bin" / "python", venv / "bin" / "arena"
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    assert _run([str(py), "-m", "pip", "install", "-q", "--no-deps", "-e", str(REPO)], env).returncode == 0
    assert _run([str(py), "-m", "pip", "install", "-q", str(EXAMPLE)], env).returncode == 0

    # installed (not editable): the plugin's code lives in the venv, and the entry point names it
    where = _run([str(py), "-c", "import arena_plugin_example.gla as m; print(m.__file__)"], env)
    assert str(venv) in where.stdout

    listed = _run([str(arena), "list", "archs", "--json"], env)
    assert listed.returncode == 0
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["gla-mini"]["source"] == "plugin"
    assert rows["gla-mini"]["plugin"] == "arena-plugin-example 0.1.0"
    assert rows["rnn"]["source"] == "builtin"

    # the plugin's own contract tests pass against the installed arena
    tests = _run([str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], env, cwd=EXAMPLE)
    assert tests.returncode == 0 and "4 passed" in tests.stdout

    db = f"sqlite:///{tmp_path / 'arena.db'}"
    sub = _run([str(arena), "submit", "gla-mini", "--db", db, "--max-steps", "30", "--json"], env)
    assert sub.returncode == 0, sub.stderr
    out = json.loads(sub.stdout)
    assert out["ok"] and out["arch"] == "gla-mini" and all(c["ok"] for c in out["checks"])
    assert {c["name"] for c in out["checks"]} >= {"causality", "step == parallel", "param count", "determinism"}
    assert out["plugin"]["name"] == "arena-plugin-example" and out["plugin"]["version"] == "0.1.0"
    # the hash covers the installed package's files, in the venv (what actually ran), not the source checkout
    site = Path(where.stdout.strip()).parent
    files = sorted(p for p in site.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    h = hashlib.sha256()
    for p in files:
        h.update(p.relative_to(site.parent).as_posix().encode() + b"\0"
                 + hashlib.sha256(p.read_bytes()).hexdigest().encode() + b"\n")
    assert out["plugin"]["sha256"] == h.hexdigest()
    [run] = out["runs"]
    assert run["task"] == "scan-depth"

    shown = json.loads(_run([str(arena), "show", str(run["run_id"]), "--db", db, "--json"], env).stdout)
    assert shown["source"] == "plugin" and shown["status"] == "completed"
    assert shown["plugin"] == {"name": "arena-plugin-example", "version": "0.1.0", "sha256": out["plugin"]["sha256"]}

    board = _run([str(arena), "export", "--format", "md", "--db", db], env)
    assert board.returncode == 0
    assert "gla-mini (arena-plugin-example 0.1.0)" in board.stdout.replace("\\(", "(").replace("\\)", ")")
