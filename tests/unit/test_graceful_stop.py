"""Graceful stops (arena.stopping): a signal during training ends the run after a whole step with its checkpoint at
that step, so a resumed run repeats nothing and ends with the weights of an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from arena import stopping
from arena.batched import train_many
from arena.runner import build_for, prepare
from arena.spec import RunSpec
from arena.train import train


def _resolved(seed: int = 3, steps: int = 20, every: int = 10):
    return prepare(RunSpec(arch="rnn", task="counter-chain", d_model=16, n_layers=1, seed=seed,
                           task_config={"depth": 2, "n_train": 32, "n_val": 8}),
                   ["train.online=true", f"train.max_steps={steps}", f"train.checkpoint_every={every}",
                    "train.eval_every=5", "train.early_stop=null", "train.warmup_steps=3"])


def _step_of(ck) -> int:
    return torch.load(ck, weights_only=False)["state"]["step"]


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_a_stop_requested_mid_run_checkpoints_that_step_and_resumes_exactly(tmp_path):
    res, ck = _resolved(), tmp_path / "last.pt"

    def ask(state, info):
        if state.step == 14:  # what the signal handler does while training
            stopping.request()

    with pytest.raises(stopping.Stopped) as stop:
        train(build_for(res), res.task, res.spec.train, res.spec.seed, checkpoint=ck, config_hash=res.config_hash,
              on_step=ask)
    assert isinstance(stop.value, KeyboardInterrupt)  # every caller's interrupted path still applies
    assert (stop.value.step, stop.value.saved) == (14, True)
    assert _step_of(ck) == 14  # not the periodic step-10 checkpoint: steps 11-14 are kept
    assert not stopping.requested()
    resumed = build_for(res)
    st = train(resumed, res.task, res.spec.train, res.spec.seed, checkpoint=ck, resume=True,
               config_hash=res.config_hash)
    ref = build_for(res)
    st_ref = train(ref, res.task, res.spec.train, res.spec.seed)
    assert st.step == 20 and _same(resumed, ref)
    assert [c.get("val") for c in st.curve] == [c.get("val") for c in st_ref.curve]


def test_a_stop_without_a_checkpoint_file_says_nothing_was_saved():
    res = _resolved()
    with pytest.raises(stopping.Stopped) as stop:
        train(build_for(res), res.task, res.spec.train, res.spec.seed,
              on_step=lambda state, info: stopping.request() if state.step == 3 else None)
    assert (stop.value.step, stop.value.saved) == (3, False)


def test_a_stack_stops_with_every_model_checkpointed_at_the_step(tmp_path):
    res = [_resolved(seed) for seed in (0, 1)]
    ckpts = [tmp_path / f"m{k}.pt" for k in range(2)]
    hashes = [r.config_hash for r in res]
    args = ([r.task for r in res], [r.spec.train for r in res], [r.spec.seed for r in res])

    def ask(k, state, info):
        if state.step == 7:
            stopping.request()

    with pytest.raises(stopping.Stopped) as stop:
        train_many([build_for(r) for r in res], *args, checkpoints=ckpts, config_hashes=hashes, on_step=ask)
    assert stop.value.saved and [_step_of(c) for c in ckpts] == [7, 7]
    resumed = [build_for(r) for r in res]
    states = train_many(resumed, *args, checkpoints=ckpts, resume=True, config_hashes=hashes)
    ref = [build_for(r) for r in res]
    train_many(ref, *args)
    assert [s.step for s in states] == [20, 20]
    assert all(_same(a, b) for a, b in zip(resumed, ref, strict=True))


def test_the_handler_waits_for_the_step_only_while_training():
    with pytest.raises(KeyboardInterrupt):  # nothing trains: stop now, as before
        stopping.handler(signal.SIGTERM, None)
    with stopping.training():
        stopping.handler(signal.SIGTERM, None)  # the first signal only asks
        assert stopping.requested()
        with pytest.raises(KeyboardInterrupt):  # a second one does not wait
            stopping.handler(signal.SIGTERM, None)
    assert not stopping.requested()  # leaving the loop forgets an unanswered request


WORKER = textwrap.dedent("""
    import os, sys
    from arena.runner import build_for, prepare
    from arena.spec import RunSpec
    from arena.sweep import _worker_init
    from arena.train import train

    _worker_init(os.getppid())  # what a sweep worker installs: SIGTERM stops gracefully, SIGINT is ignored
    res = prepare(RunSpec(arch="rnn", task="counter-chain", d_model=16, n_layers=1, seed=0,
                          task_config={"depth": 2, "n_train": 32, "n_val": 8}),
                  ["train.online=true", "train.max_steps=1000000", "train.checkpoint_every=100000",
                   "train.eval_every=100000", "train.early_stop=null"])
    progress = open(sys.argv[2], "w")

    def tell(state, info):
        progress.write(f"{state.step}\\n")
        progress.flush()

    train(build_for(res), res.task, res.spec.train, 0, checkpoint=__import__("pathlib").Path(sys.argv[1]),
          config_hash=res.config_hash, on_step=tell)
""")


def test_sigterm_to_a_training_worker_process_saves_the_step_it_was_in(tmp_path):
    """A real process and real signals: SIGINT is ignored by a sweep worker (the parent stops it), SIGTERM ends
    it after the step in flight, with the checkpoint at that step (the periodic one would be at 100,000), and then
    by the signal, as a worker always ended (no traceback)."""
    script, ck, progress = tmp_path / "w.py", tmp_path / "last.pt", tmp_path / "progress"
    script.write_text(WORKER)
    p = subprocess.Popen([sys.executable, str(script), str(ck), str(progress)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))

    def steps() -> int:
        lines = progress.read_text().split() if progress.exists() else []
        return int(lines[-1]) if lines else 0

    t0 = time.monotonic()
    while steps() < 5 and p.poll() is None and time.monotonic() - t0 < 300:
        time.sleep(0.05)
    assert p.poll() is None, p.communicate()[1]
    p.send_signal(signal.SIGINT)
    at_sigint = steps()
    time.sleep(0.5)
    assert p.poll() is None and steps() > at_sigint  # still training
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == -signal.SIGTERM, err
    assert "Traceback" not in err
    assert 5 <= _step_of(ck) == steps()  # the last step it reported is the one it saved
