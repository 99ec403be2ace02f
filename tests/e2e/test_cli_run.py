"""End to end through the real CLI into a temporary SQLite file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

TINY = ["--size", "tiny", "--max-steps", "20", "--set", "task.n_train=200", "--set", "task.n_test_per_depth=10",
        "--set", "task.n_val=20", "--set", "latency.min_run_time=0.05"]


def arena(*args, env_db=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "arena.cli", *args], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}")
    return proc


def test_run_json_then_show(db_url):
    out = arena("run", "--arch", "rnn", "--task", "scan-depth", *TINY, "--db", db_url, "--json")
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    assert rec["status"] == "completed" and rec["arch"] == "rnn" and rec["task"] == "scan-depth"
    for key in ("total", "embedding", "non_embedding", "active"):
        assert rec["params"][key] > 0
    for key in ("forward_per_token", "forward_per_example", "train_total", "counted_forward_per_example"):
        assert rec["flops"][key] > 0
    assert rec["latency_ms"]["p50"] > 0 and rec["latency_ms"]["p90"] >= rec["latency_ms"]["p50"]
    assert rec["latency_ms"]["threads"] >= 1 and rec["memory_mb"] > 0 and rec["state_size"] > 0
    assert rec["latency_ms"]["load_avg_1m"] >= 0  # a declared column (arena.columns) reaches the JSON summary
    assert set(rec["scores"]) == {"val", "test_iid", "test_ood"}
    assert "exact_match" in rec["scores"]["test_ood"]
    assert set(rec["slices"]["test_ood"]["depth"]) == {"4", "5"}
    assert rec["hardware"]["cpu"] and rec["hardware"]["torch"]
    shown = json.loads(arena("show", str(rec["run_id"]), "--db", db_url, "--json").stdout)
    assert shown["run_id"] == rec["run_id"] and shown["scores"] == rec["scores"]
    assert shown["params"] == rec["params"]
    assert shown["reproduce"].startswith("arena run --arch rnn --task scan-depth")
    text_out = arena("show", str(rec["run_id"]), "--db", db_url).stdout
    assert "params" in text_out and "reproduce" in text_out and "load avg" in text_out
    board = arena("export", "--db", db_url, "--format", "csv").stdout
    header = next(line for line in board.splitlines() if not line.startswith("#"))
    assert '"load_avg_1m"' in header.split(",")


@pytest.mark.parametrize("args,code,message", [
    (["run", "--arch", "rnm", "--task", "scan-depth"], 2, "'rnn'"),
    (["run", "--arch", "rnn", "--task", "scan-dpth"], 2, "did you mean 'scan-depth'"),
    (["run", "--arch", "rnn", "--task", "scan-depth", "--set", "celll=gru"], 2, "did you mean 'cell'"),
    (["run", "--arch", "rnn", "--task", "scan-depth", "--size", "huge"], 2, "--size"),
    (["run", "--arch", "rnn", "--task", "scan-depth", "--max-steps", "-1"], 2, "max_steps"),
    (["show", "999"], 2, "no run 999"),
    (["list", "thingz"], 2, "unknown list target"),
])
def test_bad_input_exit_codes(db_url, args, code, message, monkeypatch, capsys):
    """In-process through the real entry point (same code path as the console script, minus interpreter start)."""
    from arena.cli.app import main
    from arena.store import list_runs, open_store

    argv = ["arena", *args] + (["--db", db_url] if args[0] in ("run", "show") else [])
    monkeypatch.setattr(sys, "argv", argv)
    open_store(db_url).dispose()  # `show` reads an existing database (a reader never creates one)
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err
    assert exc.value.code == code, err
    assert message in " ".join(err.split())
    assert "Traceback" not in err
    assert list_runs(open_store(db_url)) == []  # bad input writes nothing


def test_list_and_validate():
    archs = json.loads(arena("list", "archs", "--json").stdout)
    assert {"name", "kind", "family", "version", "description"} <= set(archs[0])
    assert "rnn" in {a["name"] for a in archs}
    tasks = json.loads(arena("list", "tasks", "--json").stdout)
    assert "scan-depth" in {t["name"] for t in tasks}
    out = arena("validate", "rnn").stdout
    assert out.count("PASS") >= 8 and "FAIL" not in out
    assert arena("validate", "nope", check=False).returncode == 2


def test_doctor_reports_threads_and_kernels():
    info = json.loads(arena("doctor", "--json").stdout)
    assert info["threads"] >= 1 and "torch" in info and "kernels" in info
