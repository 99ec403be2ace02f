"""Property-based fuzzing of the CLI's argument space and of sweep specs (issue 19).

For every generated command line, invoked in-process through ``arena.cli.app.main``:
* the exit code is 0, 1 or 2 and nothing escapes as an exception (no traceback on stderr);
* an exit 2 (bad input) wrote no run row, and a command carrying an always-bad value (ALWAYS_BAD) exits 2;
* the SQLite database passes ``PRAGMA integrity_check`` afterwards.

Values are drawn from mixes of valid and hostile pieces (booleans for integers, NaN/inf, out-of-range numbers,
run ids past 2^63, rich markup, YAML aliases and duplicate keys, binary files), so most examples are refused and
a few run a tiny configuration (at most 2 training steps, latency off). The default suite runs a bounded number
of examples; the ``slow`` variants run many more.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))

INTS = ["0", "1", "2", "-1", "true", "false", "1e3", "nan", "2147483648", "73786976294838206464", "x", "", "9" * 30]
FLOATS = ["0", "1e-3", "-0.1", "nan", "inf", "-inf", "1e309", "true", "0.5", "1", "x", ""]
NAMES = ["rnn", "transformer", "scan-depth", "[/x]", "[red]x[/]", "{x}", "é", "", "-", "a b", "rnnn"]
SET_KEYS = ["train.batch_size", "train.lr", "train.betas", "train.max_steps", "train.early_stop", "task.n_train",
            "task.test_depths", "arch.cell", "latency.min_run_time", "train.warmup_steps", "lr", "x.y", "[/x]",
            "train.grad_clip", "train.eval_every", "seed"]
SET_VALUES = ["true", "nan", ".nan", ".inf", "-1", "0", "1", "2", "8", "[0.9, 1.5]", "[0.9, 0.98]", "&a [1]", "*a",
              "{a: 1, a: 2}", "[1, true]", "[/x]", "1e3", "null", "'3'", "[4, 5]", "gru", "1e-3", "[[[[1]]]]"]
# overrides that are always bad input, whatever else the command line holds: a command carrying one must exit 2
# (refused before a row is written), never 0 (ran anyway) or 1 (failed after its row was written)
ALWAYS_BAD = ["train.batch_size=true", "train.lr=.nan", "train.lr=false", "train.betas=[0.9, 1.5]",
              "train.betas=[.nan, 0.9]", "train.weight_decay=.inf", "train.grad_clip=-1", "latency.min_run_time=.nan",
              "train.max_steps=true", "task.n_train=true", "train.early_stop=.nan"]
CHEAP = ["--set", "task.n_train=8", "--set", "task.n_val=2", "--set", "task.n_test_per_depth=2",
         "--set", "latency.enabled=false"]

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)
name = st.sampled_from(NAMES) | text
an_int = st.sampled_from(INTS) | st.integers(-(2**70), 2**70).map(str)
a_float = st.sampled_from(FLOATS) | st.floats(allow_nan=True, allow_infinity=True).map(repr)
a_set = st.tuples(st.sampled_from(SET_KEYS) | text, st.sampled_from(SET_VALUES) | text).map(lambda kv: f"{kv[0]}={kv[1]}")
run_id = st.sampled_from(["1", "2", "0", "-1", "73786976294838206464", "x", "9223372036854775807"])


GOOD_SETS = ["train.batch_size=4", "train.lr=0.01", "train.betas=[0.8, 0.9]", "task.test_depths=[4, 5]",
             "train.eval_every=1", "arch.cell=gru", "train.warmup_steps=0"]


def mostly(good: list[str], bad: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Three times in four a valid value, else a hostile one."""
    return st.one_of(st.sampled_from(good), st.sampled_from(good), st.sampled_from(good), bad)


