"""Faults: SIGKILL at random points never corrupts the database; the run is detected as interrupted at the next
start and resumes from its checkpoint to exactly the score of an uninterrupted run with the same seed."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from arena.store import get_run, list_runs, open_store
from arena.store.repo import mark_stale_runs

MAX_STEPS = 300
ARGS = ["run", "--arch", "rnn", "--task", "scan-depth", "--size", "tiny", "--max-steps", str(MAX_STEPS),
        "--set", "task.n_train=300", "--set", "task.n_val=20", "--set", "task.n_test_per_depth=10",
        "--set", "train.checkpoint_every=5", "--set", "train.eval_every=20", "--set", "latency.enabled=false"]


def _cli(args, env, **kw):
    return subprocess.Popen([sys.executable, "-m", "arena.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _env(tmp_path, name):
    env = dict(os.environ, ARENA_CHECKPOINT_DIR=str(tmp_path / f"ckpt-{name}"), OMP_NUM_THREADS="1")
    return env


def _scores(db):
    runs = [r for r in list_runs(open_store(db)) if r.status == "completed"]
    assert len(runs) == 1, [(r.id, r.status) for r in list_runs(open_store(db))]
    run = get_run(open_store(db), runs[0].id)
    return {(m.split, m.name, m.slice_key, m.slice_value): m.value for m in run.metrics}, run


def _integrity(path) -> str:
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("baseline")
    db = f"sqlite:///{tmp / 'base.db'}"
    p = _cli([*ARGS, "--db", db, "--json"], _env(tmp, "base"))
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    scores, run = _scores(db)
    return scores, run.extra["wall_seconds"]


def _recorded_step(dbfile) -> int | None:
    """The step the run row last recorded (checkpoints update it), or None before the row exists."""
    if not dbfile.exists():
        return None
    con = sqlite3.connect(dbfile, timeout=30)
    try:
        if not con.execute("select count(*) from sqlite_master where name='runs'").fetchone()[0]:
            return None
        row = con.execute("select step from runs order by id desc limit 1").fetchone()
        return None if row is None else row[0]
    finally:
        con.close()


def _trial(tmp_path, baseline, seed: int, phase: str) -> str:
    """Kill a real run with SIGKILL in ``phase``: "startup" (a random delay after launch), "training" (just after
    a random step was checkpointed) or "finishing" (a random delay once training ended: evaluation, measurement,
    the completing commit, or after it). Points are drawn from the run's own progress, not from wall time, so
    machine load cannot shift them all into one phase."""
    baseline, _ = baseline
    rng = random.Random(seed)
    dbfile = tmp_path / f"kill-{seed}.db"
    db = f"sqlite:///{dbfile}"
    env = _env(tmp_path, f"kill-{seed}")
    p = _cli([*ARGS, "--db", db], env)
    if phase == "startup":
        time.sleep(rng.uniform(0.2, 3.0))
    else:
        target = rng.randint(5, MAX_STEPS - 100) if phase == "training" else MAX_STEPS
        deadline = time.time() + 600
        while time.time() < deadline and p.poll() is None:
            step = _recorded_step(dbfile)
            if step is not None and step >= target:
                break
            time.sleep(0.01)
        if phase == "finishing":
            time.sleep(rng.uniform(0.0, 3.0))
    p.send_signal(signal.SIGKILL)
    p.communicate()
    outcome = "before-row"
    if dbfile.exists():
        assert _integrity(dbfile) == "ok"
        engine = open_store(db)
        mark_stale_runs(engine)  # what every writer does at start
        statuses = [r.status for r in list_runs(engine)]
        assert all(s in ("interrupted", "completed") for s in statuses), statuses
        outcome = statuses[0] if statuses else "before-row"
    r = _cli([*ARGS, "--db", db, "--resume", "--json"], env)
    out, err = r.communicate(timeout=600)
    assert r.returncode == 0, err
    assert _integrity(dbfile) == "ok"
    runs = list_runs(open_store(db))
    if outcome == "interrupted":  # resumed in place: the same row finished, no duplicate
        assert [x.status for x in runs] == ["completed"], [(x.id, x.status) for x in runs]
    if outcome != "completed":  # killed after the final commit: nothing to resume, the row is already whole
        scores, _ = _scores(db)
        assert scores == baseline, "resumed run did not reach the uninterrupted run's scores"
    return outcome


@pytest.mark.slow
def test_sigkill_then_resume_one_trial(tmp_path, baseline):
    assert _trial(tmp_path, baseline, 1, "training") == "interrupted"


def test_resume_after_crash_matches_uninterrupted(tmp_path):
    """In-process version (fast): a crash at step 23 of 40, then resume from the step-20 checkpoint."""
    import torch

    from arena.blocks import build_model
    from arena.runner import prepare
    from arena.spec import RunSpec
    from arena.train import train

    res = prepare(RunSpec(arch="rnn", task="scan-depth", size="tiny", task_config={"n_train": 200, "n_val": 20}),
                  overrides=["train.max_steps=40", "train.checkpoint_every=10", "train.eval_every=15"])

    def model():
        torch.manual_seed(0)
        return build_model(res.arch, res.shape, res.arch_cfg)

    full = model()
    train(full, res.task, res.spec.train, 0, checkpoint=tmp_path / "a.pt", config_hash=res.config_hash)

    class Crash(Exception):
        pass

    def crash(state, info):
        if state.step == 23:
            raise Crash

    crashed = model()
    with pytest.raises(Crash):
        train(crashed, res.task, res.spec.train, 0, checkpoint=tmp_path / "b.pt", config_hash=res.config_hash,
              on_step=crash)
    resumed = model()
    state = train(resumed, res.task, res.spec.train, 0, checkpoint=tmp_path / "b.pt", resume=True,
                  config_hash=res.config_hash)
    assert state.step == 40
    for (n, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), f"{n} differs after resume"


def test_corrupted_checkpoint_is_a_clear_error(tmp_path):
    from arena.errors import ArenaError
    from arena.runner import prepare
    from arena.spec import RunSpec
    from arena.train import train

    res = prepare(RunSpec(arch="rnn", task="scan-depth", size="tiny", task_config={"n_train": 50, "n_val": 5}),
                  overrides=["train.max_steps=3"])
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    from arena.blocks import build_model

    with pytest.raises(ArenaError, match="unreadable or corrupted"):
        train(build_model(res.arch, res.shape, res.arch_cfg), res.task, res.spec.train, 0, checkpoint=bad,
              resume=True, config_hash=res.config_hash)


@pytest.mark.slow
def test_sigkill_at_random_points_ten_trials(tmp_path, baseline):
    phases = ["startup"] * 2 + ["training"] * 6 + ["finishing"] * 2
    outcomes = [_trial(tmp_path, baseline, seed, phase) for seed, phase in zip(range(10, 20), phases, strict=True)]
    print("outcomes:", list(zip(phases, outcomes, strict=True)))
    # every kill during training leaves an interrupted run that resumes to the uninterrupted scores (checked inside)
    assert outcomes[2:8] == ["interrupted"] * 6, outcomes


@pytest.mark.slow
def test_sigterm_during_training_saves_the_step_then_resumes_to_the_same_scores(tmp_path, baseline):
    """SIGTERM to `arena run` mid-training: the run ends after the step in flight with its checkpoint at that step
    (arena.stopping), the row says so, and --resume reaches the uninterrupted run's scores."""
    import torch

    scores_ref, _ = baseline
    dbfile = tmp_path / "term.db"
    db = f"sqlite:///{dbfile}"
    env = _env(tmp_path, "term")
    p = _cli([*ARGS, "--db", db], env)
    t0 = time.time()
    while p.poll() is None and time.time() - t0 < 600 and (_recorded_step(dbfile) or 0) < 25:
        time.sleep(0.01)  # training is under way (checkpoints every 5 steps move the row's step)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 130, err
    run = get_run(open_store(db), list_runs(open_store(db))[0].id)
    assert run.status == "interrupted"
    step = torch.load(next((tmp_path / "ckpt-term").rglob("last.pt")), weights_only=False)["state"]["step"]
    assert 25 <= step < MAX_STEPS and run.step == step
    assert f"at step {step}, checkpoint saved" in run.error
    r = _cli([*ARGS, "--db", db, "--resume", "--json"], env)
    _, err = r.communicate(timeout=600)
    assert r.returncode == 0, err
    scores, _ = _scores(db)
    assert scores == scores_ref
