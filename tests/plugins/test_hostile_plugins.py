"""arena submit against hostile plugins: one per attack class of the trusted-submissions issue.

Each plugin in ``hostile/`` tries one class of attack (its docstring says which and what must happen). Every case
is checked for: the outcome (rejected with the check named, or accepted with the score the parent computed),
0 forged rows and 0 builtin-looking rows in the real database, no file written outside the worker's scratch, and
no process left alive (found by pid, through /proc) after the submission returns.

The fast cases are submitted concurrently once per module (three at a time; each starts a fork server that
imports torch). Slow cases (marked) cost 20-60 s each on a loaded 2-core machine.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from arena.registry import BUILTIN_ARCHS
from arena.store import open_store
from arena.store.models import Run
from arena.submit import submit
from tests._signals import default_sigint

HERE = Path(__file__).parent
HOSTILE = HERE / "hostile"
DAEMON = "arena-hostile-d"
ESCAPE_MARK = "arena-hostile-escape-marker"


def marker_pids() -> list[int]:
    """Live processes named like the hostile daemon (zombies excluded)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(") ", 1)[-1][:1]
        except OSError:
            continue
        if comm == DAEMON and state not in ("Z", "X"):
            out.append(int(entry))
    return out


def zygotes_of(pid: int) -> list[int]:
    """Live fork servers started by the process ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"arena.submit.zygote" in argv and argv[-2:-1] == [str(pid).encode()]:
                out.append(int(entry))
    return out


def rows(url: str) -> list[Run]:
    engine = open_store(url)
    with Session(engine) as s:
        out = list(s.scalars(select(Run)))
    engine.dispose()
    return out


def assert_no_forgery(url: str, path: Path, arch: str | None) -> list[Run]:
    """Every row is the parent's: a plugin row for this file's bytes and name, never builtin-looking, never forged."""
    found = rows(url)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    for r in found:
        assert r.source == "plugin" and r.plugin_sha256 == sha and r.arch == arch, (r.arch, r.source)
        assert r.arch not in BUILTIN_ARCHS and r.config_hash != "forged"
    return found


def escape_plugin(folder: Path, db: Path) -> Path:
    """escape_fs.py with the real database and the parent's folders written in, as an attacker who found them."""
    targets = [str(db), str(db.parent), os.getcwd(), str(Path.home()), str(HERE)]
    src = (HOSTILE / "escape_fs.py").read_text().replace("TARGETS: list[str] = []", f"TARGETS: list[str] = {targets!r}")
    out = folder / "escape_fs.py"
    out.write_text(src)
    return out


# name -> (accepted?, the check named on rejection, a phrase of the message, submit() arguments)
FAST = {
    "steal_name": (False, "name", "is the name of a built-in architecture", {}),
    "forge_channel": (False, "protocol", "exceeds", {}),
    "urandom_init": (False, "determinism", "two separate processes give different initial weights", {}),
    "lazy_params": (False, "param count", "do not have the layout of the built model", {}),
    "peeks_long": (False, "causality", "peeks ahead", {}),
    "peeks_padded": (False, "causality", "peeks ahead", {}),
    "escape_fs": (True, None, "accepted", {}),
    "daemon": (False, "time limit", "did not finish within 40 s", {"time_limit": 40.0}),
}
ARCH = {"escape_fs": "escape-fs"}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")

    def one(name: str):
        folder = root / name
        folder.mkdir()
        db = folder / "arena.db"
        url = f"sqlite:///{db}"
        rows(url)  # the schema exists before the plugin runs: "no rows" is checked on a real database
        path = escape_plugin(folder, db) if name == "escape_fs" else HOSTILE / f"{name}.py"
        kwargs = dict(FAST[name][3])
        kwargs.setdefault("max_steps", 3)
        t0 = time.monotonic()
        result = submit(str(path), db=url, tasks=["counter-chain"], **kwargs)
        return result, url, path, folder, time.monotonic() - t0, marker_pids()

    with ThreadPoolExecutor(max_workers=3) as pool:
        order = ["daemon", "escape_fs"] + [n for n in FAST if n not in ("daemon", "escape_fs")]
        futures = {n: pool.submit(one, n) for n in order}
        done = {n: f.result() for n, f in futures.items()}
    done["after all"] = marker_pids()
    return done


