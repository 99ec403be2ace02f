"""Run ownership: one live process per configuration. Checkpoint temp files are per writer, a second identical run
(with or without --resume) is refused naming the live run and its pid before it writes anything, and a completed
row never changes status afterwards, even when a later duplicate is interrupted."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
import torch

from arena import ownership
from arena.store import get_run, list_runs, open_store
from tests._signals import default_sigint

TINY = ["--arch", "rnn", "--task", "scan-depth", "--size", "tiny", "--set", "task.n_train=40", "--set",
        "task.n_val=5", "--set", "task.n_test_per_depth=5", "--set", "latency.enabled=false"]


def test_checkpoint_temp_files_are_per_writer(tmp_path):
    """Two writers of one checkpoint at once (the old shared last.tmp made one of them fail its rename)."""
    from arena.train import TrainState, save_checkpoint

    model = torch.nn.Linear(64, 64)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    path = tmp_path / "ck" / "last.pt"
    errors = []

    def writer(k):
        try:
            for step in range(15):
                save_checkpoint(path, model, opt, sched, torch.Generator(), TrainState(step=step), f"h{k}")
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert torch.load(path, weights_only=False)["config_hash"] in ("h0", "h1")
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left behind


def test_second_copy_is_refused_before_writing(db_url):
    """In-process: the configuration is held (as by another terminal); a run and a --resume are refused."""
    from arena.runner import checkpoint_path, prepare
    from arena.runner import run as do_run
    from arena.spec import RunSpec

    spec = RunSpec(arch="rnn", task="scan-depth", size="tiny")
    overrides = ["task.n_train=40", "task.n_val=5", "task.n_test_per_depth=5", "latency.enabled=false",
                 "train.max_steps=2"]
    ckpt = checkpoint_path(prepare(spec, overrides).config_hash)
    with ownership.claim(ckpt, "the other terminal") as held:
        held.note(run_id=41)
        for resume in (False, True):
            with pytest.raises(ownership.BusyError, match=rf"run 41 \(pid {os.getpid()} on .*the other terminal"):
                do_run(spec, overrides=overrides, resume=resume)
    assert list_runs(open_store(db_url)) == []
    assert do_run(spec, overrides=overrides).status == "completed"  # free again once the holder is done


def _rows(db_path):
    con = sqlite3.connect(db_path)
    try:
        return con.execute("SELECT id, status, finished_at, score, pid FROM runs ORDER BY id").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def _checkpoint_noted(db_path) -> bool:
    con = sqlite3.connect(db_path)
    try:
        return con.execute("SELECT checkpoint_path FROM runs ORDER BY id DESC").fetchone()[0] is not None
    finally:
        con.close()


def _wait_for(pred, what, timeout=300):
    t0 = time.monotonic()
    while not pred():
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.slow
def test_same_configuration_twice_at_once(tmp_path):
    """Two terminals: the first trains; copies started meanwhile (plain and --resume) are refused; a later copy
    interrupted after the first completed leaves the completed row exactly as it was."""
    db_path = tmp_path / "arena.db"
    db = f"sqlite:///{db_path}"
    env = dict(os.environ, ARENA_CHECKPOINT_DIR=str(tmp_path / "ck"), OMP_NUM_THREADS="1")
    env.pop("ARENA_DB_URL", None)
    # long enough (no early stop; ~20 s quiet) that the first is still training while each copy starts up
    args = [sys.executable, "-m", "arena.cli", "run", *TINY, "--set", "train.checkpoint_every=5",
            "--set", "train.early_stop=null", "--max-steps", "3000", "--db", db]

    def start(*extra):
        return subprocess.Popen([*args, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=default_sigint)

    first = start()
    _wait_for(lambda: [r for r in _rows(db_path) if r[1] == "running"] or first.poll() is not None, "the first run")
    assert first.poll() is None, first.communicate()[1]
    (rid, *_), = _rows(db_path)
    for extra in ((), ("--resume",)):
        dup = start(*extra)
        try:
            _, err = dup.communicate(timeout=120)
        except subprocess.TimeoutExpired:  # still going: interrupt it, as the user would
            dup.send_signal(signal.SIGINT)
            _, err = dup.communicate(timeout=120)
        assert dup.returncode == 1, err
        assert f"already being run by run {rid} (pid {first.pid}" in " ".join(err.split()), err
        assert "Traceback" not in err
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert "rename" not in err and "Traceback" not in err
    done = _rows(db_path)
    assert [r[:2] for r in done] == [(rid, "completed")]  # the refused copies wrote nothing

    late = start("--resume")  # the same configuration again, interrupted mid-training
    _wait_for(lambda: len(_rows(db_path)) == 2 and _checkpoint_noted(db_path) or late.poll() is not None,
              "the late copy")
    late.send_signal(signal.SIGINT)
    _, err = late.communicate(timeout=120)
    assert late.returncode == 130, err
    line = err.strip().splitlines()[-1]  # the last line, after the progress bar
    assert line.startswith(f"interrupted — run {rid + 1} recorded as interrupted"), err
    assert "resume with: arena run --arch rnn" in line and line.endswith("--resume"), err
    rows = _rows(db_path)
    assert rows[0] == done[0]  # status, finish time, score: unchanged
    assert rows[1][1] == "interrupted"
    assert get_run(open_store(db), rid).status == "completed"
    assert not list((tmp_path / "ck").rglob("*.tmp"))