@st.composite
def run_argv(draw) -> list[str]:
    """Weighted towards runnable command lines (so the exit 0/1 paths are exercised too), hostile pieces mixed in."""
    argv = ["run", "--arch", draw(mostly(["rnn", "transformer"], name)),
            "--task", draw(mostly(["scan-depth"], name)),
            "--size", draw(mostly(["tiny"], st.sampled_from(["huge", "[/x]", "small "]))),
            "--max-steps", draw(mostly(["0", "1", "2"], st.sampled_from(INTS)))]
    if argv[4] == "scan-depth":
        argv += CHEAP
    options = {"--seed": mostly(["0", "1", "7"], an_int), "--data-seed": mostly(["3"], an_int),
               "--lr": mostly(["0.01", "3e-4"], a_float), "--d-model": mostly(["8", "16"], an_int),
               "--n-layers": mostly(["1", "2"], an_int), "--params": mostly(["20000"], an_int),
               "--split": mostly(["iid"], name), "--threads": mostly(["1"], st.sampled_from(["-1", "0", "x", "9" * 20]))}
    for opt in draw(st.lists(st.sampled_from(sorted(options)), max_size=2, unique=True)):
        argv += [opt, draw(options[opt])]
    for s in draw(st.lists(mostly(GOOD_SETS, a_set), max_size=2)):
        argv += ["--set", s]
    if draw(st.integers(0, 2)) == 0:
        argv += ["--set", draw(st.sampled_from(ALWAYS_BAD))]
    if draw(st.booleans()):
        argv.append("--json")
    return argv


@st.composite
def other_argv(draw) -> list[str]:
    kind = draw(st.sampled_from(["show", "rerun", "list", "export", "data-export", "data-show", "remeasure",
                                 "analyze", "succinctness", "validate"]))
    if kind == "show":
        return ["show", draw(run_id | an_int), *(["--json"] if draw(st.booleans()) else [])]
    if kind == "rerun":
        return ["rerun", draw(run_id), "--tolerance", draw(a_float)]
    if kind == "list":
        return ["list", draw(st.sampled_from(["runs", "archs", "tasks"]) | name), "--limit", draw(an_int)]
    if kind == "export":
        return ["export", "--format", draw(st.sampled_from(["csv", "md", "json", "xls", "[/x]"])),
                "--gate", draw(a_float), "--out", "{tmp}/" + draw(st.sampled_from(["out.csv", "adir", "afile/x.csv"]))]
    if kind == "data-export":
        return ["data", "export", draw(st.sampled_from(["scan-depth"]) | name), "--out",
                "{tmp}/" + draw(st.sampled_from(["exp", "afile", "adir"])), "--set",
                draw(st.sampled_from(["n_train=4", "n_val=2"]) | a_set), "--set", "n_test_per_depth=2"]
    if kind == "data-show":
        return ["data", "show", draw(st.sampled_from(["scan-depth"]) | name), "--which", draw(name), "-n",
                draw(an_int), "--set", "n_train=4"]
    if kind == "remeasure":
        return ["remeasure", draw(run_id), draw(run_id)]
    if kind == "analyze":
        return ["analyze", draw(run_id)]
    if kind == "validate":
        return ["validate", draw(name)]
    return ["succinctness", "--task", draw(st.sampled_from(["recall-depth"]) | name), "--archs", draw(name),
            "--depths", draw(st.sampled_from(["1-2", "0-100000000", "x", "3-1", "-1"])),
            "--ladder", draw(st.sampled_from(["0-128", "8-100000000", "8,0", "x", "128-8"])),
            "--target", draw(a_float), "--seeds", draw(an_int), "--lrs", draw(st.sampled_from(["nan", "x", "-1"])),
            "--out", "{tmp}/succ"]


spec_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**66), 2**66) | st.floats() | st.sampled_from(NAMES) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(NAMES) | text, inner, max_size=3),
    max_leaves=8)
SPEC_KEYS = ["name", "archs", "tasks", "sizes", "params", "d_models", "n_layers", "seeds", "lrs", "train", "latency",
             "set", "device", "seedz"]