@pytest.mark.parametrize("name", list(FAST))
def test_hostile_plugin_outcome_and_no_forgery(outcomes, name):
    accepted, check, phrase, _ = FAST[name]
    result, url, path, folder, _, alive = outcomes[name]
    assert result.ok is accepted, result.message
    assert phrase in result.message, result.message
    if accepted:
        assert result.exit_code == 0 and len(result.runs) == 1
        [row] = assert_no_forgery(url, path, ARCH[name])
        assert row.extra["submission"]["isolation"] == result.isolation
    else:
        assert result.exit_code == 1 and result.failed_check == check, result.message
        assert result.message.endswith("nothing was recorded")
        assert rows(url) == []
    assert outcomes["after all"] == [], f"processes left alive: {outcomes['after all']}"
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith("arena.db")) == (
        ["escape_fs.py"] if name == "escape_fs" else [])


def test_the_attempted_escape_reached_nothing(outcomes):
    result, url, _, folder, _, _ = outcomes["escape_fs"]
    if result.isolation != "namespaces":
        pytest.skip("the file-system part of the defence needs namespaces")
    db = folder / "arena.db"
    for d in (db.parent, Path.cwd(), Path.home(), HERE, Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")):
        assert not (d / ESCAPE_MARK).exists(), d
    [row] = rows(url)
    assert row.arch == "escape-fs" and row.score is not None


def test_time_limit_kills_the_daemon_and_everything_else(outcomes):
    result, _, _, _, seconds, alive = outcomes["daemon"]
    assert seconds < 40 + 20
    assert alive == [] and marker_pids() == []


def _cli_submit(path: Path, db: Path) -> subprocess.Popen:
    code = "import sys; from arena.cli import main; sys.argv[0] = 'arena'; main()"
    return subprocess.Popen([sys.executable, "-c", code, "submit", str(path), "--db", f"sqlite:///{db}",
                             "--tasks", "counter-chain", "--max-steps", "3", "--time-limit", "300"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONFAULTHANDLER="1"), preexec_fn=default_sigint)


def _interrupt_leaves_nothing(tmp_path, sig: int) -> None:
    """Signal `arena submit` once the hostile daemon runs (or after 90 s, wherever the submission is then), and
    require that nothing it started survives: no daemon, no fork server, no row."""
    db = tmp_path / "arena.db"
    rows(f"sqlite:///{db}")
    proc = _cli_submit(HOSTILE / "daemon.py", db)
    err: list[str] = []
    drain = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)  # never a full pipe
    drain.start()
    try:
        end = time.monotonic() + 90
        while not marker_pids() and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.2)
        assert proc.poll() is None, "arena submit ended before it could be interrupted"
        time.sleep(1.0)
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    drain.join(timeout=10)
    assert proc.returncode != 0
    end = time.monotonic() + 5
    while (marker_pids() or zygotes_of(proc.pid)) and time.monotonic() < end:
        time.sleep(0.1)
    assert marker_pids() == [], "".join(err)[-2000:]
    assert zygotes_of(proc.pid) == []
    assert rows(f"sqlite:///{db}") == []


def test_sigint_to_arena_submit_leaves_no_process(tmp_path):
    _interrupt_leaves_nothing(tmp_path, signal.SIGINT)


@pytest.mark.slow
def test_sigterm_to_arena_submit_leaves_no_process(tmp_path):
    """Slow: one interrupted submission, ~20 s."""
    _interrupt_leaves_nothing(tmp_path, signal.SIGTERM)


def _load_module(path: Path):
    """Import a hostile plugin *in the test process* (never in arena's parent) to show what its attack would do."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"hostile_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _task(name: str, seed: int):
    from arena.registry import get_task
    from arena.submit.suite import suite_spec

    spec = suite_spec("x", name, 0, seed, 3)
    ts = get_task(name)
    return ts.cls(ts.config.model_validate(spec.task_config), seed=seed)


def _model(module, task):
    from arena.api import ModelShape

    spec = next(v for v in vars(module).values() if type(v).__name__ == "ArchSpec")
    shape = ModelShape(vocab_size=task.vocab.size, d_model=32, n_layers=1, max_seq_len=task.max_seq_len)
    return spec.factory(shape, spec.config()).eval()


@pytest.mark.slow
def test_in_process_tampering_changes_nothing_the_parent_computes(tmp_path):
    """Slow: two accepted submissions (~1 min). The tampering file and the honest file build the same network, so
    with the same seeds the parent must give them the same score, whatever the patches claim."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    honest = submit(str(HERE / "good_shift.py"), db=url, tasks=["counter-chain"], max_steps=3, data_seed=7)
    tampered = submit(str(HOSTILE / "tamper_inprocess.py"), db=url, tasks=["counter-chain"], max_steps=3,
                      data_seed=7)
    assert honest.ok and tampered.ok, (honest.message, tampered.message)
    assert tampered.runs[0]["score"] == pytest.approx(honest.runs[0]["score"], abs=1e-9)
    assert tampered.runs[0]["score"] < 0.99
    assert [r.arch for r in rows(url)] == ["shift-mixer", "tamper-inprocess"]


