"""arena submit: broken plugins are rejected with the failed check named and nothing recorded; a good one is recorded
with its provenance, scored by the parent.

Every submission starts a fork server that imports torch (a few seconds each), so the broken plugins are
submitted concurrently once per module and each test then reads its own result.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from arena.store import open_store
from arena.store.models import Metric, Provenance, Run
from arena.submit import SubmitInputError, resolve_plugin, submit

HERE = Path(__file__).parent
BROKEN = HERE / "broken"
HANG_LIMIT = 15.0

# file -> (the check that must be named, a phrase the message must contain, extra submit() arguments)
CASES = {
    "noncausal": ("causality", "peeks ahead", {}),
    "nan_output": ("finite", "NaN", {}),
    "wrong_shape": ("shape", "expected logits of shape (2, 12, 11), got (2, 12, 12)", {}),
    "wrong_params": ("param count", "declared 9,824 parameters but the module has 9,856", {}),
    "syntax_error": ("import", "SyntaxError: invalid syntax (line 6 of syntax_error.py)", {}),
    "import_error": ("import", "No module named 'arena_no_such_dependency_xyz'", {}),
    "memory_hog": ("shape", "over the sandbox memory limit of 4096 MB", {}),
    "hangs": ("time limit", f"did not finish within {HANG_LIMIT:g} s", {"time_limit": HANG_LIMIT}),
    "fails_in_suite": ("suite:nested-parity", "sequences longer than 200 tokens are not supported",
                       {"tasks": ["counter-chain", "nested-parity"], "max_steps": 3}),
}


def counts(url: str) -> tuple[int, int, int]:
    engine = open_store(url)
    with Session(engine) as s:
        out = tuple(s.scalar(select(func.count()).select_from(t)) for t in (Run, Metric, Provenance))
    engine.dispose()
    return out  # type: ignore[return-value]


def _two_specs(folder: Path) -> Path:
    two = folder / "two.py"
    two.write_text((HERE / "good_shift.py").read_text() + "\n\nSECOND = __import__('dataclasses').replace("
                   "build, name='shift-mixer-2')\n")
    return two


# besides the broken plugins: a good one (recorded) and a file with two specs (ambiguous without --name)
EXTRA = {
    "good_shift": (HERE / "good_shift.py",
                   # counter-chain: short teacher-forced sequences, the quickest suite task (the slow test runs the
                   # default scan-depth)
                   {"tasks": ["counter-chain"], "command": "arena submit good_shift.py"}),
    "two_specs": (None, {}),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Submit every plugin above (three at a time); each gets its own, initially empty, database."""
    root = tmp_path_factory.mktemp("submissions")

    def one(name: str):
        url = f"sqlite:///{root / (name + '.db')}"
        counts(url)  # create the schema first, so "no rows" is checked against a real, empty database
        if name in CASES:
            path, kwargs = BROKEN / f"{name}.py", dict(CASES[name][2])
        else:
            path, kwargs = EXTRA[name]
            path = path or _two_specs(root)
            kwargs = dict(kwargs)
        kwargs.setdefault("max_steps", 3)
        t0 = time.monotonic()
        result = submit(str(path), db=url, **kwargs)
        return result, url, time.monotonic() - t0

    with ThreadPoolExecutor(max_workers=3) as pool:
        # the slowest first (the hang waits out its limit; the suites train), so the rest overlap with them
        order = ["hangs", "fails_in_suite", "good_shift"] + [n for n in [*CASES, *EXTRA]
                                                             if n not in ("hangs", "fails_in_suite", "good_shift")]
        futures = {name: pool.submit(one, name) for name in order}
        return {name: f.result() for name, f in futures.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_broken_plugin_is_rejected_with_its_reason_and_nothing_recorded(results, name):
    check, phrase, _ = CASES[name]
    result, url, _ = results[name]
    assert not result.ok
    assert result.exit_code == 1
    assert result.failed_check == check, result.message
    assert phrase in result.message, result.message
    assert result.message.endswith("nothing was recorded")
    assert not result.runs
    assert counts(url) == (0, 0, 0)


def test_the_first_failed_check_is_named_in_the_message(results):
    result = results["noncausal"][0]
    assert result.message.startswith("failed check 'causality': logits at positions <= 6 change by")
    assert [c["name"] for c in result.checks if not c["ok"]] == ["causality"]


def test_the_hang_is_stopped_at_the_limit_and_located(results):
    result, _, seconds = results["hangs"]
    assert seconds < HANG_LIMIT + 10  # killed, not waited for
    # the plugin's own checks run in the loading worker; the parent's clock stopped it there
    assert "(stopped during loading)" in result.message, result.message


def test_a_completed_suite_run_is_not_kept_when_a_later_one_fails(results):
    result, url, _ = results["fails_in_suite"]
    assert [c["name"] for c in result.checks if c["by"] == "worker"][-1] == "flops declared"
    assert [r["task"] for r in result.sandbox_runs] == ["counter-chain"]  # scored, then dropped with the rest
    assert "RuntimeError: sequences longer than 200 tokens are not supported" in result.message
    assert counts(url) == (0, 0, 0)


def test_memory_hog_fails_under_the_limit_not_elsewhere(results):
    # the 8 GB buffer is never touched, so only the sandbox's address-space limit can make it fail
    result = results["memory_hog"][0]
    assert "can't allocate memory" in result.message
    assert "memory_hog.py:" in result.message and "arena-submit-" not in result.message  # the user's path


def test_good_single_file_is_recorded_with_its_provenance(results):
    result, url, _ = results["good_shift"]
    path = HERE / "good_shift.py"
    assert result.ok, result.message
    assert result.exit_code == 0 and result.arch == "shift-mixer"
    assert result.loaded_from == str(path)  # the private copy that ran is reported under the user's path
    assert [c["name"] for c in result.checks if c["by"] == "worker"] == [
        "config", "build", "shape", "finite", "gradients", "causality", "step == parallel", "param count",
        "determinism", "flops declared"]
    assert [c["name"] for c in result.checks if c["by"] == "parent"] == [
        "determinism", "param count", "param count after training", "causality", "causality while scoring"]
    assert len(result.runs) == 1
    engine = open_store(url)
    with Session(engine) as s:
        run = s.scalars(select(Run)).one()
        assert (run.arch, run.task, run.status, run.size) == ("shift-mixer", "counter-chain", "completed", "tiny")
        assert run.source == "plugin"
        assert run.plugin_name == "good_shift.py" and run.plugin_version == "1"
        assert run.plugin_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert run.step == 3 and run.params_total == result.runs[0]["params"] > 0
        assert run.checkpoint_path is None  # it lived in the deleted sandbox folder
        assert run.latency_p50_ms > 0 and run.latency_batch >= 1 and run.load_avg_1m >= 0  # timed by the parent
        assert s.scalar(select(func.count()).select_from(Metric).where(Metric.run_id == run.id)) > 0
        assert s.get(Provenance, run.id).command == "arena submit good_shift.py"
        sub = run.extra["submission"]
        assert sub["isolation"] == result.isolation and sub["params_status"] == "verified"
        assert sub["flops_status"] == "declared" and sub["state_size_status"] == "declared"
        assert run.config["spec"]["data_seed"] == sub["data_seed"] == result.runs[0]["data_seed"]
    assert counts(url)[0] == 1


def test_bad_input_raises_before_anything_runs(tmp_path):
    with pytest.raises(SubmitInputError, match="no such plugin file"):
        submit(str(tmp_path / "missing.py"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SubmitInputError, match="must be a .py file"):
        submit(str(tmp_path / "notes.txt"))
    with pytest.raises(SubmitInputError, match="built-in architecture, not a plugin"):
        submit("rnn")
    with pytest.raises(SubmitInputError, match="no such plugin file or installed plugin 'no-such-plugin'"):
        submit("no-such-plugin")
    with pytest.raises(SubmitInputError, match="unknown task 'scan-dept'; did you mean 'scan-depth'"):
        submit(str(HERE / "good_shift.py"), tasks=["scan-dept"])
    with pytest.raises(SubmitInputError, match="must be positive"):
        submit(str(HERE / "good_shift.py"), time_limit=0)


def test_file_hash_is_of_its_bytes():
    src = resolve_plugin(str(HERE / "good_shift.py"))
    assert src.kind == "file" and src.files == 1
    assert src.sha256 == hashlib.sha256((HERE / "good_shift.py").read_bytes()).hexdigest()


def test_several_specs_in_one_file_need_a_name(results):
    result, url, _ = results["two_specs"]
    assert result.exit_code == 2 and result.failed_check == "spec"
    assert "several ArchSpecs (shift-mixer, shift-mixer-2); choose one with --name" in result.message
    assert counts(url) == (0, 0, 0)


def _cli(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from arena.cli import main; sys.argv[0] = 'arena'; main()"
    return subprocess.run([sys.executable, "-c", code, "submit", *args], capture_output=True, text=True, timeout=120)


def test_cli_exit_codes_and_json(tmp_path):
    missing = _cli(str(tmp_path / "missing.py"))
    assert missing.returncode == 2 and "no such plugin file" in missing.stderr
    bad = _cli(str(BROKEN / "syntax_error.py"), "--json", "--db", f"sqlite:///{tmp_path / 'a.db'}")
    assert bad.returncode == 1, bad.stderr
    out = json.loads(bad.stdout)
    assert out["ok"] is False and out["failed_check"] == "import" and "SyntaxError" in out["message"]
    assert counts(f"sqlite:///{tmp_path / 'a.db'}") == (0, 0, 0)


def _fake_dist(site: Path, dist: str, version: str, module: str, source: str, arch: str) -> None:
    """A minimal installed distribution (dist-info + package) exposing one arena.architectures entry point."""
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(source)
    info = site / f"{dist}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[arena.architectures]\n{arch} = {module}:build\n")


def test_package_is_found_by_arch_or_distribution_name_and_hashed_without_importing(tmp_path, monkeypatch):
    site = tmp_path / "site"
    source = (HERE / "good_shift.py").read_text().replace('"shift-mixer"', '"fake-shift"') + \
        "\nraise RuntimeError('the parent must not import plugin code')\n"
    _fake_dist(site, "fakeplug", "0.2", "fakeplug", source, "fake-shift")
    monkeypatch.syspath_prepend(str(site))
    by_arch, by_dist = resolve_plugin("fake-shift"), resolve_plugin("fakeplug")
    assert by_arch == by_dist
    assert (by_arch.kind, by_arch.name, by_arch.version, by_arch.arch) == ("package", "fakeplug", "0.2", "fake-shift")
    file_hash = hashlib.sha256(source.encode()).hexdigest()
    assert by_arch.sha256 == hashlib.sha256(f"fakeplug/__init__.py\0{file_hash}\n".encode()).hexdigest()
    with pytest.raises(SubmitInputError, match="has no architecture named 'other'; it exposes fake-shift"):
        resolve_plugin("fakeplug", name="other")


def test_package_that_fails_to_import_is_rejected(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _fake_dist(site, "brokenplug", "1.0", "brokenplug", "import arena_no_such_dependency_xyz\n", "broken-plug")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))  # the child finds the package the same way
    url = f"sqlite:///{tmp_path / 'a.db'}"
    counts(url)
    result = submit("brokenplug", db=url)
    assert result.exit_code == 1 and result.failed_check == "import"
    assert "ModuleNotFoundError: No module named 'arena_no_such_dependency_xyz'" in result.message
    assert result.plugin["name"] == "brokenplug" and result.plugin["version"] == "1.0"
    assert counts(url) == (0, 0, 0)