@st.composite
def sweep_text(draw) -> bytes:
    """A sweep spec: a mapping of mostly-known keys to random values, or hostile YAML/binary text."""
    how = draw(st.sampled_from(["mapping", "hostile", "bytes"]))
    if how == "hostile":
        return draw(st.sampled_from([
            b"a: &a [1,1,1]\nb: [*a,*a]\narchs: [rnn]\ntasks: [scan-depth]\n", b"archs: [rnn]\narchs: [rnn]\n",
            b"\x7fELF\x02\x01\xd0\xff\x00\x00", b"", b"   \n", b"archs: [rnn\n", "na\u00efve: caf\xe9".encode("latin-1"),
            b"- 1\n- 2\n", b"[" * 5000, b"archs: [rnn]\ntasks: [scan-depth]\nseeds: [true]\nlrs: [.nan]\n"]))
    if how == "bytes":
        return draw(st.binary(min_size=1, max_size=40).map(lambda b: b"archs: [rnn]\n" + b))
    data = {"archs": draw(st.sampled_from([["rnn"], ["[/x]"], "rnn", [{"name": "rnn", "config": {"cell": "gru"}}]])),
            "tasks": [{"name": "scan-depth", "config": {"n_train": 8, "n_val": 2, "n_test_per_depth": 2}}],
            "sizes": ["tiny"]}
    plausible = {"seeds": [0, 1], "lrs": [1e-3, 3e-3], "n_layers": [1, 2], "train": {"max_steps": 1},
                 "latency": {"enabled": False}, "name": "grid", "set": ["train.eval_every=1"], "d_models": [8, 16]}
    for key in draw(st.lists(st.sampled_from(SPEC_KEYS), max_size=2, unique=True)):
        data[key] = plausible[key] if key in plausible and draw(st.booleans()) else draw(spec_value)
    try:
        return yaml.safe_dump(data, allow_unicode=True).encode()
    except yaml.YAMLError:
        return b"archs: [rnn]\n"


@pytest.fixture
def fuzz_env(tmp_path, monkeypatch):
    db = tmp_path / "fuzz.db"
    monkeypatch.setenv("ARENA_DB_URL", f"sqlite:///{db}")
    monkeypatch.setenv("ARENA_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    monkeypatch.setenv("ARENA_MAX_RUNS", "8")
    (tmp_path / "afile").write_text("a file\n")
    (tmp_path / "adir").mkdir()
    return tmp_path, db


def _rows(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        try:
            return con.execute("select count(*) from runs").fetchone()[0]
        except sqlite3.OperationalError:  # no schema yet
            return 0


def _invoke(argv: list[str], env, monkeypatch, capsys) -> None:
    """Run one command line and check the properties."""
    from arena.cli.app import main

    tmp, db = env
    argv = [a.replace("{tmp}", str(tmp)) for a in argv]
    before = _rows(db)
    monkeypatch.setattr(sys, "argv", ["arena", *argv])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    # any other exception propagates: that is the traceback the property forbids
    out = capsys.readouterr()
    assert code in (0, 1, 2), (argv, code, out.err[-2000:])
    if any(a in ALWAYS_BAD for a in argv):
        assert code == 2, (argv, code, "bad input not refused up front", out.err[-500:])
    assert "Traceback" not in out.err, (argv, out.err[-2000:])
    if code == 2:
        assert _rows(db) == before, (argv, "exit 2 wrote a run row", out.err[-500:])
    if db.exists():
        with sqlite3.connect(db) as con:
            assert con.execute("pragma integrity_check").fetchone()[0] == "ok"


@settings(FAST, max_examples=30)  # about a third of these train (2 steps at most): ~1 s each
@given(argv=run_argv())
def test_fuzz_run(argv, fuzz_env, monkeypatch, capsys):
    _invoke(argv, fuzz_env, monkeypatch, capsys)


@FAST
@given(argv=other_argv())
def test_fuzz_other_commands(argv, fuzz_env, monkeypatch, capsys):
    _invoke(argv, fuzz_env, monkeypatch, capsys)


@FAST
@given(spec=sweep_text())
def test_fuzz_sweep_spec(spec, fuzz_env, monkeypatch, capsys):
    """Specs are parsed, validated and expanded (every run resolved) but not trained: --dry-run."""
    tmp, _ = fuzz_env
    path = tmp / "spec.yaml"
    path.write_bytes(spec)
    _invoke(["sweep", str(path), "--json", "--dry-run", "--max-runs", "4"], fuzz_env, monkeypatch, capsys)


@pytest.mark.slow
@SLOW
@given(argv=run_argv() | other_argv())
def test_fuzz_cli_many(argv, fuzz_env, monkeypatch, capsys):
    _invoke(argv, fuzz_env, monkeypatch, capsys)


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(spec=sweep_text(), dry=st.booleans())
def test_fuzz_sweep_spec_many(spec, dry, fuzz_env, monkeypatch, capsys):
    """Half the specs run for real (a worker process per sweep, at most 2 tiny runs)."""
    tmp, _ = fuzz_env
    path = tmp / "spec.yaml"
    path.write_bytes(spec)
    argv = ["sweep", str(path), "--json", "--max-runs", "2"]
    _invoke([*argv, "--dry-run"] if dry else [*argv, "--stack", "1"], fuzz_env, monkeypatch, capsys)