@pytest.mark.slow
def test_knowing_the_public_generator_does_not_reveal_the_secret_test_set(tmp_path):
    """Slow: one accepted submission (~30 s) and an in-process oracle check."""
    import torch

    from arena.evaluate import evaluate_examples

    module = _load_module(HOSTILE / "knows_testset.py")
    public = _task("counter-chain", 0)
    with torch.no_grad():
        oracle = evaluate_examples(_model(module, public), public, public.splits["test"][:64])["metrics"]
    assert oracle[public.metric] > 0.99  # the attack is real: on seed-0 data the file is an oracle
    url = f"sqlite:///{tmp_path / 'a.db'}"
    result = submit(str(HOSTILE / "knows_testset.py"), db=url, tasks=["counter-chain"], max_steps=3)
    assert result.ok, result.message
    [row] = assert_no_forgery(url, HOSTILE / "knows_testset.py", "knows-testset")
    assert row.score < 0.7, row.score
    assert row.config["spec"]["data_seed"] != 0


@pytest.mark.slow
def test_memory_across_calls_is_gone_in_a_fresh_worker(tmp_path):
    """Slow: one accepted submission on scan-depth with generation (~1 min) and an in-process replay check."""
    import torch

    from arena.evaluate import evaluate_examples

    files = [Path("/tmp/arena-hostile-memory.json"), Path("/dev/shm/arena-hostile-memory.json")]
    for f in files:
        f.unlink(missing_ok=True)
    try:
        module = _load_module(HOSTILE / "memory_across_calls.py")
        task = _task("scan-depth", 3)
        exs = task.splits["test_iid"][:32]
        model = _model(module, task)
        with torch.no_grad():  # arena's evaluator generates before its teacher-forced pass, so within one call
            evaluate_examples(model, task, exs)  # nothing leaks; a second call in the same process replays
            replay = evaluate_examples(model, task, exs)["metrics"]  # what the first one's teacher forcing showed
        assert replay["exact_match"] == 1.0  # the attack is real: scored twice in one process it replays answers
    finally:
        for f in files:
            f.unlink(missing_ok=True)
    url = f"sqlite:///{tmp_path / 'a.db'}"
    result = submit(str(HOSTILE / "memory_across_calls.py"), db=url, tasks=["scan-depth"], max_steps=3,
                    time_limit=900)
    assert result.ok, result.message
    [row] = assert_no_forgery(url, HOSTILE / "memory_across_calls.py", "memory-across-calls")
    assert row.score < 0.2, row.score
    assert not any(f.exists() for f in files)  # its files went to the workers' private /tmp and /dev/shm


