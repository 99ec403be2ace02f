"""``arena analyze`` and ``arena prune`` end to end on a tiny trained run in a temporary SQLite database."""

from __future__ import annotations

import json
import sys

import pytest

TASK = ["--task", "mqar", "--size", "tiny", "--max-steps", "12", "--set", "task.n_train=64", "--set", "task.n_val=16",
        "--set", "task.n_test=16", "--set", "task.seq_len=16", "--set", "task.num_kv_pairs=2",
        "--set", "latency.min_run_time=0.01", "--set", "train.batch_size=8", "--set", "train.warmup_steps=2"]


def cli(monkeypatch, capsys, *args):
    """Run the real entry point in-process; returns (exit code, stdout, stderr)."""
    from arena.cli.app import main

    monkeypatch.setattr(sys, "argv", ["arena", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def last_json(text):
    return json.loads(text.strip().splitlines()[-1])


def test_analyze_then_prune_records_metrics_and_derived_runs(db_url, monkeypatch, capsys):
    code, out, err = cli(monkeypatch, capsys, "run", "--arch", "transformer", *TASK, "--set", "arch.n_heads=4",
                         "--json")
    assert code == 0, err
    parent = last_json(out)
    code, out, err = cli(monkeypatch, capsys, "analyze", str(parent["run_id"]), "--examples", "8", "--json")
    assert code == 0, err
    rep = last_json(out)
    assert rep["n_examples"] == 8 and len(rep["layers"]) == 1 and len(rep["layers"][0]["trained"]["heads"]) == 4
    assert rep["summary"]["uniform"]["entropy_norm"] == pytest.approx(1.0)
    code, out, _ = cli(monkeypatch, capsys, "show", str(parent["run_id"]), "--json")
    shown = last_json(out)
    heads = shown["slices"]["attention:val"]["head"]
    assert set(heads) == {"0.0", "0.1", "0.2", "0.3"}
    assert {"entropy_norm", "entropy_norm@init", "erank@uniform"} <= set(heads["0.2"])
    assert shown["scores"]["attention:val"]["entropy_norm@uniform"] == pytest.approx(1.0)
    pattern = shown["extra"]["attention"]["val"]["pattern"]
    assert len(pattern["probs"]) == 1 and len(pattern["probs"][0]) == 4 and len(pattern["tokens"]) == 16

    code, out, err = cli(monkeypatch, capsys, "prune", str(parent["run_id"]), "--method", "importance", "--keep",
                         "4,2", "--examples", "8", "--finetune-steps", "2", "--json")
    assert code == 0, err
    pruned = last_json(out)
    assert [r["heads_kept"] for r in pruned["runs"]] == [4, 2] and not any(r["skipped"] for r in pruned["runs"])
    full, half = pruned["runs"]
    assert full["params"] == parent["params"]["total"] and half["params"] < full["params"]
    assert half["flops_per_example"] < full["flops_per_example"]
    code, out, _ = cli(monkeypatch, capsys, "show", str(half["run_id"]), "--json")
    child = last_json(out)
    assert child["extra"]["pruning"]["parent_run_id"] == parent["run_id"]
    assert sum(map(len, child["extra"]["pruning"]["kept"])) == 2 and child["steps"] == 2
    # the same command again records nothing new
    code, out, _ = cli(monkeypatch, capsys, "prune", str(parent["run_id"]), "--method", "importance", "--keep", "2",
                       "--examples", "8", "--finetune-steps", "2", "--json")
    assert last_json(out)["runs"][0]["skipped"] is True
    # keeping every head without fine-tuning reproduces the parent's scores exactly
    code, out, _ = cli(monkeypatch, capsys, "prune", str(parent["run_id"]), "--method", "random", "--keep", "4",
                       "--json")
    same = last_json(out)["runs"][0]
    code, out, _ = cli(monkeypatch, capsys, "show", str(same["run_id"]), "--json")
    assert last_json(out)["scores"]["test"] == parent["scores"]["test"]
    # a derived run can itself be analysed (its model is rebuilt pruned from the parent's config)
    code, out, err = cli(monkeypatch, capsys, "analyze", str(half["run_id"]), "--examples", "4", "--json")
    assert code == 0, err
    assert sum(len(lay["trained"]["heads"]) for lay in last_json(out)["layers"]) == 2


def test_runs_without_heads_are_refused(db_url, monkeypatch, capsys):
    code, out, err = cli(monkeypatch, capsys, "run", "--arch", "rnn", *TASK, "--json")
    assert code == 0, err
    rid = str(last_json(out)["run_id"])
    code, _, err = cli(monkeypatch, capsys, "analyze", rid)
    assert code == 2 and "no attention heads" in err
    code, _, err = cli(monkeypatch, capsys, "prune", rid, "--method", "random", "--keep", "1")
    assert code == 2 and "no attention heads to prune" in err
    code, _, err = cli(monkeypatch, capsys, "prune", rid, "--method", "importanse", "--keep", "1")
    assert code == 2 and "did you mean 'importance'" in err
    code, _, err = cli(monkeypatch, capsys, "analyze", "999")
    assert code == 2 and "no run 999" in err
