"""Succinctness: the bisection finds the smallest passing width with >= 2 of 3 seeds using fewer runs than the
grid; growth fits tell exponential from polynomial; the CSV has the leaderboard's columns; one real tiny search
runs end to end through the sweep machinery and resumes from the database."""

from __future__ import annotations

import csv
import math

import pytest

from arena.errors import ArenaError
from arena.succinctness import (
    CAVEATS,
    Search,
    SuccinctnessConfig,
    _advance,
    fit_growth,
    parse_depths,
    parse_ladder,
    pilot_indices,
    run_succinctness,
)
from arena.sweep import Job

LEADERBOARD_COLUMNS = ["task", "arch", "depth", "p_star", "state_size", "flops", "reached"]


def test_ladder_and_depth_parsing():
    assert parse_ladder("8-64") == [8, 11, 16, 23, 32, 45, 64]
    assert parse_ladder("16,8,8") == [8, 16]
    assert parse_depths("1-3,5") == [1, 2, 3, 5]
    for bad in ("x", "8-", ""):
        with pytest.raises(ArenaError):
            parse_ladder(bad)
    with pytest.raises(ArenaError):
        parse_depths("a-b")


def _simulate(widths: list[int], passes, pilot: int = 0) -> tuple[Search, int]:
    """Drive the bisection with fake jobs: ``passes(width, seed)`` says whether that run reaches the target."""
    cfg = SuccinctnessConfig(task="t", archs=["a"], depths=[1], target=0.9, ladder=widths, seeds=3, lrs=[1e-3])
    cache = {("a", 1, w, s, 1e-3): Job({}, (), f"{w}-{s}", "") for w in widths for s in range(3)}
    search, scores, runs = Search("a", 1, widths, pilot=pilot_indices(len(widths), pilot)), {}, 0
    for _ in range(100):
        jobs = _advance(cfg, search, scores, set(), cache)
        if not jobs:
            break
        for j in jobs:
            w, s = (int(x) for x in j.config_hash.split("-"))
            scores[j.config_hash] = 1.0 if passes(w, s) else 0.5
            runs += 1
    assert search.done
    return search, runs


@pytest.mark.parametrize("threshold", [8, 11, 23, 64, 1000])
def test_bisection_finds_the_smallest_passing_width(threshold):
    widths = parse_ladder("8-64")
    search, runs = _simulate(widths, lambda w, s: w >= threshold)
    found = widths[search.hi] if search.hi < len(widths) else None
    assert found == (min(w for w in widths if w >= threshold) if threshold <= 64 else None)
    assert runs <= 2 * math.ceil(math.log2(len(widths) + 1)) + 1 < 3 * len(widths)  # far from the full grid


FINE = [4, 6, 8, 11, 16, 23, 32, 45, 64, 90, 128]


@pytest.mark.parametrize("threshold", [4, 7, 11, 20, 64, 100, 128, 1000])
@pytest.mark.parametrize("seed0_lucky", [False, True])
def test_a_pilot_brackets_the_bisection(threshold, seed0_lucky):
    """4 pilot widths with seed 0 pick the bracket; the answer is the same as without a pilot, even when seed 0
    alone passes one rung too early (then the bisection goes on above the pilot's guess)."""
    assert pilot_indices(11, 4) == [0, 3, 7, 10] and pilot_indices(3, 4) == [0, 1, 2] and pilot_indices(5, 0) == []

    def passes(w, s):
        return w >= threshold or (seed0_lucky and s == 0 and w >= threshold / 1.5)

    plain, _ = _simulate(FINE, passes)
    piloted, runs = _simulate(FINE, passes, pilot=4)
    assert piloted.hi == plain.hi
    assert piloted.hi == len(FINE) or piloted.outcomes[piloted.hi][0]  # the answer was checked with all seeds
    assert runs <= 4 + 3 * 4


def test_two_of_three_seeds_rule():
    widths = [8, 16, 32]
    # at 16 only seed 0 passes (1 of 3: fail); at 32 seeds 1 and 2 pass (2 of 3: pass)
    table = {(8, 0): 0, (8, 1): 0, (8, 2): 0, (16, 0): 1, (16, 1): 0, (16, 2): 0, (32, 0): 0, (32, 1): 1,
             (32, 2): 1}
    search, _ = _simulate(widths, lambda w, s: bool(table[(w, s)]))
    assert widths[search.hi] == 32
    assert search.outcomes[1] == (False, 1) and search.outcomes[2] == (True, 2)


