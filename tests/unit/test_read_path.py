"""The read path imports no torch: export, ``arena list runs``, ``arena show --json`` and ``arena export`` work in
a process where torch was never imported (a leaderboard host or CI job need not install it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, sys
from leaderboard.synthetic import seed_database
url = sys.argv[1]
seed_database(url, n_runs=6).dispose()
import arena.export, arena.record, arena.columns, arena.cli  # noqa: E401
from typer.testing import CliRunner
from arena.cli.app import app
out = {}
for args in (["list", "runs", "--db", url, "--json"], ["show", "1", "--db", url, "--json"],
             ["export", "--db", url, "--format", "csv"], ["export", "--db", url, "--format", "json"],
             ["export", "--db", url, "--format", "md"]):
    res = CliRunner().invoke(app, args)
    out[" ".join(args[:2])] = (res.exit_code, res.output)
print(json.dumps({"torch": "torch" in sys.modules, "out": out}))
"""


def test_read_commands_import_no_torch(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               ARENA_NO_PLUGINS="1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, f"sqlite:///{tmp_path / 'r.db'}"], capture_output=True,
                          text=True, timeout=300, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, (code, output) in got["out"].items():
        assert code == 0, f"{name}: {output}"
    shown = json.loads(got["out"]["show 1"][1])
    assert shown["run_id"] == 1 and shown["reproduce"].startswith("arena run")
    assert len(json.loads(got["out"]["list runs"][1])) == 6
    assert got["torch"] is False


def test_importtime_of_each_read_command_lists_no_torch(tmp_path):
    """The issue's own check, one fresh process per command as a user types it: ``python -X importtime`` prints
    every module the process imported; no line may be torch (plugins enabled, as by default)."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-c", "import sys; from leaderboard.synthetic import seed_database; "
                    "seed_database(sys.argv[1], n_runs=4).dispose()", url], check=True, cwd=REPO, env=env, timeout=300)
    for args in (["list", "runs"], ["show", "1"], ["export", "--format", "csv"], ["export", "--format", "json"]):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "arena.cli", *args, "--db", url],
                              capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
        imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
        assert len(imported) > 100, args  # importtime really listed the process's imports
        assert not [m for m in imported if m == "torch" or m.startswith("torch.")], args
        # nor Alembic: a reader checks the schema revision with plain SQL; only a writer that migrates needs it
        assert not [m for m in imported if m == "alembic" or m.startswith("alembic.")], args


def test_revisions_read_without_alembic_match_alembic():
    """The reader's revision graph (parsed from the migration files) is the one Alembic builds from them."""
    from arena.store import engine

    _, script = engine._script()
    assert engine._revision_graph() == {r.revision: r.down_revision for r in script.walk_revisions()}
    assert engine._head() == script.get_current_head()
