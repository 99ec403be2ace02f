"""Leaderboard at scale: page renders, clicks and exports on a 10,000-run, 900-row database.

Seeds a temporary SQLite database with synthetic completed runs (``arena.leaderboard.synthetic``: 5 archs x 2 tasks
x 3 sizes x 30 learning rates = 900 rows, ~11 seeds each, ~12 metric rows per run, provenance), then measures:

- with ``streamlit.testing.v1.AppTest`` (in this process): the main page's first render, cold (the first run in
  the process: imports, reading and aggregating the runs) and uncached (a new AppTest after clearing Streamlit's
  caches); then, on that page, a gate change, a cost-axis (rank-by) change, the task-specific toggle and a switch
  to the other task (its aggregate is not cached yet);
- from the shell (a fresh ``arena`` process each, as a user types it): ``arena export --format csv`` and
  ``--format json``, cold (``--no-cache``: read and aggregate the database) and repeated on the unchanged database
  (served by ``arena.export_cache``), wall time and the process's CPU time (user + system; what the wall time
  would be on an idle machine, near enough).

Every figure is printed with the 1-minute load average beside it: on a shared machine wall times stretch with the
load, CPU times much less. Targets (issue 16): first render < 2 s, a gate or cost-axis change < 1 s, export csv
< 1 s and json < 3 s.

Usage::

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python bench/bench_leaderboard.py [--runs 10000] [--lrs 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"first render": 2.0, "gate change": 1.0, "cost-axis change": 1.0, "export csv": 1.0, "export json": 3.0,
           "export csv (cached)": 1.0, "export json (cached)": 3.0}


def load() -> float:
    return os.getloadavg()[0]


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def timed_cpu(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of ``fn()`` in this process (CPU of every thread: AppTest runs the page in one)."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def shell(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one fresh process, output discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def app_timings(url: str, repeats: int) -> list[tuple[str, float, float, float]]:
    """(step, wall seconds, CPU seconds, load) for the AppTest renders and clicks."""
    os.environ["ARENA_DB_URL"] = url
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import arena.leaderboard

    app = str(Path(arena.leaderboard.__file__).parent / "streamlit_app.py")
    rows = []
    for i in range(repeats):
        st.cache_data.clear()  # every render reads and aggregates the runs again
        st.cache_resource.clear()
        at = AppTest.from_file(app, default_timeout=600)
        dt, cpu = timed_cpu(at.run)
        assert not at.exception, [e.value for e in at.exception]
        rows.append(("first render, cold (first in process)" if i == 0 else "first render, uncached", dt, cpu,
                     load()))
    clicks = [("gate change", lambda: at.slider(key="lb_gate").set_value(0.3).run()),
              ("cost-axis change", lambda: at.radio(key="lb_rank").set_value("latency").run()),
              ("gate change", lambda: at.slider(key="lb_gate").set_value(0.6).run()),
              ("cost-axis change", lambda: at.radio(key="lb_rank").set_value("flops").run()),
              ("task-specific toggle", lambda: at.toggle(key="lb_ts").set_value(True).run()),
              ("switch task (aggregate not cached)", lambda: at.selectbox(key="lb_task").set_value(
                  at.selectbox(key="lb_task").options[-1]).run())]
    for name, click in clicks:
        dt, cpu = timed_cpu(click)
        assert not at.exception, [e.value for e in at.exception]
        rows.append((name, dt, cpu, load()))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--lrs", type=int, default=30, help="learning rates per (arch, task, size): rows = 30 x this")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from arena.export import leaderboard_frame
    from arena.leaderboard.synthetic import seed_database
    from arena.store.engine import open_store

    lrs = tuple(round(1e-4 * 1.25**i, 8) for i in range(args.lrs))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        t_seed, engine = timed(lambda: seed_database(url, args.runs, lrs=lrs))
        engine.dispose()
        frame = leaderboard_frame(open_store(url, readonly=True))
        size_mb = (Path(tmp) / "bench.db").stat().st_size / 2**20
        print(f"seeded {args.runs:,} runs in {len(frame):,} rows in {t_seed:.1f} s ({size_mb:.1f} MB)")

        # the console script beside this interpreter (a version manager's shim on PATH adds its own start-up)
        script = Path(sys.executable).with_name("arena")
        base = [str(script)] if script.exists() else [sys.executable, "-m", "arena.cli"]
        env = dict(os.environ, OMP_NUM_THREADS="1", ARENA_CACHE_DIR=str(Path(tmp) / "cache"))
        shell_rows = []
        for fmt in ("csv", "json"):
            for _ in range(args.repeats):  # cold: every export reads and aggregates the database
                wall, cpu = shell([*base, "export", "--db", url, "--format", fmt, "--no-cache"], env)
                shell_rows.append((f"export {fmt} cold", wall, cpu, load()))
            shell([*base, "export", "--db", url, "--format", fmt], env)  # fills the cache
            for _ in range(args.repeats):  # repeated: the database did not change since the last export
                wall, cpu = shell([*base, "export", "--db", url, "--format", fmt], env)
                shell_rows.append((f"export {fmt} cached", wall, cpu, load()))
        app_rows = app_timings(url, args.repeats)

    print()
    print(f"| step ({args.runs:,} runs, {len(frame):,} rows) | wall s | CPU s | load avg (1 min) |")
    print("|---|---:|---:|---:|")
    for name, dt, cpu, la in app_rows:
        print(f"| AppTest: {name} | {dt:.2f} | {cpu:.2f} | {la:.1f} |")
    for fmt in ("csv", "json"):
        for mode in ("cold", "cached"):
            mine = [r for r in shell_rows if r[0] == f"export {fmt} {mode}"]
            flag = " --no-cache" if mode == "cold" else ", unchanged database"
            print(f"| shell: `arena export --format {fmt}`{flag} (median of {len(mine)}) | "
                  f"{statistics.median(r[1] for r in mine):.2f} | {statistics.median(r[2] for r in mine):.2f} | "
                  f"{statistics.median(r[3] for r in mine):.1f} |")
    print()
    renders = [dt for name, dt, _, _ in app_rows if name.startswith("first render")]
    gate = [dt for name, dt, _, _ in app_rows if name == "gate change"]
    axis = [dt for name, dt, _, _ in app_rows if name == "cost-axis change"]
    exports = {key: statistics.median(r[1] for r in shell_rows if r[0] == f"export {key}")
               for key in ("csv cold", "csv cached", "json cold", "json cached")}
    got = {"first render": min(renders), "gate change": max(gate), "cost-axis change": max(axis),
           "export csv": exports["csv cold"], "export json": exports["json cold"],
           "export csv (cached)": exports["csv cached"], "export json (cached)": exports["json cached"]}
    for name, limit in TARGETS.items():
        print(f"{name}: {got[name]:.2f} s wall (target < {limit:g} s) {'ok' if got[name] < limit else 'OVER'}")


if __name__ == "__main__":
    main()
