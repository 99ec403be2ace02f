"""Issue 19's bad-input classes, each refused by the one validation layer (arena.validation): exit 2 with the
field, option or file named, no traceback, and no run row written.

Classes: values (strict types, finite numbers, documented ranges, run ids, memory estimate), files (binary or
empty inputs, unusable --out), limits on work (grid caps, ladders, depth ranges, YAML bombs and duplicate keys)
and printing (user text is never rich markup)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _refusal import assert_cli_refuses

from arena.store import open_store

RUN = ["run", "--arch", "rnn", "--task", "scan-depth", "--size", "tiny", "--max-steps", "2"]
SUCC = ["succinctness", "--task", "recall-depth", "--archs", "rnn", "--max-steps", "1"]
BOMB = ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\narchs: [rnn]\ntasks: [scan-depth]\nseeds: *c\n")


def _files(tmp: Path) -> dict[str, str]:
    (tmp / "binary.yaml").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00archs: [rnn]\n")
    (tmp / "latin1.yaml").write_bytes("archs: [rnn]\ntasks: [scan-depth]\nname: caf\xe9\n".encode("latin-1"))
    (tmp / "empty.yaml").write_text("")
    (tmp / "dup.yaml").write_text("archs: [rnn]\ntasks: [scan-depth]\nseeds: [0]\nseeds: [1]\n")
    (tmp / "dup_nested.yaml").write_text("archs: [rnn]\ntasks: [{name: scan-depth, config: {n_train: 8, n_train: 9}}]\n")
    (tmp / "bomb.yaml").write_text(BOMB)
    (tmp / "bool_seed.yaml").write_text("archs: [rnn]\ntasks: [scan-depth]\nseeds: [true]\n")
    (tmp / "nan_lr.yaml").write_text("archs: [rnn]\ntasks: [scan-depth]\nlrs: [.nan]\n")
    (tmp / "bool_train.yaml").write_text("archs: [rnn]\ntasks: [scan-depth]\ntrain: {batch_size: yes}\n")
    (tmp / "huge.yaml").write_text("archs: [rnn]\ntasks: [scan-depth]\nsizes: [tiny]\nseeds: ["
                                   + ",".join(map(str, range(1000))) + "]\nlrs: ["
                                   + ",".join(f"{1e-3 + i * 1e-6:.6g}" for i in range(1000)) + "]\n")
    (tmp / "six.yaml").write_text("archs: [rnn]\ntasks: [{name: scan-depth, config: {n_train: 8}}]\nsizes: [tiny]\n"
                                  "seeds: [0, 1, 2]\nlrs: [0.001, 0.002]\n")
    (tmp / "a_file").write_text("not a folder\n")
    (tmp / "a_dir").mkdir(exist_ok=True)
    lm = tmp / "lmdata" / "tinyshakespeare"
    lm.mkdir(parents=True, exist_ok=True)
    (lm / "input.txt").write_bytes(b"\x00\x01\x02binary\xff\xfe" * 50)
    empty = tmp / "lmempty" / "tinyshakespeare"
    empty.mkdir(parents=True, exist_ok=True)
    (empty / "input.txt").write_text("")
    (tmp / "bin_official").mkdir(exist_ok=True)
    for name in ("tasks_train_addprim_jump.txt", "tasks_test_addprim_jump.txt"):
        (tmp / "bin_official" / name).write_bytes(b"IN: jump OUT: \xff\xfe\x00\x00")
    return {"dir": str(tmp)}


CASES = [
    # values: strict types, finite numbers, documented ranges
    ("bool-for-int", [*RUN, "--set", "train.batch_size=true"], 2, "train.batch_size"),
    ("bool-for-float", [*RUN, "--set", "train.lr=false"], 2, "train.lr"),
    ("bool-overridden-later", [*RUN, "--set", "train.max_steps=true"], 2, "train.max_steps"),  # --max-steps wins
    ("bool-in-int-list", [*RUN, "--set", "task.test_depths=[1, true]"], 2, "test_depths"),
    ("nan-lr", [*RUN, "--lr", "nan"], 2, "train.lr"),
    ("inf-lr-set", [*RUN, "--set", "train.lr=.inf"], 2, "train.lr"),
    ("nan-weight-decay", [*RUN, "--set", "train.weight_decay=.nan"], 2, "train.weight_decay"),
    ("beta-one", [*RUN, "--set", "train.betas=[0.9, 1.0]"], 2, "train.betas"),
    ("beta-negative", [*RUN, "--set", "train.betas=[-0.1, 0.9]"], 2, "train.betas"),
    ("beta-nan", [*RUN, "--set", "train.betas=[.nan, 0.9]"], 2, "train.betas"),
    ("zero-lr", [*RUN, "--set", "train.lr=0"], 2, "train.lr"),
    ("nan-early-stop", [*RUN, "--set", "train.early_stop=.nan"], 2, "train.early_stop"),
    ("huge-grad-clip", [*RUN, "--set", "train.grad_clip=1e300"], 2, "train.grad_clip"),
    ("latency-nan", [*RUN, "--set", "latency.min_run_time=.nan"], 2, "latency.min_run_time"),
    ("show-id-overflow", ["show", "73786976294838206464"], 2, "Invalid value for"),
    ("show-id-negative", ["show", "--", "-5"], 2, "Invalid value for"),
    ("rerun-id-overflow", ["rerun", "73786976294838206464"], 2, "Invalid value for"),
    ("remeasure-id-overflow", ["remeasure", "1", "73786976294838206464"], 2, "Invalid value for"),
    ("analyze-id-overflow", ["analyze", "99999999999999999999999"], 2, "Invalid value for"),
    ("rerun-tolerance-nan", ["rerun", "1", "--tolerance", "nan"], 2, "--tolerance"),
    ("rerun-tolerance-negative", ["rerun", "1", "--tolerance", "-1"], 2, "--tolerance"),
    ("rerun-tolerance-inf", ["rerun", "1", "--tolerance", "inf"], 2, "--tolerance"),
    ("export-gate-nan", ["export", "--gate", "nan"], 2, "--gate"),
    ("list-limit-huge", ["list", "runs", "--limit", "99999999999999999999"], 2, "--limit"),
    ("memory-too-big", [*RUN, "--d-model", "65536", "--n-layers", "1024"], 2, "GiB to train"),
    ("memory-batch-too-big", [*RUN, "--d-model", "4096", "--set", "train.batch_size=65536"], 2, "train.batch_size"),
    ("succ-target-nan", [*SUCC, "--target", "nan"], 2, "--target"),
    ("succ-lrs-nan", [*SUCC, "--lrs", "nan"], 2, "--lrs"),
    ("succ-time-limit-negative", [*SUCC, "--time-limit", "-1"], 2, "--time-limit"),
    ("sweep-bool-seed", ["sweep", "{dir}/bool_seed.yaml"], 2, "seeds"),
    ("sweep-nan-lr", ["sweep", "{dir}/nan_lr.yaml"], 2, "lrs"),
    ("sweep-bool-train", ["sweep", "{dir}/bool_train.yaml"], 2, "batch_size"),
    ("env-max-runs-bad", ["sweep", "{dir}/six.yaml", "--dry-run"], 2, "ARENA_MAX_RUNS"),
    ("env-checkpoint-dir-is-file", RUN, 2, "ARENA_CHECKPOINT_DIR names {dir}/a_file, which is not a folder"),
    ("env-memory-flag-bad", RUN, 2, "ARENA_SKIP_MEMORY_CHECK must be one of"),
    # files
    ("sweep-binary", ["sweep", "{dir}/binary.yaml"], 2, "binary.yaml is a binary file"),
    ("sweep-not-utf8", ["sweep", "{dir}/latin1.yaml"], 2, "latin1.yaml is not UTF-8"),
    ("sweep-empty", ["sweep", "{dir}/empty.yaml"], 2, "empty.yaml is empty"),
    ("sweep-folder", ["sweep", "{dir}/a_dir"], 2, "a_dir is a folder"),
    ("corpus-binary", ["run", "--arch", "rnn", "--task", "lm", "--size", "tiny", "--max-steps", "1",
                       "--set", "task.data_dir={dir}/lmdata", "--set", "task.benchmarks=[]"], 2, "input.txt is a binary file"),
    ("corpus-empty", ["run", "--arch", "rnn", "--task", "lm", "--size", "tiny", "--max-steps", "1",
                      "--set", "task.data_dir={dir}/lmempty", "--set", "task.benchmarks=[]"], 2, "input.txt is empty"),
    ("scan-official-binary", ["run", "--arch", "rnn", "--task", "scan", "--split", "addprim_jump", "--max-steps", "2",
                              "--set", "task.official_dir={dir}/bin_official"], 2, "tasks_train_addprim_jump.txt"),
    ("data-export-out-is-file", ["data", "export", "scan-depth", "--out", "{dir}/a_file"], 2, "a_file is an existing file"),
    ("data-export-out-under-file", ["data", "export", "scan-depth", "--out", "{dir}/a_file/sub"], 2, "a_file"),
    ("export-out-is-dir", ["export", "--out", "{dir}/a_dir"], 2, "a_dir is an existing folder"),
    ("export-out-under-file", ["export", "--out", "{dir}/a_file/x.csv"], 2, "a_file is a file"),
    ("succ-out-is-file", [*SUCC, "--out", "{dir}/a_file"], 2, "a_file is an existing file"),
    # limits on work
    ("sweep-huge-grid", ["sweep", "{dir}/huge.yaml"], 2, "1,000,000 runs"),
    ("sweep-cap-flag", ["sweep", "{dir}/six.yaml", "--max-runs", "5"], 2, "limit of 5"),
    ("sweep-yaml-bomb", ["sweep", "{dir}/bomb.yaml"], 2, "aliases"),
    ("sweep-duplicate-key", ["sweep", "{dir}/dup.yaml"], 2, "duplicate key 'seeds'"),
    ("sweep-duplicate-nested-key", ["sweep", "{dir}/dup_nested.yaml"], 2, "duplicate key 'n_train'"),
    ("set-yaml-alias", [*RUN, "--set", "task.test_depths=&a [1, 2]"], 2, "aliases"),
    ("set-duplicate-key", [*RUN, "--set", "arch.cell={{a: 1, a: 2}}"], 2, "duplicate key"),
    ("succ-ladder-zero", [*SUCC, "--ladder", "0-128"], 2, "--ladder"),
    ("succ-ladder-huge", [*SUCC, "--ladder", "8-100000000"], 2, "--ladder"),
    ("succ-depths-huge", [*SUCC, "--depths", "1-100000000"], 2, "--depths"),
    ("succ-depths-many", [*SUCC, "--depths", "1-1000"], 2, "--depths"),
    ("succ-grid-cap", [*SUCC, "--seeds", "100", "--depths", "1-60", "--lrs", "1e-3,2e-3,3e-3"], 2, "--max-runs"),
    ("succ-grid-cap-flag", [*SUCC, "--depths", "1-2", "--max-runs", "3"], 2, "limit of 3"),
    ("succ-top-width-cannot-fit", [*SUCC, "--ladder", "8,65536", "--n-layers", "rnn=1024", "--depths", "1"], 2,
     "GiB to train"),
    ("succ-bad-set-for-arch", [*SUCC, "--set", "rnn:arch.cell=[/x]", "--depths", "1"], 2, "cell"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_input_class(case, tmp_path, monkeypatch, capsys):
    name, argv, code, fragment = case
    ctx = _files(tmp_path)
    db = tmp_path / "arena.db"
    argv = [a.format(**ctx) for a in argv]
    if argv[0] in ("run", "show", "rerun", "export", "sweep", "succinctness", "remeasure", "analyze", "list"):
        argv += ["--db", f"sqlite:///{db}"]
    if argv[0] == "succinctness" and "--out" not in argv:
        argv += ["--out", str(tmp_path / "succ")]
    monkeypatch.setattr(sys, "argv", ["arena", *argv])
    monkeypatch.setenv("ARENA_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    env = {"env-max-runs-bad": ("ARENA_MAX_RUNS", "lots"), "env-memory-flag-bad": ("ARENA_SKIP_MEMORY_CHECK", "maybe"),
           "env-checkpoint-dir-is-file": ("ARENA_CHECKPOINT_DIR", "{dir}/a_file")}
    if name in env:
        monkeypatch.setenv(env[name][0], env[name][1].format(**ctx))
    assert_cli_refuses(code, fragment.format(**ctx), db, capsys)


def test_table_covers_every_class():
    assert len(CASES) >= 50


def test_max_runs_flag_raises_the_cap(tmp_path, monkeypatch, capsys):
    """The cap is a limit, not a wall: --max-runs (or $ARENA_MAX_RUNS) lets a large grid through."""
    from arena.sweep import expand, load_spec

    _files(tmp_path)
    spec = load_spec(tmp_path / "six.yaml")
    with pytest.raises(Exception, match="limit of 5"):
        expand(spec, max_runs=5)
    assert len(expand(spec, max_runs=6)) == 6
    monkeypatch.setenv("ARENA_MAX_RUNS", "6")
    assert len(expand(spec)) == 6


def test_yaml_loader_rules():
    from arena.errors import ArenaError
    from arena.validation import load_yaml, parse_scalar

    assert load_yaml("a: [1, 2]\nb: {c: .5}\n", "x") == {"a": [1, 2], "b": {"c": 0.5}}
    for bad, why in [(BOMB, "aliases"), ("a: 1\na: 2\n", "duplicate key 'a'"), ("x: {k: 1, k: 1}", "duplicate"),
                     ("base: &b {x: 1}\nother: {<<: *b}\n", "aliases"), ("[" * 100_000, "spec.yaml")]:
        with pytest.raises(ArenaError, match=why):
            load_yaml(bad, "spec.yaml")
    assert parse_scalar("fast", "--set") == "fast"  # not YAML-looking text stays text
    assert parse_scalar("[1, 2", "--set") == "[1, 2"
    with pytest.raises(ArenaError, match="aliases"):
        parse_scalar("*a", "--set")


def test_bool_for_number_looks_inside_containers():
    from typing import Literal

    from arena.validation import bool_for_number

    assert bool_for_number(int, True) and bool_for_number(float, False)
    assert bool_for_number(int | None, True) and bool_for_number(list[int], [1, True])
    assert bool_for_number(tuple[float, float], (0.9, True)) and bool_for_number(dict[str, int], {"a": True})
    assert not bool_for_number(bool, True) and not bool_for_number(int | bool, True)
    assert not bool_for_number(Literal[True, 1], True) and not bool_for_number(str, True)
    assert not bool_for_number(int, 3) and not bool_for_number(list[int], [1, 2])


def test_memory_estimate_is_params_times_optimiser_plus_activations():
    from arena.validation import estimate_training_memory

    est = estimate_training_memory(1_000_000, batch=2, seq_len=10, d_model=8, n_layers=1, vocab=5)
    assert est["weights"] == 1_000_000 * 4 * 4
    assert est["activations"] == 2 * 10 * 8 * 34 * 4 + 2 * 10 * 5 * 3 * 4
    with_heads = estimate_training_memory(1_000_000, batch=2, seq_len=10, d_model=8, n_layers=1, vocab=5, heads=2)
    assert with_heads["total"] - est["total"] == 2 * 2 * 10 * 10 * 3 * 4


def test_memory_check_runs_before_any_row_and_can_be_skipped(tmp_path, monkeypatch):
    """The refusal comes from prepare() (so run, sweep expansion and workers all see it); the variable turns it
    off, and the small default run passes it."""
    from arena.errors import ArenaError
    from arena.runner import prepare
    from arena.spec import RunSpec

    monkeypatch.setattr("arena.validation.available_memory", lambda: 10 * 1024**2)
    spec = RunSpec(arch="rnn", task="scan-depth", size="tiny", d_model=512)
    with pytest.raises(ArenaError, match="GiB to train"):
        prepare(spec, ["train.max_steps=1"])
    monkeypatch.setenv("ARENA_SKIP_MEMORY_CHECK", "1")
    assert prepare(spec, ["train.max_steps=1"]).shape.d_model == 512
    monkeypatch.setenv("ARENA_SKIP_MEMORY_CHECK", "perhaps")
    with pytest.raises(ArenaError, match="ARENA_SKIP_MEMORY_CHECK"):
        prepare(spec, ["train.max_steps=1"])


# ----------------------------------------------------------------------------------------------- printing

MARKUP = "boom [/x] [red]not red[/] [bold {x}"


def _cli(argv: list[str], monkeypatch, capsys) -> tuple[int, str]:
    from arena.cli.app import main

    monkeypatch.setattr(sys, "argv", ["arena", *argv])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out + out.err


def _run_row_with_markup(db: str) -> int:
    """A failed run whose split and error hold rich markup (as a user's --split or an exception message may)."""
    from sqlalchemy import text

    from arena.runner import identity, prepare
    from arena.spec import RunSpec
    from arena.store import repo

    engine = open_store(db)
    ident = identity(prepare(RunSpec(arch="rnn", task="scan-depth", size="tiny"), ["train.max_steps=1"]))
    run_id = repo.create_run(engine, **ident)
    repo.end_run(engine, run_id, "failed", MARKUP)
    with engine.begin() as con:
        con.execute(text("update runs set split=:s where id=:i"), {"s": "[/x]", "i": run_id})
    return run_id


def test_user_text_is_printed_literally(tmp_path, monkeypatch, capsys):
    """arena show / list runs print a run whose error and split contain markup verbatim (was a MarkupError)."""
    db = f"sqlite:///{tmp_path / 'arena.db'}"
    run_id = _run_row_with_markup(db)
    code, out = _cli(["show", str(run_id), "--db", db], monkeypatch, capsys)
    assert code == 0 and "Traceback" not in out, out
    assert MARKUP in " ".join(out.split()) and "[/x]" in out
    code, out = _cli(["list", "runs", "--db", db], monkeypatch, capsys)
    assert code == 0 and "[/x]" in out, out


@pytest.mark.parametrize("argv", [
    ["data", "export", "[/x]", "--out", "{tmp}/o"],
    ["data", "export", "scan-depth", "--set", "[/x]=1", "--out", "{tmp}/o"],
    ["data", "show", "scan-depth", "--which", "[/x]"],
    ["run", "--arch", "[/x]", "--task", "scan-depth"],
    ["run", "--arch", "rnn", "--task", "scan-depth", "--set", "task.n_train=a[/x]"],
], ids=["data-export-task", "data-export-set-key", "data-show-which", "run-arch", "run-set-value"])
def test_user_text_in_errors_is_literal(argv, tmp_path, monkeypatch, capsys):
    argv = [a.format(tmp=tmp_path) for a in argv]
    if argv[0] == "run":
        argv += ["--db", f"sqlite:///{tmp_path / 'arena.db'}"]
    code, out = _cli(argv, monkeypatch, capsys)
    assert code == 2 and "[/x]" in out and "Traceback" not in out and "MarkupError" not in out, out


def test_sweep_progress_name_is_literal(capsys):
    from arena.sweep import SweepProgress, SweepSummary

    bar = SweepProgress(True, "grid [/x] {y}", 2)
    bar.update(SweepSummary(total=2), 2)
    bar.stop()
    assert "grid [/x] {y}" in capsys.readouterr().err


def test_printing_helpers():
    from rich.console import Console

    from arena.printing import cell, lit, template

    console = Console(record=True, width=200)
    console.print(f"[bold]label:[/] {lit(MARKUP)}")
    console.print(cell(MARKUP))
    assert console.export_text().splitlines() == [f"label: {MARKUP}", MARKUP]
    assert template("{a}") == "{{a}}"
