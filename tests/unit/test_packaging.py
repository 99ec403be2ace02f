"""A clean non-editable install puts the built-ins under the arena namespace and nothing generic at top level."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return next(out.glob("arena-*.whl"))


def test_wheel_has_only_the_arena_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops <= {"arena", next(t for t in tops if t.endswith(".dist-info"))}, tops
    for expected in ("arena/architectures/rnn.py", "arena/tasks/scan_depth.py", "arena/leaderboard/streamlit_app.py",
                     "arena/store/migrations/versions/0001_initial_schema.py", "arena/store/migrations/env.py"):
        assert expected in names, expected


def test_installed_copy_imports_builtins_and_shadows_nothing(wheel, tmp_path):
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert not (target / "tasks").exists() and not (target / "architectures").exists()
    code = ("import importlib.util, arena.registry as r; "
            "assert r.get_task('scan-depth').cls.__module__ == 'arena.tasks.scan_depth'; "
            "assert r.get_arch('rnn').factory.__module__ == 'arena.architectures.rnn'; "
            "assert importlib.util.find_spec('tasks') is None and importlib.util.find_spec('architectures') is None; "
            "import arena; print(arena.__file__)")
    proc = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path[:0] = [{str(target)!r}] + "
                           f"[p for p in {sys.path!r} if 'site-packages' in p]; " + code],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert str(target) in proc.stdout