def test_a_seed_known_to_fail_decides_the_width_without_running_the_others():
    """With 2 seeds both must pass: where the database already holds seed 0 failing, seed 1 is not trained there
    (a rerun with more seeds confirms a found P* without paying for widths already lost)."""
    widths = [8, 16]
    cfg = SuccinctnessConfig(task="t", archs=["a"], depths=[1], target=0.9, ladder=widths, seeds=2, lrs=[1e-3])
    cache = {("a", 1, w, s, 1e-3): Job({}, (), f"{w}-{s}", "") for w in widths for s in range(2)}
    scores = {"8-0": 0.5, "16-0": 1.0}  # seed 0 from an earlier one-seed search
    search, asked = Search("a", 1, widths), []
    for _ in range(10):
        jobs = _advance(cfg, search, scores, set(), cache)
        if not jobs:
            break
        asked += [j.config_hash for j in jobs]
        scores.update({j.config_hash: 1.0 for j in jobs})
    assert search.done and asked == ["16-1"]  # never "8-1": seed 0 already lost width 8
    assert search.outcomes == {1: (True, 2), 0: (False, 0)} and widths[search.hi] == 16


def test_growth_fit_tells_exponential_from_polynomial():
    d = [1, 2, 3, 4, 5]
    exp = fit_growth(d, [100 * 4 ** x for x in d])
    assert exp["preferred"] == "exponential" and exp["exp"]["r2"] > 0.999
    assert exp["exp"]["slope"] == pytest.approx(2.0, abs=1e-6)
    lo, hi = exp["exp"]["slope_ci95"]
    assert lo <= 2.0 <= hi
    poly = fit_growth(d, [100 * x ** 3 for x in d])
    assert poly["preferred"] == "polynomial" and poly["poly"]["slope"] == pytest.approx(3.0, abs=1e-6)
    assert fit_growth([1], [10])["preferred"] is None


