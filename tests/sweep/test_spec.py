"""Sweep specs: strict validation (bad YAML or unknown keys -> exit 2, nothing written), grid expansion, hashing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from arena.errors import ArenaError
from arena.sweep import expand, load_spec, parse_spec
from tests.sweep.conftest import REPO, tiny_spec


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "arena.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("text, needle", [
    ("archs: [rnn\ntasks: [", "not valid YAML"),
    ("- just\n- a list\n", "expected a mapping"),
    ("archs: [rnn]\ntasks: [counter-chain]\nseedz: [1]\n", "unknown field 'seedz'"),
    ("archs: [{name: rnn, confg: {}}]\ntasks: [counter-chain]\n", "unknown field 'archs.0.confg'"),
    ("archs: []\ntasks: [counter-chain]\n", "archs"),
    ("archs: [rnn]\ntasks: [counter-chain]\nsizes: [huge]\n", "sizes.0"),
    ("archs: [rnn]\ntasks: [counter-chain]\nsizes: [tiny]\nparams: [1000]\n", "one size axis"),
])
def test_malformed_specs_are_rejected_naming_the_problem(tmp_path, text, needle):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(ArenaError) as e:
        load_spec(p)
    assert needle in str(e.value)
    assert e.value.exit_code == 2


def test_unknown_names_and_config_keys_fail_at_expansion(sweep_env):
    bad_arch = tiny_spec([0], archs=["rnnn"])
    with pytest.raises(ArenaError, match="rnn"):
        expand(parse_spec(bad_arch))
    bad_key = tiny_spec([0])
    bad_key["tasks"][0]["config"]["depht"] = 2
    with pytest.raises(ArenaError, match="depht"):
        expand(parse_spec(bad_key))
    bad_train = tiny_spec([0])
    bad_train["train"]["max_stepz"] = 1
    with pytest.raises(ArenaError, match="max_stepz"):
        expand(parse_spec(bad_train))


def test_cli_bad_spec_exits_2_and_writes_nothing(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("archs: [rnn]\ntasks: [counter-chain]\nbogus: 1\n")
    db = tmp_path / "x.db"
    r = _cli(["sweep", str(p), "--db", f"sqlite:///{db}"], tmp_path)
    assert r.returncode == 2, r.stderr
    assert "bogus" in r.stderr and "Traceback" not in r.stderr
    assert not db.exists()


def test_grid_expansion_counts_and_distinct_hashes(sweep_env):
    jobs = expand(parse_spec(tiny_spec([0, 1, 2], lrs=[3e-3, 1e-3])))
    assert len(jobs) == 24
    assert len({j.config_hash for j in jobs}) == 24
    # the same grid again hashes identically (resume depends on it); a duplicate seed adds nothing
    again = expand(parse_spec(tiny_spec([0, 1, 2, 2], lrs=[3e-3, 1e-3])))
    assert [j.config_hash for j in again] == [j.config_hash for j in jobs]
    lr_of = {j.spec["train"]["lr"] for j in jobs}
    assert lr_of == {3e-3, 1e-3}


def test_example_specs_in_the_repo_are_valid(sweep_env):  # expanding them all would build every task: only load
    for path in sorted((REPO / "sweeps").glob("*.yaml")):
        spec = load_spec(path)
        assert spec.archs and spec.tasks, path
        assert yaml.safe_load(path.read_text())["name"] == spec.name


def test_cli_dry_run_lists_the_grid_without_running(tmp_path):
    import json

    from tests.sweep.conftest import tiny_spec

    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(tiny_spec([0], archs=["rnn"])))
    r = _cli(["sweep", str(p), "--dry-run", "--json", "--db", f"sqlite:///{tmp_path / 'x.db'}"], tmp_path)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout.strip().splitlines()[-1])
    assert [x["completed"] for x in rows] == [False, False]
    assert {x["run"].split(" ")[0] for x in rows} == {"rnn/counter-chain", "rnn/nested-parity"}
