"""Corrupted checkpoints are a clear message wherever a stored run's checkpoint is read (``arena eval``, analyze and
prune, succinctness) — the same path as ``arena run --resume`` — never an UnpicklingError traceback."""

from __future__ import annotations

import sys

import pytest

from arena.errors import ArenaError
from arena.store import open_store, repo

LM_SPEC = {"arch": "transformer", "task": "lm", "size": "tiny", "seed": 0}


def _lm_run(db_url, checkpoint) -> int:
    engine = open_store(db_url)
    rid = repo.create_run(engine, arch="transformer", arch_version=1, arch_kind="mixer", arch_family="attention",
                          task="lm", task_version=1, split="default", size="tiny", seed=0,
                          config={"spec": LM_SPEC, "shape": {}}, config_hash="e" * 64,
                          checkpoint_path=str(checkpoint))
    repo.complete_run(engine, rid, {"score": 2.0}, [], {"arena_version": "0", "python": "3", "packages": {}})
    return rid


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "not-a-checkpoint"])
def test_eval_of_a_corrupted_checkpoint_is_a_clear_error(db_url, tmp_path, monkeypatch, capsys, damage):
    import torch

    ck = tmp_path / "last.pt"
    if damage == "garbage":
        ck.write_bytes(b"\x80\x04not a pickle at all" * 10)
    elif damage == "truncated":
        torch.save({"model": {"w": torch.zeros(1000)}}, ck)
        ck.write_bytes(ck.read_bytes()[:300])
    elif damage == "empty":
        ck.write_bytes(b"")
    else:
        torch.save([1, 2, 3], ck)
    rid = _lm_run(db_url, ck)
    monkeypatch.setattr(sys, "argv", ["arena", "eval", "--run", str(rid), "--tasks", "val", "--db", db_url])
    from arena.cli.app import main

    with pytest.raises(SystemExit) as exc:
        main()
    err = " ".join(capsys.readouterr().err.split())
    assert exc.value.code == 2, err
    assert f"checkpoint {ck} is unreadable or corrupted" in err and "retrain the run" in err, err
    assert "Traceback" not in err and "UnpicklingError:" not in err.split("(")[0]


def test_stored_run_with_a_corrupted_checkpoint_is_a_clear_error(db_url):
    """analyze / prune / remeasure load a stored run's weights through arena.stored.load_run."""
    from arena.runner import checkpoint_path
    from arena.runner import run as do_run
    from arena.spec import RunSpec
    from arena.stored import load_run

    res = do_run(RunSpec(arch="rnn", task="scan-depth", size="tiny"),
                 overrides=["task.n_train=40", "task.n_val=5", "task.n_test_per_depth=5", "latency.enabled=false",
                            "train.max_steps=3"])
    engine = open_store(db_url)
    load_run(engine, res.run_id)  # intact: loads
    ck = checkpoint_path(res.record["config_hash"])
    ck.write_bytes(ck.read_bytes()[:200])
    with pytest.raises(ArenaError, match="unreadable or corrupted"):
        load_run(engine, res.run_id)