@pytest.mark.slow
def test_real_tiny_search_writes_table_and_plot_then_resumes(sweep_env, tmp_path):
    cfg = SuccinctnessConfig(task="counter-chain", archs=["rnn"], depths=[1], target=0.0, ladder=[8, 16],
                             seeds=3, lrs=[3e-3], max_steps=2,
                             overrides=["task.n_train=16", "task.n_val=4", "task.n_test=8", "train.batch_size=4"])
    out = run_succinctness(cfg, db=sweep_env["url"], out_dir=tmp_path / "res")
    (row,) = out["rows"]
    # target 0 is always reached: bisection probes width 16 then 8, each with two seeds (the third never runs)
    assert row["reached"] and row["d_model"] == 8 and row["seeds_passed"] == 2 and row["seeds"] == 3
    assert row["runs"] == 4
    assert row["p_star"] > 0 and row["state_size"] > 0 and row["flops"] > 0
    # the state in bits of the passing runs at P*, measured from their checkpoints, beside the task's bound
    assert row["bits_per_float"] in (1, 2, 4, 8, 16, 32) and row["state_bits"] == row["bits_per_float"] * row["state_size"]
    assert row["state_bits_bound"] == 2.0 and row["cpu_seconds"] > 0 and row["wall_seconds"] > 0
    assert row["p_star_run_id"] and len(row["p_star_config_hash"]) == 64
    b = out["budget"]  # what the search cost: summed over its runs' records, and this invocation's process tree
    assert b["runs"] == 4 and b["run_cpu_seconds"] == pytest.approx(row["cpu_seconds"], abs=0.2)
    assert b["invocation_cpu_seconds"] > 0 and b["invocation_wall_seconds"] > 0
    with open(out["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:7] == LEADERBOARD_COLUMNS and rows[0]["reached"] == "True"
    png = (tmp_path / "res" / "succinctness_counter-chain.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(CAVEATS) == 4
    from arena.store import list_runs, open_store

    n = len(list_runs(open_store(sweep_env["url"])))
    again = run_succinctness(cfg, db=sweep_env["url"], out_dir=tmp_path / "res")
    assert again["rows"][0]["p_star"] == row["p_star"] and again["budget"]["runs"] == 4
    assert len(list_runs(open_store(sweep_env["url"]))) == n == 4  # resumed from the database: nothing rerun


@pytest.mark.slow
def test_more_seeds_over_a_recorded_search_train_nothing_where_seed_0_lost(sweep_env, tmp_path):
    """A rerun with --seeds 2 over a one-seed search's database reads seed 0's recorded failure before training
    anything, and that failure settles the width (2 of 2 needed): seed 1 is never trained there."""
    from arena.store import list_runs, open_store

    base = dict(task="counter-chain", archs=["rnn"], depths=[1], target=1.0, ladder=[8, 16], lrs=[3e-3],
                max_steps=2, overrides=["task.n_train=16", "task.n_val=4", "task.n_test=8", "train.batch_size=4"])
    one = run_succinctness(SuccinctnessConfig(seeds=1, **base), db=sweep_env["url"], out_dir=tmp_path / "one")
    assert not one["rows"][0]["reached"]  # 2 steps never reach a perfect score: seed 0 lost width 16
    assert len(list_runs(open_store(sweep_env["url"]))) == 1
    two = run_succinctness(SuccinctnessConfig(seeds=2, **base), db=sweep_env["url"], out_dir=tmp_path / "two")
    assert not two["rows"][0]["reached"] and two["rows"][0]["status"] == "not reached"
    assert len(list_runs(open_store(sweep_env["url"]))) == 1  # no seed 1 run: the recorded failure decided it


def test_merge_tables_combines_invocations_and_refits(tmp_path):
    from arena.succinctness import merge_tables, read_csv, write_csv

    def row(arch, d, p):
        return {"task": "x-tag", "arch": arch, "depth": d, "p_star": p, "state_size": 8, "flops": 1.0,
                "reached": p is not None, "status": "found" if p else "not reached", "p_star_lower": 10}

    write_csv([row("rnn", 1, 100) | {"seeds": 2}, row("rnn", 2, None) | {"seeds": 2}], tmp_path / "a.csv")
    # b.csv predates the seeds column: a merged table holds every column of every row, blank where absent
    write_csv([row("rnn", 2, 400), row("rnn", 3, 1600), row("mamba", 1, 50)], tmp_path / "b.csv")
    out = merge_tables([tmp_path / "a.csv", tmp_path / "b.csv"], tmp_path / "succinctness_x", "t", task_label="x")
    rows = read_csv(tmp_path / "succinctness_x.csv")
    assert [(r["arch"], r["depth"], r["p_star"], r["task"]) for r in rows] == [
        ("mamba", 1, 50, "x"), ("rnn", 1, 100, "x"), ("rnn", 2, 400, "x"), ("rnn", 3, 1600, "x")]
    assert [r.get("seeds") for r in rows] == [None, 2, None, None]
    assert out["fits"]["rnn"]["exp"]["slope"] == pytest.approx(2.0)  # 100 * 4^(d-1)
    assert (tmp_path / "succinctness_x.png").stat().st_size > 1000


def test_merge_tables_smallest_keeps_the_tightest_bound_over_protocols(tmp_path):
    """keep='smallest': per (arch, depth) the smallest P* any protocol found (a not-reached row only where no
    protocol found one, the largest lower bound), labelled with its protocol; the budget sums every search."""
    from arena.succinctness import merge_tables, read_csv, write_csv

    def row(d, p, lower, runs, cpu, protocol=None):
        r = {"task": "t", "arch": "rnn", "depth": d, "p_star": p, "reached": p is not None,
             "status": "found" if p else "not reached", "p_star_lower": lower, "runs": runs, "cpu_seconds": cpu}
        return r | ({"protocol": protocol} if protocol else {})

    # per-depth (written before the protocol column existed) and cumulative searches of the same depths
    write_csv([row(1, 100, 50, 4, 10.0), row(2, None, 800, 6, 30.0), row(3, 900, 400, 4, 20.0)], tmp_path / "per.csv")
    write_csv([row(1, 200, 100, 3, 5.0, "cumulative"), row(2, 400, 200, 2, 7.0, "cumulative"),
               row(3, None, 1600, 5, 9.0, "cumulative"), row(4, None, 3200, 2, 4.0, "cumulative")],
              tmp_path / "cum.csv")
    out = merge_tables([tmp_path / "per.csv", tmp_path / "cum.csv"], tmp_path / "best", "t", keep="smallest")
    rows = read_csv(tmp_path / "best.csv")
    assert [(r["depth"], r["p_star"], r["protocol"]) for r in rows] == [
        (1, 100, "per-depth"), (2, 400, "cumulative"), (3, 900, "per-depth"), (4, None, "cumulative")]
    assert [r["protocols_searched"] for r in rows] == ["cumulative per-depth"] * 3 + ["cumulative"]
    assert [(r["runs"], r["cpu_seconds"]) for r in rows] == [(7, 15.0), (8, 37.0), (9, 29.0), (2, 4.0)]
    assert rows[3]["p_star_lower"] == 3200 and not rows[3]["reached"]
    assert out["fits"]["rnn"]["poly"]["slope"] == pytest.approx(2.0)  # 100 d^2 over the three found depths
    last = merge_tables([tmp_path / "per.csv", tmp_path / "cum.csv"], tmp_path / "last", "t")
    assert [r["p_star"] for r in last["rows"]] == [200, 400, None, None]  # the default: the later file wins
    with pytest.raises(ValueError, match="keep must be"):
        merge_tables([tmp_path / "per.csv"], tmp_path / "x", "t", keep="min")


def test_the_cumulative_protocol_trains_on_shallower_depths_and_scores_at_d():
    """--protocol cumulative: each run trains on depths 1..d (split 'upto') and is scored at exactly d; it is a
    different experiment from per-depth (its own hash and table), and a task without it is refused by name."""
    from arena.succinctness import _job, check_config

    base = dict(task="nested-parity", archs=["rnn"], depths=[3], variant="flat", ladder=[8], seeds=1, lrs=[3e-3])
    cum = SuccinctnessConfig(protocol="cumulative", **base)
    per = SuccinctnessConfig(**base)
    jc, jp = _job(cum, "rnn", 3, 8, 0, 3e-3, {}), _job(per, "rnn", 3, 8, 0, 3e-3, {})
    assert jc.spec["split"] == "upto" and jp.spec["split"] == "iid"
    assert jc.spec["task_config"]["depth"] == jp.spec["task_config"]["depth"] == 3
    assert jc.config_hash != jp.config_hash
    assert cum.label == "nested-parity-flat-cumulative" and per.label == "nested-parity-flat"
    with pytest.raises(ArenaError, match="did you mean 'cumulative'"):
        check_config(SuccinctnessConfig(protocol="cumulativ", **base))
    sd = SuccinctnessConfig(task="scan-depth", archs=["rnn"], depths=[1], protocol="cumulative", seeds=1)
    with pytest.raises(ArenaError, match="no cumulative split"):
        _job(sd, "rnn", 1, 8, 0, 1e-3, {})


def test_succinctness_merge_command_writes_the_merged_table_and_refuses_bad_input(tmp_path):
    """``arena succinctness-merge``: the CLI of merge_tables; a missing file, a CSV that is not a succinctness
    table and an unknown --keep are refused by name, and nothing is written."""
    from typer.testing import CliRunner

    from arena.cli.app import app
    from arena.succinctness import read_csv, write_csv

    def row(d, p, protocol):
        return {"task": "t", "arch": "rnn", "depth": d, "p_star": p, "reached": True, "status": "found",
                "p_star_lower": 1, "runs": 2, "cpu_seconds": 1.0, "protocol": protocol}

    write_csv([row(1, 300, "per-depth"), row(2, 500, "per-depth")], tmp_path / "a.csv")
    write_csv([row(1, 200, "cumulative"), row(2, 800, "cumulative")], tmp_path / "b.csv")
    (tmp_path / "other.csv").write_text("x,y\n1,2\n")
    run = CliRunner().invoke
    res = run(app, ["succinctness-merge", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--out",
                    str(tmp_path / "m"), "--keep", "smallest"])
    assert res.exit_code == 0, res.output
    assert [(r["p_star"], r["protocol"]) for r in read_csv(tmp_path / "m.csv")] == [(200, "cumulative"),
                                                                                    (500, "per-depth")]
    for args, message in (([str(tmp_path / "nope.csv")], "no such succinctness table"),
                          ([str(tmp_path / "other.csv")], "not a succinctness table: no column arch"),
                          ([str(tmp_path / "a.csv"), "--keep", "smalest"], "did you mean 'smallest'")):
        res = run(app, ["succinctness-merge", *args, "--out", str(tmp_path / "bad")])
        assert res.exit_code != 0 and message in res.output + str(res.exception), res.output  # main() prints it
    assert not list(tmp_path.glob("bad*"))