@pytest.mark.slow
def test_per_process_noise_fails_determinism(tmp_path):
    """Slow: one rejected submission (~30 s)."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    result = submit(str(HOSTILE / "noisy_forward.py"), db=url, tasks=["counter-chain"], max_steps=3)
    assert not result.ok and result.failed_check == "determinism", result.message
    assert "different logits in two processes" in result.message
    assert rows(url) == []


@pytest.mark.slow
def test_hidden_flops_are_declared_and_do_not_rank(tmp_path):
    """Slow: two accepted submissions with --verify-flops (~2 min): arena's own count of the exported graph sees
    the broadcast multiply + sum and disagrees with the declaration; an honest file is verified."""
    from arena.export import leaderboard_frame, to_markdown

    url = f"sqlite:///{tmp_path / 'a.db'}"
    result = submit(str(HOSTILE / "hidden_flops.py"), db=url, tasks=["counter-chain"], max_steps=3,
                    verify_flops=True)
    assert result.ok, result.message
    [row] = assert_no_forgery(url, HOSTILE / "hidden_flops.py", "hidden-flops")
    assert row.flops_status == "declared" and row.extra["submission"]["state_size_status"] == "declared"
    assert "outside 5%" in row.flops_note, row.flops_note
    assert row.extra["submission"]["flops"]["counted"] > 1.5 * row.extra["submission"]["flops"]["declared"]
    honest_url = f"sqlite:///{tmp_path / 'b.db'}"
    honest = submit(str(HERE / "good_shift.py"), db=honest_url, tasks=["counter-chain"], max_steps=3,
                    verify_flops=True)
    assert honest.ok, honest.message
    assert rows(honest_url)[0].flops_status == "verified", rows(honest_url)[0].flops_note
    frame = leaderboard_frame(open_store(url, readonly=True), gate=0.0)
    assert frame["norm_per_gflop"].isna().all()
    assert "[FLOPs declared]" in to_markdown(frame).replace("\\", "")


@pytest.mark.slow
def test_resubmitting_the_same_bytes_is_the_same_run(tmp_path):
    """Slow: two accepted submissions (~1 min)."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    first = submit(str(HERE / "good_shift.py"), db=url, tasks=["counter-chain"], max_steps=3)
    again = submit(str(HERE / "good_shift.py"), db=url, tasks=["counter-chain"], max_steps=3)
    assert first.ok and again.ok
    assert len(first.runs) == 1 and again.runs == []
    assert again.duplicates[0]["run_id"] == first.runs[0]["run_id"]
    assert "not a new replicate" in again.message
    assert len(rows(url)) == 1


@pytest.mark.slow
def test_uid_isolation_alone_still_protects_the_database_and_kills_everything(tmp_path):
    """Slow: two submissions without namespaces (~1.5 min): the fresh uid cannot write the parent's files, and
    every process of that uid is killed after each phase. Skipped where the Python installation is not readable by
    other users (e.g. under /root): there uid isolation cannot run a plugin at all."""
    if os.geteuid() != 0:
        pytest.skip("uid isolation needs root")
    import stat

    base = Path(sys.base_prefix).resolve()
    if not all(p.stat().st_mode & stat.S_IXOTH for p in [base, *base.parents]):
        pytest.skip(f"the Python installation ({base}) is not readable by other users, so a worker under a fresh "
                    "uid cannot import what the fork server did not preload (namespaces bind it back; uid cannot)")
    good = submit(str(HERE / "good_shift.py"), db=f"sqlite:///{tmp_path / 'good.db'}", tasks=["counter-chain"],
                  max_steps=3, isolation="uid")
    assert good.ok and good.isolation == "uid", good.message
    assert rows(f"sqlite:///{tmp_path / 'good.db'}")[0].isolation == "uid"
    folder = tmp_path / "sub"
    folder.mkdir()
    db = folder / "arena.db"
    url = f"sqlite:///{db}"
    rows(url)
    path = escape_plugin(folder, db)
    result = submit(str(path), db=url, tasks=["counter-chain"], max_steps=3, isolation="uid")
    assert result.ok, result.message
    assert_no_forgery(url, path, "escape-fs")
    for d in (folder, Path.cwd(), Path.home(), HERE):
        assert not (d / ESCAPE_MARK).exists(), d
    # uid-only isolation leaves world-writable places writable (docs/plugins.md says so): a marker in /tmp,
    # /var/tmp or /dev/shm is possible, but it must belong to the sandbox's fresh uid, not to us; removed so that
    # later tests (and the namespaces test on a second run) see clean places
    for stray in (Path(d) / ESCAPE_MARK for d in ("/tmp", "/var/tmp", "/dev/shm")):
        if stray.exists():
            owner = stray.stat().st_uid
            stray.unlink()
            assert owner != os.geteuid(), f"{stray} was written with the parent's uid"
    assert marker_pids() == []


@pytest.mark.slow
def test_no_isolation_is_said_loudly_and_recorded(tmp_path):
    """Slow: one accepted submission through the CLI with --isolation none (~40 s)."""
    code = "import sys; from arena.cli import main; sys.argv[0] = 'arena'; main()"
    db = tmp_path / "a.db"
    proc = subprocess.run([sys.executable, "-c", code, "submit", str(HERE / "good_shift.py"), "--db", f"sqlite:///{db}",
                           "--tasks", "counter-chain", "--max-steps", "3", "--isolation", "none"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING: no OS isolation" in proc.stderr and "isolation: none" in proc.stdout
    [row] = rows(f"sqlite:///{db}")
    assert row.isolation == "none"
