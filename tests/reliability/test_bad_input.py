"""A table of bad inputs across the CLI, configs, sweep specs and plugins: each exits 2 (bad input) or 1 (a run
that failed) with a message naming the problem, never a traceback, and writes nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _refusal import assert_cli_refuses

from arena.store import list_runs, open_store

RUN = ["run", "--arch", "rnn", "--task", "scan-depth", "--size", "tiny", "--max-steps", "2"]


def _files(tmp: Path) -> dict[str, str]:
    (tmp / "malformed.yaml").write_text("archs: [rnn\n  tasks: {")
    (tmp / "unknown_key.yaml").write_text("archs: [rnn]\ntasks: [{name: scan-depth}]\nseedz: [0]\n")
    (tmp / "wrong_type.yaml").write_text("archs: rnn-as-a-string-is-fine?\ntasks: 12\nseeds: [zero]\n")
    (tmp / "unknown_arch.yaml").write_text("archs: [rnnn]\ntasks: [{name: scan-depth}]\nseeds: [0]\n")
    (tmp / "syntax_plugin.py").write_text("def broken(:\n")
    (tmp / "empty_official").mkdir(exist_ok=True)
    for name in ("tasks_train_addprim_jump.txt", "tasks_test_addprim_jump.txt"):
        (tmp / "empty_official" / name).write_text("")
    (tmp / "bad_official").mkdir(exist_ok=True)
    (tmp / "bad_official" / "tasks_train_addprim_jump.txt").write_text("IN: jump OUT: I_JUMP\nthis is not scan\n")
    (tmp / "bad_official" / "tasks_test_addprim_jump.txt").write_text("IN: jump twice OUT: I_JUMP I_JUMP\n")
    return {"dir": str(tmp)}


CASES = [
    # (id, argv, exit code, message fragment)
    ("unknown-arch", ["run", "--arch", "lstmm", "--task", "scan-depth"], 2, "unknown architecture 'lstmm'"),
    ("unknown-task", ["run", "--arch", "rnn", "--task", "scan_depth"], 2, "did you mean 'scan-depth'"),
    ("unknown-split", [*RUN, "--split", "ood"], 2, "unknown split 'ood'"),
    ("unknown-size", [*RUN, "--size", "huge"], 2, "--size must be tiny, small or base"),
    ("negative-steps", [*RUN, "--max-steps", "-3"], 2, "max_steps"),
    ("absurd-steps", [*RUN, "--max-steps", "1000000000000"], 2, "max_steps"),
    ("zero-params", [*RUN, "--params", "0"], 2, "params"),
    ("absurd-params", [*RUN, "--params", "1000000000000000"], 2, "params"),
    ("unreachable-params", [*RUN, "--params", "10"], 2, "cannot reach a parameter budget"),
    ("zero-width", [*RUN, "--d-model", "0"], 2, "d_model"),
    ("negative-layers", [*RUN, "--n-layers", "-1"], 2, "n_layers"),
    ("negative-seed", [*RUN, "--seed", "-1"], 2, "seed"),
    ("negative-lr", [*RUN, "--lr", "-0.1"], 2, "lr"),
    ("set-without-equals", [*RUN, "--set", "train.lr"], 2, "KEY=VALUE"),
    ("set-unknown-key", [*RUN, "--set", "learning_rate=0.1"], 2, "unknown config key 'learning_rate'"),
    ("set-unknown-section", [*RUN, "--set", "model.cell=gru"], 2, "unknown config section 'model'"),
    ("set-wrong-type", [*RUN, "--set", "train.lr=fast"], 2, "train.lr"),
    ("set-zero-batch", [*RUN, "--set", "train.batch_size=0"], 2, "batch_size"),
    ("set-bad-enum", [*RUN, "--set", "arch.cell=transformer"], 2, "cell"),
    ("set-unknown-arch-field", [*RUN, "--set", "arch.hidden=64"], 2, "has no field 'hidden'"),
    ("set-bad-depth-range", [*RUN, "--set", "task.train_depths=[3,1]"], 2, "train_depths"),
    ("set-negative-examples", [*RUN, "--set", "task.n_train=-5"], 2, "n_train"),
    ("set-wrong-list-type", [*RUN, "--set", "task.test_depths=deep"], 2, "test_depths"),
    ("db-unparseable", [*RUN, "--db", "not a url"], 1, "cannot parse database URL"),
    ("db-unknown-dialect", [*RUN, "--db", "nosuchdb://x/y"], 1, "cannot open database URL"),
    ("db-folder-is-a-file", [*RUN, "--db", "sqlite:///{dir}/malformed.yaml/sub/arena.db"], 1, "cannot create the folder"),
    ("empty-official-split", ["run", "--arch", "rnn", "--task", "scan", "--split", "addprim_jump", "--max-steps", "2",
                              "--set", "task.official_dir={dir}/empty_official"], 2, "empty"),
    ("malformed-official-line", ["run", "--arch", "rnn", "--task", "scan", "--split", "addprim_jump", "--max-steps", "2",
                                 "--set", "task.official_dir={dir}/bad_official"], 2, "tasks_train_addprim_jump.txt:2"),
    ("state-machine-wrong-task", ["run", "--arch", "state-machine", "--task", "mqar"], 2, "task-specific"),
    ("show-missing-run", ["show", "4242"], 2, "no run 4242"),
    ("show-not-a-number", ["show", "abc"], 2, "Invalid value for 'run_id'"),
    ("list-unknown", ["list", "modelz"], 2, "unknown list target"),
    ("validate-unknown", ["validate", "mamb"], 2, "did you mean 'mamba'"),
    ("rerun-missing", ["rerun", "4242"], 2, "no run 4242"),
    ("export-bad-format", ["export", "--format", "xls"], 2, "xls"),
    ("data-export-unknown-task", ["data", "export", "scann", "--out", "{dir}/out"], 2, "did you mean 'scan'"),
    ("sweep-missing-file", ["sweep", "{dir}/nope.yaml"], 2, "nope.yaml"),
    ("sweep-malformed-yaml", ["sweep", "{dir}/malformed.yaml"], 2, "malformed.yaml"),
    ("sweep-unknown-key", ["sweep", "{dir}/unknown_key.yaml"], 2, "seedz"),
    ("sweep-wrong-types", ["sweep", "{dir}/wrong_type.yaml"], 2, "tasks"),
    ("sweep-unknown-arch", ["sweep", "{dir}/unknown_arch.yaml"], 2, "rnnn"),
    ("submit-missing-file", ["submit", "{dir}/missing_plugin.py"], 2, "missing_plugin.py"),
    ("submit-syntax-error", ["submit", "{dir}/syntax_plugin.py", "--time-limit", "60"], 1, "import"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, tmp_path, monkeypatch, capsys):
    name, argv, code, fragment = case
    ctx = _files(tmp_path)
    db = tmp_path / "arena.db"
    argv = [a.format(**ctx) for a in argv]
    if argv[0] in ("run", "show", "rerun", "export", "sweep", "submit") and "--db" not in argv:
        argv += ["--db", f"sqlite:///{db}"]
    monkeypatch.setattr(sys, "argv", ["arena", *argv])
    monkeypatch.setenv("ARENA_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    if argv[0] == "show":  # a reader never creates the database; an existing one without that run
        open_store(f"sqlite:///{db}").dispose()
    assert_cli_refuses(code, fragment.format(**ctx), db, capsys)


def test_table_is_large_enough():
    assert len(CASES) >= 30


def test_corrupted_checkpoint_on_resume_fails_cleanly(tmp_path, monkeypatch, capsys):
    """A real interrupted run whose checkpoint was corrupted: exit 1 naming the checkpoint, the row stays whole."""
    from sqlalchemy import text

    from arena.cli.app import main

    db = f"sqlite:///{tmp_path / 'arena.db'}"
    monkeypatch.setenv("ARENA_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    args = ["arena", *RUN, "--set", "task.n_train=40", "--set", "task.n_val=4", "--set", "task.n_test_per_depth=4",
            "--set", "latency.enabled=false", "--db", db]
    monkeypatch.setattr(sys, "argv", args)
    main()
    engine = open_store(db)
    run = list_runs(engine)[0]
    with engine.begin() as con:  # pretend it was killed before completing (repo never moves a completed row back)
        con.execute(text("update runs set status='interrupted' where id=:i"), {"i": run.id})
    Path(run.checkpoint_path).write_bytes(b"\x00garbage")
    monkeypatch.setattr(sys, "argv", [*args, "--resume"])
    with pytest.raises(SystemExit) as exc:
        main()
    err = " ".join(capsys.readouterr().err.split())
    assert exc.value.code == 1 and "corrupted" in err and "Traceback" not in err
    assert [r.status for r in list_runs(engine)] == ["failed"]
