"""The shared assertion of the bad-input tables: the CLI exits with ``code``, says ``fragment``, prints no
traceback, and wrote no run."""

from __future__ import annotations

from pathlib import Path

import pytest

from arena.store import list_runs, open_store


def assert_cli_refuses(code: int, fragment: str, db: Path, capsys) -> None:
    """Run ``arena`` (``sys.argv`` already set) in-process and check how it refused."""
    from arena.cli.app import main

    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    err = " ".join((out.err + out.out).split())
    assert exc.value.code == code, err
    assert fragment in err, err
    assert "Traceback" not in err
    if db.exists():
        assert list_runs(open_store(f"sqlite:///{db}")) == [], "bad input wrote a run"
