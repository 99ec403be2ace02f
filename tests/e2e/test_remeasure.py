"""``arena remeasure``: latency and memory timed again from the checkpoint, the old figures kept in the history."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from arena.cli.app import app
from arena.runner import run
from arena.spec import RunSpec
from arena.store import get_run, open_store

TINY = ["train.max_steps=4", "train.batch_size=8", "train.eval_every=4", "train.warmup_steps=1",
        "train.eval_batch_size=16", "task.n_train=64", "task.n_val=8", "task.n_test=16", "latency.min_run_time=0.01",
        "latency.batch=2"]


def test_remeasure_replaces_latency_and_memory_and_keeps_the_old_figures(db_url):
    spec = RunSpec(arch="rnn", task="counter-chain", split="iid", size="tiny", seed=0)
    first = run(spec, overrides=TINY, db=db_url)
    engine = open_store(db_url)
    before = get_run(engine, first.run_id)
    res = CliRunner().invoke(app, ["remeasure", str(first.run_id), "--db", db_url, "--min-run-time", "0.01",
                                   "--json"])
    assert res.exit_code == 0, (res.output, res.exception)
    [out] = json.loads(res.stdout.strip().splitlines()[-1])
    after = get_run(engine, first.run_id)
    assert out["new"]["latency_p50_ms"] == after.latency_p50_ms > 0 and after.memory_mb > 50
    [old] = after.extra["measurements"]
    assert old["latency_p50_ms"] == before.latency_p50_ms and old["memory_mb"] == before.memory_mb
    assert old["measured_at"] == before.finished_at.isoformat() and old["replaced_by"] == "arena remeasure"
    assert after.extra["memory_scope"] == "remeasure" and after.extra["curve"] == before.extra["curve"]
    assert after.score == before.score and [m.value for m in after.metrics] == [m.value for m in before.metrics]
    # again: the history grows, oldest first
    res = CliRunner().invoke(app, ["remeasure", str(first.run_id), "--db", db_url, "--min-run-time", "0.01",
                                   "--no-memory"])
    assert res.exit_code == 0, (res.output, res.exception)
    again = get_run(engine, first.run_id)
    assert [m["latency_p50_ms"] for m in again.extra["measurements"]] == [before.latency_p50_ms,
                                                                          after.latency_p50_ms]
    assert again.memory_mb == after.memory_mb  # --no-memory leaves memory alone


def test_remeasure_without_a_checkpoint_names_the_run_and_writes_nothing(db_url, tmp_path, monkeypatch):
    spec = RunSpec(arch="rnn", task="counter-chain", split="iid", size="tiny", seed=1)
    done = run(spec, overrides=TINY, db=db_url)
    engine = open_store(db_url)
    ckpt = get_run(engine, done.run_id).checkpoint_path
    __import__("os").remove(ckpt)
    res = CliRunner().invoke(app, ["remeasure", str(done.run_id), "--db", db_url])
    assert res.exit_code != 0 and f"run {done.run_id}" in str(res.exception) and "checkpoint" in str(res.exception)
    assert "measurements" not in (get_run(engine, done.run_id).extra or {})
    res = CliRunner().invoke(app, ["remeasure", "999", "--db", db_url])
    assert res.exit_code != 0 and "no run 999" in str(res.exception)
