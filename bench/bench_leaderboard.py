"""Leaderboard at scale: first render of the main page and export times with N runs (default 10,000).

Seeds a temporary SQLite database with synthetic completed runs (``arena.leaderboard.synthetic``: 5 archs x 2 tasks
x 3 sizes, ~8.5 metric rows per run, provenance), then measures in one process:

- the first render of the main (Leaderboard) page with ``streamlit.testing.v1.AppTest`` — cold (first run in the
  process: imports + reading and aggregating every run) and uncached (a new AppTest after clearing Streamlit's
  caches, so every run is read and aggregated again);
- the export: ``leaderboard_frame`` (read + aggregate) and rendering to each format (JSON adds every run's full
  record and provenance, so it reads all metric rows too).

Usage::

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python bench/bench_leaderboard.py [--runs 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import arena.leaderboard
    from arena.export import leaderboard_frame, render
    from arena.leaderboard.synthetic import seed_database
    from arena.store.engine import open_store

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        t_seed, engine = timed(lambda: seed_database(url, args.runs))
        engine.dispose()
        size_mb = (Path(tmp) / "bench.db").stat().st_size / 2**20
        print(f"seeded {args.runs:,} runs in {t_seed:.1f} s ({size_mb:.1f} MB)")

        os.environ["ARENA_DB_URL"] = url
        from streamlit.testing.v1 import AppTest

        app = str(Path(arena.leaderboard.__file__).parent / "streamlit_app.py")
        import streamlit as st

        renders = []
        for i in range(args.repeats):
            st.cache_data.clear()  # every render reads and aggregates all runs again
            st.cache_resource.clear()
            at = AppTest.from_file(app, default_timeout=600)
            dt, _ = timed(at.run)
            assert not at.exception, [e.value for e in at.exception]
            assert int(at.dataframe[0].value["n"].sum()) == args.runs
            renders.append(dt)
            print(f"main page render {i + 1}: {dt:.2f} s" + (" (cold: first in process)" if i == 0 else ""))

        t_torch, _ = timed(lambda: __import__("arena.runner"))  # run_record/reproduce_command (JSON) import torch
        ro = open_store(url, readonly=True)
        frames = [timed(lambda: leaderboard_frame(ro)) for _ in range(args.repeats)]
        frame = frames[-1][1]
        print(f"leaderboard_frame (read + aggregate): median {statistics.median(t for t, _ in frames):.2f} s "
              f"-> {len(frame)} rows")
        rows = [("leaderboard_frame", statistics.median(t for t, _ in frames))]
        for fmt in ("csv", "md", "latex", "parquet", "json"):
            ts = [timed(lambda f=fmt: render(frame, f, engine=ro))[0] for _ in range(args.repeats if fmt != "json" else 1)]
            rows.append((f"render {fmt}", statistics.median(ts)))
        print()
        print(f"| step ({args.runs:,} runs) | seconds |")
        print("|---|---:|")
        print(f"| main page first render, cold (AppTest, first in process) | {renders[0]:.2f} |")
        if len(renders) > 1:
            print(f"| main page render, uncached (new AppTest, median of {len(renders) - 1}) | "
                  f"{statistics.median(renders[1:]):.2f} |")
        for name, t in rows:
            print(f"| {name} | {t:.2f} |")
        print(f"| export csv end to end (frame + render) | {rows[0][1] + rows[1][1]:.2f} |")
        print(f"| (once per process, JSON only: import arena.runner / torch) | {t_torch:.2f} |")


if __name__ == "__main__":
    main()
